"""Shared helpers for the core tests: a tiny ModelConfig, a seeded re-initialisation helper and
small conditioning inputs. Imported as `from support import ...` (a plain module, so it never
clashes with the conftest.py files pytest loads per folder). CPU-only and seeded."""

from __future__ import annotations

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
