"""Shared helpers for the core tests: a tiny ModelConfig, a seeded re-initialisation helper and
small conditioning inputs. Imported as `from support import ...` (a plain module, so it never
clashes with the conftest.py files pytest loads per folder). CPU-only and seeded."""

from __future__ import annotations

import struct
import wave
import zlib

import numpy as np
import torch

from vidgen.config import ModelConfig

# A handful of shapes-world words (kept local so the core tests do not depend on world.py).
TINY_VOCAB = (
    "a", "and", "moving", "small", "big", "slowly", "quickly",
    "red", "blue", "yellow", "green", "circle", "square", "triangle", "left", "right", "up", "down",
)

TINY = dict(
    width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
    context_length=16, vocabulary=TINY_VOCAB,
)


def tiny_config(**overrides) -> ModelConfig:
    """The tiny test config; keyword overrides replace fields (e.g. variant="joint", depth=2)."""
    return ModelConfig(**{**TINY, **overrides})


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Perturb every parameter with seeded N(0, std^2) noise.

    Many output layers are zero-initialised (adaLN-zero gates, the final conv), so at init the
    attention branches have no effect on the output; after this they all do, which makes the
    equivalence tests meaningful. Non-zero inits (LayerNorm weights of 1, ...) keep their scale.
    """
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model




def make_inputs(model, *, batch: int = 2, frames: int = 4, size: int = 16, audio: bool = True, seed: int = 0,
                prompts: list[str] | None = None):
    """(x_t, t, Conditioning) for a VideoModel: random video, spread timesteps, text (+ audio)."""
    g = torch.Generator().manual_seed(seed)
    prompts = prompts or ["a red circle moving left", "a big blue square moving up quickly", "a triangle"][:batch]
    prompts = (prompts * batch)[:batch]
    ids, _ = model.text.tokenize(prompts)
    cfg = model.cfg
    wave = None
    if audio:
        n = int(round(frames / cfg.fps * cfg.audio_sample_rate))
        wave = 0.3 * torch.randn(batch, n, generator=g)
    x = torch.randn(batch, cfg.in_channels, frames, size, size, generator=g)
    t = torch.linspace(50, 950, batch).long()
    with torch.no_grad():
        cond = model.encode(ids, frames, wave)
    return x, t, cond


# The cheapest model the pipeline accepts: patch 2 -> 16x16 minimum frames, 1-2 frames, one step in
# ~10 ms. For tests that generate many times (validation table, fuzz).
FAST = dict(TINY, width=16, heads=2, conv_channels=8, text_width=16, patch_size=2, n_mels=8,
            sample_size=16, num_frames=2, max_frames=8)


def tiny_pipeline(seed: int = 0, **overrides):
    """A VideoPipeline on CPU around a seeded, perturbed FAST model (overrides replace config fields)."""
    from vidgen.checkpoint import VideoModel
    from vidgen.pipeline import VideoPipeline

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = VideoModel(ModelConfig(**{**FAST, **overrides}))
    return VideoPipeline(randomize(model, seed).eval(), device="cpu")


# ------------------------------------------------------------------ media for the validation tests

def tone(seconds: float, sr: int, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, 1)


def write_pcm_wav(path, samples: np.ndarray, sr: int) -> str:
    """A WAV with the samples' own integer width (uint8, int16, int32), (N,) or (N, C)."""
    a = samples if samples.ndim == 2 else samples[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[1])
        w.setsampwidth(a.dtype.itemsize)
        w.setframerate(sr)
        w.writeframes(a.astype(a.dtype.newbyteorder("<")).tobytes())
    return str(path)


def sparse_wav(path, seconds: float, sr: int, head: np.ndarray) -> str:
    """A valid 16-bit mono WAV of `seconds`: `head` (int16) then silence. The silence is a sparse
    hole in the file, so an hour costs nothing to write, but its header announces every byte."""
    n = int(seconds * sr)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16))
        f.write(b"data" + struct.pack("<I", 2 * n))
        f.write(head.astype("<i2").tobytes())
        f.truncate(44 + 2 * n)
    return str(path)


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of width x height (all black): kilobytes on disk, width * height
    pixels once decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes((width + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
