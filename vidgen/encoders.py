"""Condition encoders: text (open_clip), audio (log-mel in torch) and the first-frame image.

All three produce what the denoiser consumes:
- TextEncoder: prompts -> per-token features (B, L, D) and a key mask (B, L) ending at EOT.
- AudioEncoder: waveform (B, S) -> one token per video frame (B, F, D).
- ImageEncoder: any PIL / numpy image -> the first-frame condition (3, H, W) in [-1, 1].
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .config import ModelConfig


# ----------------------------------------------------------------------------------------- text
@lru_cache(maxsize=4)
def get_tokenizer(context_length: int):
    """open_clip's BPE tokenizer (its vocabulary ships inside the wheel, so this works offline)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def normalize_words(prompt: str) -> list[str]:
    """Lower-cased words of a prompt, punctuation stripped (how the vocabulary check sees them)."""
    return re.findall(r"[a-z0-9']+", prompt.lower())


class TextEncoder(nn.Module):
    """open_clip tokenizer + a small open_clip TextTransformer returning per-token features.

    With `cfg.vocabulary` set, the embedding table holds rows only for the BPE tokens of those
    words (plus SOT/EOT); every other token id maps to a shared "unknown" row 0. That trims the
    49,408-row table to a few dozen rows for the shapes world.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from open_clip.transformer import TextTransformer

        self.context_length = cfg.context_length
        self.tokenizer = get_tokenizer(cfg.context_length)
        self.sot_id = self.tokenizer.sot_token_id
        self.eot_id = self.tokenizer.eot_token_id
        self.vocabulary = tuple(cfg.vocabulary)
        full_vocab = len(self.tokenizer.encoder)
        if self.vocabulary:
            ids = sorted({self.sot_id, self.eot_id} | {i for w in self.vocabulary for i in self.tokenizer.encode(w)})
            id_to_row = torch.zeros(full_vocab, dtype=torch.long)
            id_to_row[torch.tensor(ids)] = torch.arange(1, len(ids) + 1)
            num_rows = len(ids) + 1
        else:
            id_to_row = torch.arange(full_vocab)
            num_rows = full_vocab
        self.register_buffer("id_to_row", id_to_row, persistent=False)
        self.transformer = TextTransformer(
            context_length=cfg.context_length,
            vocab_size=num_rows,
            width=cfg.text_width,
            heads=cfg.text_heads,
            layers=cfg.text_layers,
            output_dim=None,
            proj_type="none",
            pool_type="none",
        )
        self.proj = nn.Linear(cfg.text_width, cfg.width)
        # see ModelConfig.text_token_skip; zero-init, so turning it on for a warm start changes nothing
        self.token_skip = nn.Linear(cfg.text_width, cfg.width, bias=False) if cfg.text_token_skip else None
        if self.token_skip is not None:
            nn.init.zeros_(self.token_skip.weight)

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, list[bool]]:
        """Token ids (B, L) and, per prompt, whether it was truncated to the context length."""
        truncated = [len(self.tokenizer.encode(p)) > self.context_length - 2 for p in prompts]
        return self.tokenizer(prompts), truncated

    def pieces(self, prompt: str) -> list[str]:
        """The BPE pieces of a prompt's content tokens (positions 1 .. EOT-1), e.g. ["yel", "low</w>"]."""
        ids = self.tokenize([prompt])[0][0].tolist()
        eot = ids.index(self.eot_id)
        return [self.tokenizer.decoder[i] for i in ids[1:eot]]

    def unknown_words(self, prompt: str) -> list[str]:
        """Words of the prompt outside the model's vocabulary (empty when the vocabulary is open)."""
        if not self.vocabulary:
            return []
        known = set(self.vocabulary)
        return [w for w in normalize_words(prompt) if w not in known]

    def key_mask(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) bool, True up to and including EOT. Pad id 0 is also a real BPE token ("!"), so
        the mask comes from the EOT position, not from `ids != 0`."""
        eot = (token_ids == self.eot_id).int().argmax(dim=-1)
        return torch.arange(token_ids.shape[1], device=token_ids.device)[None] <= eot[:, None]

    def bag_of_words(self, token_ids: torch.Tensor) -> torch.Tensor:
        """token_ids (B, L) -> (B, text_width): the mean of the content tokens' own embeddings
        (between SOT and EOT; zeros for an empty prompt). See ModelConfig.word_embedding."""
        content = self.key_mask(token_ids) & (token_ids != self.eot_id)
        content[:, 0] = False  # SOT
        tokens = self.transformer.token_embedding(self.id_to_row[token_ids])  # (B, L, text_width)
        weights = content.to(tokens.dtype)
        return (tokens * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp(min=1)

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """token_ids (B, L) -> features (B, L, width), key mask (B, L)."""
        tt = self.transformer
        rows = self.id_to_row[token_ids]
        tokens = tt.token_embedding(rows)
        x = tokens + tt.positional_embedding[: rows.shape[1]]
        x = tt.transformer(x, attn_mask=tt.attn_mask)  # causal, batch-first
        out = self.proj(tt.ln_final(x))
        if self.token_skip is not None:
            out = out + self.token_skip(tokens)
        return out, self.key_mask(token_ids)


# ---------------------------------------------------------------------------------------- audio
def resample(audio: torch.Tensor, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Band-limited resampling of (..., S) by zero-padding / truncating the spectrum (FFT)."""
    if orig_sr == target_sr:
        return audio
    n_in = audio.shape[-1]
    n_out = max(1, int(round(n_in * target_sr / orig_sr)))
    spec = torch.fft.rfft(audio.double(), dim=-1)
    keep = min(spec.shape[-1], n_out // 2 + 1)
    out_spec = spec.new_zeros(*spec.shape[:-1], n_out // 2 + 1)
    out_spec[..., :keep] = spec[..., :keep]
    return (torch.fft.irfft(out_spec, n=n_out, dim=-1) * (n_out / n_in)).to(audio.dtype)


def prepare_audio(audio, sample_rate: int, *, num_frames: int, fps: int, target_sr: int) -> torch.Tensor:
    """Mono waveform (S,) or (S, C) / (C, S) at any rate -> float32 (num_frames / fps * target_sr,):
    downmixed, NaN-free, clipped to [-1, 1], resampled, then trimmed or zero-padded to the video."""
    integral = isinstance(sample_rate, (int, np.integer)) or (
        isinstance(sample_rate, (float, np.floating)) and math.isfinite(sample_rate) and float(sample_rate).is_integer())
    if isinstance(sample_rate, (bool, np.bool_)) or not integral or sample_rate <= 0:
        raise ValueError(f"the audio sample rate must be a positive integer, got {sample_rate!r}"[:120])
    try:
        arr = np.asarray(audio)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise ValueError(f"the audio samples are not a numeric array ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"audio samples must be numbers (int or float PCM), got dtype {arr.dtype}")
    if arr.dtype.kind == "i":  # signed integer PCM (e.g. int16 WAV samples): full scale -> [-1, 1]
        arr = arr / -float(np.iinfo(arr.dtype).min)
    elif arr.dtype.kind == "u":  # unsigned PCM (8-bit WAV): centred on mid-scale
        mid = (float(np.iinfo(arr.dtype).max) + 1) / 2
        arr = (arr - mid) / mid
    wave = torch.as_tensor(arr, dtype=torch.float32)
    if wave.dim() == 2:  # downmix; channels are the short axis
        wave = wave.mean(dim=1 if wave.shape[0] > wave.shape[1] else 0)
    if wave.dim() != 1:
        raise ValueError(f"audio must be mono (S,) or multi-channel (S, C); got shape {tuple(wave.shape)}")
    if wave.numel() == 0:
        raise ValueError("the audio is empty")
    wave = torch.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1, 1)
    wave = resample(wave, int(sample_rate), target_sr).clamp(-1, 1)  # band-limiting overshoots near full scale
    n = int(round(num_frames / fps * target_sr))
    return F.pad(wave[:n], (0, max(0, n - wave.shape[0])))


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK-mel filters (n_mels, n_fft // 2 + 1)."""
    f_max = f_max or sample_rate / 2
    hz_to_mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0)


class AudioEncoder(nn.Module):
    """Waveform -> log-mel spectrogram (torch.stft) -> pooled to one token per video frame.

    Each token also carries the frame's log loudness (RMS), the feature that drives object size.
    """

    def __init__(self, cfg: ModelConfig, n_fft: int = 512, hop_length: int = 160):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = cfg.audio_sample_rate, n_fft, hop_length
        self.register_buffer("mel", mel_filterbank(cfg.n_mels, n_fft, cfg.audio_sample_rate), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.net = nn.Sequential(nn.Linear(cfg.n_mels + 1, cfg.width), nn.SiLU(), nn.Linear(cfg.width, cfg.width))

    def features(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        """audio (B, S) -> per-frame features (B, F, n_mels + 1): mean log-mel and log RMS, in float32
        whatever the module's dtype (a bf16 STFT and log would lose the quiet parts)."""
        audio = audio.float()
        spec = torch.stft(audio, self.n_fft, self.hop_length, window=self.window.float(), return_complex=True)
        logmel = torch.log(self.mel.float() @ spec.abs().pow(2) + 1e-6)  # (B, n_mels, T)
        pooled = F.adaptive_avg_pool1d(logmel, num_frames).transpose(1, 2)  # (B, F, n_mels)
        chunks = F.pad(audio, (0, (-audio.shape[-1]) % num_frames)).reshape(audio.shape[0], num_frames, -1)
        loud = torch.log(chunks.pow(2).mean(-1, keepdim=True) + 1e-6)  # (B, F, 1)
        # Fixed affine scaling keeps typical values near [-1, 1] without data statistics.
        return torch.cat([(pooled + 6.0) / 6.0, (loud + 6.0) / 6.0], dim=-1)

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        """audio (B, S) at `sample_rate` -> tokens (B, F, width)."""
        return self.net(self.features(audio, num_frames).to(self.net[0].weight.dtype))


# ---------------------------------------------------------------------------------------- image
def _to_rgb_uint8(image) -> np.ndarray:
    """Any PIL image / array (RGBA, LA, P, L, I;16, I, F, 1-bit) -> (H, W, 3) uint8; alpha is
    composited over black (the shapes world's background)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = arr.transpose(1, 2, 0)  # CHW -> HWC
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)) or arr.dtype.kind not in "biuf":
            raise ValueError(f"an image array must be (H, W), (H, W, C) or (C, H, W) numbers, got {arr.shape} {arr.dtype}")
        if arr.size == 0:
            raise ValueError(f"the image is empty (shape {arr.shape})")
        if arr.dtype.kind == "f":
            arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        if arr.dtype == np.uint16:  # 16-bit data: the dtype fixes the range (as for PIL's I;16)
            arr = arr / 65535.0
        if arr.dtype != np.uint8:
            arr = arr.astype(np.float64)
            if arr.min() < 0:  # a [-1, 1] tensor
                arr = (arr + 1) / 2
            scale = 255.0 if arr.max() <= 1.0 else (255.0 / 65535.0 if arr.max() > 255 else 1.0)
            arr = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        if arr.shape[-1] == 4:
            alpha = arr[..., 3:4].astype(np.float32) / 255.0
            arr = (arr[..., :3].astype(np.float32) * alpha).round().astype(np.uint8)
        return np.ascontiguousarray(arr[..., :3])
    if isinstance(image, Image.Image):
        if image.width < 1 or image.height < 1:
            raise ValueError(f"the image is empty ({image.width}x{image.height} pixels)")
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            return _to_rgb_uint8(np.asarray(image, dtype=np.float64) / (65535.0 if image.mode != "F" else 1.0))
        if image.mode != "RGB":
            image = image.convert("RGBA")
        return _to_rgb_uint8(np.asarray(image))
    raise ValueError(f"unsupported image type {type(image).__name__}; pass a PIL image or a numpy array")


class ImageEncoder:
    """Brings an image of any size and mode to the first-frame condition (3, H, W) in [-1, 1]:
    RGB, center-cropped to the video's aspect ratio, resized with antialiasing."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width

    def __call__(self, image) -> torch.Tensor:
        rgb = Image.fromarray(_to_rgb_uint8(image))
        w, h = rgb.size
        target = self.width / self.height
        if w / h > target:  # too wide: crop the sides
            new_w = max(1, round(h * target))
            rgb = rgb.crop(((w - new_w) // 2, 0, (w - new_w) // 2 + new_w, h))
        elif w / h < target:
            new_h = max(1, round(w / target))
            rgb = rgb.crop((0, (h - new_h) // 2, w, (h - new_h) // 2 + new_h))
        rgb = rgb.resize((self.width, self.height), Image.Resampling.BICUBIC if min(w, h) < self.height else Image.Resampling.LANCZOS)
        arr = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float()
        return arr / 127.5 - 1.0
