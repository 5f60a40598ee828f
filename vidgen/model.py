"""VideoDenoiser: a small conv + spatio-temporal transformer hybrid.

Shape walk-through at the defaults (B, 3, 16, 64, 64), patch 4, 8x8 attention grid:

    x_t (+ first-frame image + mask channels)    (B, 7, F, 64, 64)
    space-to-depth (pixel unshuffle 4), per frame (B*F, 112, 16, 16)
    1x1 conv in, ResBlock                        (B*F, C, 16, 16)    convs learn local shape fast
      (computed as one 4x4 stride-4 conv of the frames, the same weights: see `stem`)
    stride-2 conv                                (B*F, D, 8, 8) -> tokens (B, F, 64, D)
    SpatioTemporalBlock x depth                  (B, F, 64, D)       spatial -> temporal -> cross -> MLP
    1x1 conv + pixel shuffle 2, + skip, ResBlock (B*F, C, 16, 16)
    3x3 conv out + pixel shuffle 4               (B, 3, F, 64, 64)   the prediction (v by default)

Conditioning: the timestep, the frame index and the per-frame audio features form one embedding
per frame that modulates every block (adaLN / FiLM); text and audio tokens are the keys of the
cross-attention. With `frame_embedding`, a learned per-frame vector is also added to the tokens, so
the cross-attention queries know their frame. With `word_embedding`, an MLP of the caption's bag of
words and the frame index is added to the per-frame embedding from the first cross-attention on.
The "joint" variant replaces spatial+temporal attention with one attention over all F*N space-time
tokens, for comparison.

Layout (speed, not semantics): the conv stages run channels-last, so the tokens leave the stride-2
conv contiguous as (B, F, N, D) and the transformer never copies them; the fused `addcmul` forms of
the adaLN modulation and gated residuals save one pass over the tokens each.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention, attention_modules, get_processors, set_processors
from .config import ModelConfig


def sinusoidal(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (...) positions -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    args = positions.float()[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


@lru_cache(maxsize=16)
def _grid_pos_embed(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding (h*w, dim), half the channels for y and half for x."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.cat([sinusoidal(ys.flatten(), dim // 2), sinusoidal(xs.flatten(), dim // 2)], dim=-1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * (1 + scale) + shift, in one fused pass over x."""
    return torch.addcmul(shift, x, 1 + scale)


def gated(x: torch.Tensor, gate: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The gated residual x + gate * h, in one fused pass."""
    return torch.addcmul(x, gate, h)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, FiLM from the per-frame embedding, residual; works per frame."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(8, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x (B*F, C, h, w), emb (B*F, E)."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(modulate(self.norm2(h), shift, scale)))
        return self.skip(x) + h


class SpatioTemporalBlock(nn.Module):
    """Spatial self-attention -> temporal (TGS) self-attention -> cross-attention -> MLP.

    Self-attention and MLP branches are adaLN-zero modulated by the per-frame embedding (each
    branch starts as the identity); cross-attention uses a plain pre-norm.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.width
        self.variant = cfg.variant
        self.use_temporal = cfg.temporal_attention and cfg.variant == "factorized"
        branches = 2 + int(self.use_temporal)  # (spatial | joint), [temporal], mlp
        self.ada = nn.Linear(d, 3 * d * branches)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.norm_s = nn.LayerNorm(d, elementwise_affine=False)
        if cfg.variant == "joint":
            self.joint = Attention(d, cfg.heads, "joint")
        else:
            self.spatial = Attention(d, cfg.heads, "spatial")
        if self.use_temporal:
            self.norm_t = nn.LayerNorm(d, elementwise_affine=False)
            self.temporal = Attention(d, cfg.heads, "temporal", max_frames=cfg.max_frames)
        self.norm_c = nn.LayerNorm(d)
        self.cross = Attention(d, cfg.heads, "cross", context_dim=d)
        self.norm_m = nn.LayerNorm(d, elementwise_affine=False)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor,
                emb_after: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, F, N, D); emb (B, F, D) per-frame embedding; context (B, L, D); context_mask (B, L);
        emb_after (B, F, D): the embedding of the branches after the cross-attention, when it differs
        from emb (word_embedding). x and emb may have batch 1 for all B videos (they share them); the
        output has batch B."""
        B, Fr, N, D = x.shape
        mods = self.ada(F.silu(emb))[:, :, None].chunk(3 * (2 + int(self.use_temporal)), dim=-1)  # each (B, F, 1, D)
        if emb_after is not None:  # the MLP branch's shift, scale and gate (ada's last 3 * D rows) from emb_after
            mlp_mods = F.linear(F.silu(emb_after), self.ada.weight[-3 * D:], self.ada.bias[-3 * D:])
            mods = mods[:-3] + mlp_mods[:, :, None].chunk(3, dim=-1)
        mods = iter(mods)

        shift, scale, gate = next(mods), next(mods), next(mods)
        h = modulate(self.norm_s(x), shift, scale)
        if self.variant == "joint":
            h = self.joint(h.reshape(B, Fr * N, D), layout=(B, Fr, N)).reshape(B, Fr, N, D)
        else:
            h = self.spatial(h.reshape(B * Fr, N, D), layout=(B, Fr, N)).reshape(B, Fr, N, D)
        x = gated(x, gate, h)

        if self.use_temporal:
            shift, scale, gate = next(mods), next(mods), next(mods)
            h = modulate(self.norm_t(x), shift, scale)
            h = h.transpose(1, 2).reshape(B * N, Fr, D)  # b f n d -> (b n) f d
            h = self.temporal(h, layout=(B, Fr, N)).reshape(B, N, Fr, D).transpose(1, 2)
            x = gated(x, gate, h)

        # Cross-attention: all F*N tokens of a video query that video's condition tokens at once.
        if B != context.shape[0]:  # rows shared by all videos (a CFG pair) split here
            B = context.shape[0]
            x = x.expand(B, -1, -1, -1)
        h = self.cross(self.norm_c(x).reshape(B, Fr * N, D), context, context_mask, layout=(B, Fr, N))
        x = x + h.reshape(B, Fr, N, D)

        shift, scale, gate = next(mods), next(mods), next(mods)
        return gated(x, gate, self.mlp(modulate(self.norm_m(x), shift, scale)))


class WordFrameEmbedding(nn.Module):
    """(caption bag of words (B, text_width), num_frames) -> (B, F, D), added to the per-frame
    embedding: an MLP over words + frame index, so each frame can get its own word-dependent
    modulation ("moving left": further left at later frames). See ModelConfig.word_embedding."""

    def __init__(self, text_width: int, dim: int):
        super().__init__()
        self.words_in = nn.Linear(text_width, dim)
        self.frame_in = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)  # a warm start from a model without it computes the same
        nn.init.zeros_(self.out.bias)

    def forward(self, words: torch.Tensor, num_frames: int) -> torch.Tensor:
        frames = sinusoidal(torch.arange(num_frames, device=words.device), self.frame_in.in_features)
        h = self.words_in(words)[:, None] + self.frame_in(frames.to(words.dtype))[None]  # (B, F, D)
        return self.out(F.silu(h))


class VideoDenoiser(nn.Module):
    """Predicts v (or eps / x0, per config) for a noisy video.

    forward(x_t (B, C, F, H, W), t (B,), context (B, L, D), context_mask (B, L) bool,
            frame_cond (B, F, D) | None, image (B, C, H, W) | None, image_mask (B,) bool | None)
    -> (B, C, F, H, W). H and W must be multiples of 2 * patch_size.

    Shared rows: x_t, t, frame_cond, image and image_mask may have batch 1 while the context has
    batch B (a classifier-free-guidance pair shares its noisy video and timestep). Everything up
    to the first cross-attention, the first layer that reads the context, then runs once for
    all B videos instead of B times, and the result is the same as with the inputs expanded.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        p, C, D = cfg.patch_size, cfg.conv_channels, cfg.width
        cond_ch = cfg.in_channels + 1 if cfg.image_condition else 0
        self.time_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        # No bias: an all-zero frame condition (no audio) must equal passing none.
        self.frame_proj = nn.Linear(D, D, bias=False)  # per-frame condition (audio) -> embedding
        self.conv_in = nn.Conv2d((cfg.in_channels + cond_ch) * p * p, C, 1)
        self.res_in = ResBlock(C, C, D)
        self.down = nn.Conv2d(C, D, 3, stride=2, padding=1)
        # (max_frames, D), zero-init: see ModelConfig.frame_embedding
        self.frame_pos = nn.Parameter(torch.zeros(cfg.max_frames, D)) if cfg.frame_embedding else None
        self.word_emb = WordFrameEmbedding(cfg.text_width, D) if cfg.word_embedding else None
        self.blocks = nn.ModuleList(SpatioTemporalBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(D)
        self.up = nn.Conv2d(D, 4 * C, 1)
        self.res_out = ResBlock(C, C, D)
        self.norm_final = nn.GroupNorm(8, C)
        self.conv_out = nn.Conv2d(C, cfg.in_channels * p * p, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    # -- attention processors, keyed by layer name ("blocks.0.spatial", ...) --
    @property
    def attn_processors(self) -> dict[str, object]:
        return get_processors(self)

    def set_attn_processor(self, processors: object | dict[str, object]) -> None:
        set_processors(self, processors)

    def attention_layers(self) -> dict[str, Attention]:
        return attention_modules(self)

    def stem(self, x_t: torch.Tensor, image: torch.Tensor | None, image_mask: torch.Tensor | None) -> torch.Tensor:
        """conv_in(pixel_unshuffle(cat[x_t, image condition], p)) per frame -> (B*F, C, H/p, W/p).

        Computed without the unshuffle or the concatenation: a 1x1 conv over the p*p-unshuffled
        channels (c*p*p + i*p + j) is a p x p stride-p conv whose weight is conv_in's, reshaped.
        The condition channels are zero on every frame but the first (and on all of them when no
        image is given), so their part of the conv is added to frame 0 only. The frames go in
        channels-last, and the result stays so.
        """
        cfg = self.cfg
        B, C, Fr, H, W = x_t.shape
        p = cfg.patch_size
        weight = self.conv_in.weight.reshape(self.conv_in.out_channels, -1, p, p)  # (C_out, C + cond, p, p)
        # b c f h w -> (b f) c h w, stored channels-last: one copy
        frames = x_t.permute(0, 2, 3, 4, 1).reshape(B * Fr, H, W, C).permute(0, 3, 1, 2)
        h = F.conv2d(frames, weight[:, :C], self.conv_in.bias, stride=p)
        if cfg.image_condition and image is not None:
            # First-frame condition, as image-to-video models do: image channels at frame 0 plus a mask channel.
            keep = (image_mask if image_mask is not None else x_t.new_ones(B, dtype=torch.bool)).to(x_t.dtype)
            cond = torch.cat([image * keep[:, None, None, None], keep[:, None, None, None].expand(B, 1, H, W)], dim=1)
            first = F.conv2d(cond.contiguous(memory_format=torch.channels_last), weight[:, C:], stride=p)
            h = h.index_add(0, torch.arange(B, device=h.device) * Fr, first)  # rows of frame 0
        return h.contiguous(memory_format=torch.channels_last)

    def embed(self, t: torch.Tensor, num_frames: int, frame_cond: torch.Tensor | None) -> torch.Tensor:
        """Per-frame conditioning embedding (B, F, D) from timestep, frame index and frame_cond."""
        D = self.cfg.width
        # sinusoidal() is float32; cast to the weights' dtype (a bf16 / fp16 pipeline)
        emb = self.time_mlp(sinusoidal(t, D).to(self.time_mlp[0].weight.dtype))[:, None]  # (B, 1, D)
        frames = torch.arange(num_frames, device=t.device)
        emb = emb + sinusoidal(frames, D).to(emb.dtype)[None]  # absolute frame index: motion needs to know "when"
        if frame_cond is not None:
            emb = emb + self.frame_proj(frame_cond)
        return emb

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor,
        frame_cond: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        words: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cfg = self.cfg
        _, C, Fr, H, W = x_t.shape
        p, k = cfg.patch_size, cfg.downsample
        if H % k or W % k:
            raise ValueError(f"height and width must be multiples of {k}, got {H}x{W}")
        if Fr > cfg.max_frames:
            raise ValueError(f"at most {cfg.max_frames} frames, got {Fr}")
        B = context.shape[0]
        # S rows are computed before the first cross-attention: 1 if every per-video input is shared.
        inputs = {"x_t": x_t, "t": t, "frame_cond": frame_cond, "image": image, "image_mask": image_mask}
        sizes = {name: v.shape[0] for name, v in inputs.items() if v is not None}
        if any(n not in (1, B) for n in sizes.values()):
            raise ValueError(f"batch sizes {sizes} must each be 1 or the context's {B}")
        S = max(sizes.values())
        x_t, t, frame_cond, image, image_mask = (
            None if v is None else v.expand(S, *v.shape[1:]) for v in inputs.values()
        )
        emb = self.embed(t, Fr, frame_cond)  # (S, F, D)

        h = self.stem(x_t, image, image_mask)  # (S*F, C, H/p, W/p), channels-last
        skip = h = self.res_in(h, emb.reshape(S * Fr, -1))
        h = self.down(h)  # (S*F, D, h, w), channels-last: (S*F, h, w, D) in memory
        gh, gw = h.shape[-2:]
        tokens = h.permute(0, 2, 3, 1).reshape(S, Fr, gh * gw, -1)  # a view, contiguous
        tokens = tokens + _grid_pos_embed(gh, gw, cfg.width).to(tokens)
        if self.frame_pos is not None:
            tokens = tokens + self.frame_pos[:Fr, None].to(tokens)  # (F, 1, D): which frame each token is in

        # The words join the per-frame embedding from the first cross-attention on: before it, rows
        # are shared by a CFG pair (whose words differ), and the context only enters there anyway.
        emb_words = None
        if (words is None) != (self.word_emb is None):
            raise ValueError("words (the caption's bag of words, Conditioning.words) must be given exactly "
                             f"when the model has word_embedding ({self.word_emb is not None})")
        if words is not None:
            if words.shape[0] != B:
                raise ValueError(f"words have batch {words.shape[0]}, the context {B}")
            emb_words = emb + self.word_emb(words, Fr)  # (B, F, D)
        after = emb if emb_words is None else emb_words  # what every branch after block 0's cross-attention reads
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, emb if i == 0 else after, context, context_mask,
                           emb_words if i == 0 else None)  # -> (B, F, N, D)

        if S != B:  # the shared rows, once per video from here on
            skip = skip.unflatten(0, (S, Fr)).expand(B, -1, -1, -1, -1).flatten(0, 1)
        emb = after.expand(B, -1, -1)
        h = self.norm_out(tokens).reshape(B * Fr, gh, gw, -1).permute(0, 3, 1, 2)  # channels-last view
        h = F.pixel_shuffle(self.up(h), 2) + skip
        h = self.res_out(h, emb.reshape(B * Fr, -1))
        h = self.conv_out(F.silu(self.norm_final(h)))
        out = F.pixel_shuffle(h, p)  # (B*F, C, H, W)
        return out.reshape(B, Fr, C, H, W).transpose(1, 2)
