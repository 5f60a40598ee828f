"""Attention with swappable processors (diffusers style).

`Attention` owns the projections; *how* attention is computed lives in a processor:
- `SDPAProcessor` (default, fast): F.scaled_dot_product_attention, never materializes probabilities
  (except for short sequences on a CPU with several torch threads, where the written-out form is faster).
- `EagerProcessor`: softmax(QK^T / sqrt(d) + bias) V written out, handing the probabilities to a
  callback; the recorder installs it to capture attention maps.
- `ZeroProcessor`: outputs zeros, so a residual branch becomes the identity (an ablation, e.g.
  "temporal attention off").

Every Attention module has a `kind`: "spatial" (tokens of one frame), "temporal" (one location
across frames), "cross" (video tokens to condition tokens) or "joint" (all space-time tokens).
Temporal attention is the gated TGS form: softmax(QK^T / sqrt(d) + gamma * B) V, with B a
learnable relative temporal position bias (heads, 2*max_frames - 1) and gamma a learnable gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("spatial", "temporal", "cross", "joint")

# Called by the eager processor: (attention module, probabilities (B', heads, Nq, Nk), layout).
ProbsCallback = Callable[["Attention", torch.Tensor, tuple[int, ...]], None]


class Attention(nn.Module):
    """Multi-head attention whose computation is delegated to `self.processor`.

    forward(x (B', Nq, dim), context (B', Nk, context_dim) | None, key_mask (B', Nk) bool | None,
    layout) -> (B', Nq, dim). `layout` is (B, F, N): how the caller folded the video into B' and
    Nq; processors that record maps use it to unfold them.
    """

    def __init__(self, dim: int, heads: int, kind: str, *, context_dim: int | None = None, max_frames: int = 32):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown attention kind {kind!r}; expected one of {KINDS}")
        self.kind, self.heads, self.head_dim = kind, heads, dim // heads
        if kind == "cross":
            self.to_q = nn.Linear(dim, dim)
            self.to_kv = nn.Linear(context_dim or dim, 2 * dim)
        else:
            self.to_qkv = nn.Linear(dim, 3 * dim)  # fused: one matmul instead of three
        self.to_out = nn.Linear(dim, dim)
        if kind == "temporal":
            self.max_frames = max_frames
            # ALiBi-like init (nearer frames attend more), a different slope per head.
            slopes = torch.tensor([2.0 ** (-(h + 1)) for h in range(heads)])
            rel = torch.arange(-(max_frames - 1), max_frames).abs().float()
            self.rel_bias = nn.Parameter(-slopes[:, None] * rel[None, :])  # (heads, 2*max_frames - 1)
            self.gate = nn.Parameter(torch.ones(()))  # gamma
        self.processor: nn.Module | Callable = SDPAProcessor()

    def qkv(self, x: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project and split heads: each (B', heads, N, head_dim)."""
        if self.kind == "cross":
            q = self.to_q(x)
            k, v = self.to_kv(context).chunk(2, dim=-1)
        else:
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        split = lambda t: t.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)  # noqa: E731
        return split(q), split(k), split(v)

    def temporal_bias(self, num_frames: int) -> torch.Tensor:
        """B, the relative position bias as a (heads, F, F) matrix: B[h, i, j] = table[h, j - i]."""
        idx = torch.arange(num_frames, device=self.rel_bias.device)
        rel = idx[None, :] - idx[:, None] + self.max_frames - 1
        return self.rel_bias[:, rel]

    def attn_bias(self, key_mask: torch.Tensor | None, nq: int, nk: int, dtype: torch.dtype) -> torch.Tensor | None:
        """The additive bias for this call: gamma * B for temporal attention, -inf on masked keys."""
        bias = None
        if self.kind == "temporal":
            bias = (self.gate * self.temporal_bias(nk)).to(dtype)[None]  # (1, heads, F, F)
        if key_mask is not None:
            masked = torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device)
            masked = masked.masked_fill(~key_mask, float("-inf"))[:, None, None, :]  # (B', 1, 1, Nk)
            bias = masked if bias is None else bias + masked
        return bias

    def merge(self, out: torch.Tensor) -> torch.Tensor:
        """(B', heads, N, head_dim) -> output projection (B', N, dim)."""
        return self.to_out(out.transpose(1, 2).flatten(2))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        layout: tuple[int, ...] = (),
    ) -> torch.Tensor:
        return self.processor(self, x, context, key_mask, layout)


def attention_probs(attn: Attention, q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(QK^T / sqrt(d) + bias), written out: (B', heads, Nq, Nk) from q (B', heads, Nq, d)
    and k (B', heads, Nk, d)."""
    # The scale goes on q (never larger than the scores) and the bias is added in place: two
    # fewer passes over the (B', heads, Nq, Nk) scores than writing the formula out.
    scores = (q * (1.0 / math.sqrt(attn.head_dim))) @ k.transpose(-2, -1)
    bias = attn.attn_bias(key_mask, q.shape[-2], k.shape[-2], q.dtype)
    if bias is not None:
        scores += bias
    return scores.softmax(dim=-1)


class SDPAProcessor:
    """The fast path: scaled-dot-product attention without handing out probabilities.

    On a CPU with more than one torch thread, torch's fused kernel is slower than the written-out
    softmax when each score matrix is small, so calls with Nq * Nk <= `cpu_explicit_max` use the
    written-out form there: on the shipped model that is temporal (16x16) and spatial (64x64)
    attention, and a default generation on 2 threads went 1113 -> 979 ms
    (benchmarks/bench_before_after.py). On 1 thread the written-out form was 4% slower (1647 -> 1716
    and 1712 -> 1780 ms), and cross attention (1024x32) was slower written out, hence both conditions.
    Set `cpu_explicit_max` to 0 to always use the fused kernel. Other devices always use it.
    """

    def __init__(self, cpu_explicit_max: int = 64 * 64):
        self.cpu_explicit_max = cpu_explicit_max

    def __call__(self, attn: Attention, x, context=None, key_mask=None, layout=()):
        q, k, v = attn.qkv(x, context)
        if (q.device.type == "cpu" and q.shape[-2] * k.shape[-2] <= self.cpu_explicit_max
                and torch.get_num_threads() > 1):
            return attn.merge(attention_probs(attn, q, k, key_mask) @ v)
        bias = attn.attn_bias(key_mask, q.shape[-2], k.shape[-2], q.dtype)
        return attn.merge(F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


class EagerProcessor:
    """softmax(QK^T / sqrt(d) + bias) V computed explicitly; hands the probabilities
    (B', heads, Nq, Nk) to `on_probs` when given."""

    def __init__(self, on_probs: ProbsCallback | None = None):
        self.on_probs = on_probs

    def __call__(self, attn: Attention, x, context=None, key_mask=None, layout=()):
        q, k, v = attn.qkv(x, context)
        probs = attention_probs(attn, q, k, key_mask)
        if self.on_probs is not None:
            self.on_probs(attn, probs, layout)
        return attn.merge(probs @ v)


class ZeroProcessor:
    """Outputs zeros of the right shape: the residual branch it sits in becomes the identity."""

    def __call__(self, attn: Attention, x, context=None, key_mask=None, layout=()):
        return torch.zeros_like(x)


def attention_modules(model: nn.Module) -> dict[str, Attention]:
    """Every Attention submodule of `model`, by qualified name (e.g. "blocks.0.temporal")."""
    return {name: m for name, m in model.named_modules() if isinstance(m, Attention)}


def get_processors(model: nn.Module) -> dict[str, object]:
    """The processor of every attention layer, keyed by layer name."""
    return {name: m.processor for name, m in attention_modules(model).items()}


def set_processors(model: nn.Module, processors: object | dict[str, object]) -> None:
    """Install one processor on every attention layer, or a {layer name: processor} mapping
    (names must exist; layers not named keep theirs)."""
    modules = attention_modules(model)
    if not isinstance(processors, dict):
        processors = {name: processors for name in modules}
    unknown = sorted(set(processors) - set(modules))
    if unknown:
        raise KeyError(f"no attention layers named {unknown}")
    for name, proc in processors.items():
        modules[name].processor = proc
