"""Attention-map products: word heat maps, temporal matrices, spatial maps, colormaps and overlays.

Pure numpy/torch on CPU. Input is the recorder's store, ``{(step, layer_name, kind): tensor}``:

    spatial   (B, F, N, N)    within-frame self-attention, N = h*w tokens, index = y*w + x
    temporal  (B, N, F, F)    per location, frame-to-frame attention (query frames are rows)
    cross     (B, F, N, L)    each pixel token over the L condition tokens (text, then audio)
    joint     (B, F*N, F*N)   full space-time attention, token index = f*N + n

Heads are averaged by the recorder; when it recorded per head an extra axis H follows B.
Every query row is a softmax, so it sums to 1. All outputs are numpy float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Store = Mapping[tuple[int, str, str], torch.Tensor]
_BASE_NDIM = {"spatial": 4, "temporal": 4, "cross": 4, "joint": 3}  # without the optional heads axis


@dataclass
class MapContext:
    """What is needed to interpret a store: attention grid, frames, and where words/audio sit in the context."""

    grid: tuple[int, int]  # (h, w) of the attention token grid
    num_frames: int
    words: list[tuple[str, list[int]]] = field(default_factory=list)  # word -> its context positions
    audio_tokens: slice | None = None  # positions of the audio tokens in the context
    batch_index: int = 0  # the conditional row; 1 when the CFG batch is [uncond, cond]

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]


# ----------------------------------------------------------------------------------------- tokens

def merge_bpe_pieces(pieces: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Merge open_clip BPE pieces into words: ["yel", "low</w>", "triangle</w>"] ->
    [("yellow", [0, 1]), ("triangle", [2])]. Indices are positions in ``pieces``."""
    words, text, idx = [], "", []
    for i, piece in enumerate(pieces):
        end = piece.endswith("</w>")
        text += piece[:-4] if end else piece
        idx.append(i)
        if end:
            words.append((text, idx))
            text, idx = "", []
    if idx:  # a truncated prompt can end mid-word
        words.append((text, idx))
    return words


# ------------------------------------------------------------------------------------- selection

def select(store: Store, *, kind: str, layers: Sequence[str] | str | None = None,
           steps: tuple[int, int] | int | None = None) -> list[torch.Tensor]:
    """Tensors of one kind in (step, layer) order, filtered by layers and an inclusive step range (lo, hi)
    or a single step. A layer pattern matches whole dot-separated parts of a name: "blocks.1" and
    "cross" match "blocks.1.cross", but "blocks.1" does not match "blocks.10.cross"."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(steps, int):
        steps = (steps, steps)
    keys = sorted(k for k in store if k[2] == kind
                  and (layers is None or any(_layer_matches(k[1], p) for p in layers))
                  and (steps is None or steps[0] <= k[0] <= steps[1]))
    return [store[k] for k in keys]


def _layer_matches(name: str, pattern: str) -> bool:
    n, p = name.split("."), pattern.split(".")
    return any(n[i:i + len(p)] == p for i in range(len(n) - len(p) + 1))


def _mean(store: Store, ctx: MapContext, kind: str, layers, head: int | None, steps) -> torch.Tensor:
    """Average the selected maps of ``kind`` over layers, steps (and heads unless ``head`` picks one),
    for the conditional batch row. Returns the map without batch/head axes, e.g. (F, N, L) for cross."""
    maps = select(store, kind=kind, layers=layers, steps=steps)
    if not maps:
        have = sorted({(k[1], k[2]) for k in store})
        raise ValueError(f"no {kind!r} attention recorded for layers={layers!r}, steps={steps!r} "
                         f"(recorded layers/kinds: {have[:8]}{' ...' if len(have) > 8 else ''})")
    total = None
    for a in maps:
        base = _BASE_NDIM[kind]
        if a.ndim not in (base, base + 1):
            raise ValueError(f"{kind!r} map has shape {tuple(a.shape)}; expected {base} or {base + 1} dims")
        if not -a.shape[0] <= ctx.batch_index < a.shape[0]:
            raise ValueError(f"batch_index={ctx.batch_index} but the recorded batch has {a.shape[0]} rows")
        a = a[ctx.batch_index].float()
        if a.ndim == base:  # per-head axis present
            if head is None:
                a = a.mean(0)
            elif not -a.shape[0] <= head < a.shape[0]:
                raise ValueError(f"head={head} out of range: {a.shape[0]} heads were recorded")
            else:
                a = a[head]
        elif head is not None:
            raise ValueError(f"head={head} requested but attention was recorded with heads averaged; "
                             "record per head to inspect a single head")
        if total is not None and total.shape != a.shape:
            raise ValueError(f"cannot average {kind!r} maps of shapes {tuple(total.shape)} and "
                             f"{tuple(a.shape)}; select layers that share one grid")
        total = a if total is None else total + a
    return total / len(maps)


def normalize(x: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] over the whole array; a constant array becomes zeros."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _rows_to_one(m: torch.Tensor) -> torch.Tensor:
    # averaging keeps rows stochastic up to float error; renormalize so consumers can rely on it
    return m / m.sum(-1, keepdim=True).clamp_min(1e-12)


def _loc_index(ctx: MapContext, loc: tuple[int, int]) -> int:
    (y, x), (h, w) = loc, ctx.grid
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"grid location {loc} outside the {h}x{w} attention grid")
    return y * w + x


# ------------------------------------------------------------------------------------ products

def word_heatmaps(store: Store, ctx: MapContext, *, layers=None, head: int | None = None,
                  steps=None) -> dict[str, np.ndarray]:
    """Cross-attention heat map per word, {word: (F, h, w)} in [0, 1] (min-max per word over all frames).
    A word's tokens are summed. A repeated word gets a suffix: "a", "a (2)"."""
    cross = _mean(store, ctx, "cross", layers, head, steps)  # (F, N, L)
    f, n, length = cross.shape
    if n != ctx.num_tokens:
        raise ValueError(f"cross map has {n} pixel tokens but the grid {ctx.grid} has {ctx.num_tokens}")
    out: dict[str, np.ndarray] = {}
    for word, pos in ctx.words:
        if not pos or max(pos) >= length:
            raise ValueError(f"word {word!r} positions {pos} outside the {length} context tokens")
        key, k = word, 2
        while key in out:
            key, k = f"{word} ({k})", k + 1
        heat = cross[..., pos].sum(-1).reshape(f, *ctx.grid)  # (F, h, w)
        out[key] = normalize(heat.numpy())
    return out


def audio_heatmap(store: Store, ctx: MapContext, *, layers=None, head: int | None = None,
                  steps=None) -> np.ndarray:
    """Where pixels attend to the audio tokens (summed over them): (F, h, w) in [0, 1]."""
    if ctx.audio_tokens is None:
        raise ValueError("this context has no audio tokens (no audio was given)")
    cross = _mean(store, ctx, "cross", layers, head, steps)  # (F, N, L)
    return normalize(cross[..., ctx.audio_tokens].sum(-1).reshape(-1, *ctx.grid).numpy())


def temporal_matrices(store: Store, ctx: MapContext, *, layers=None, head: int | None = None,
                      steps=None) -> np.ndarray:
    """Frame-to-frame attention at every grid location: (N, F, F), rows sum to 1."""
    return _rows_to_one(_mean(store, ctx, "temporal", layers, head, steps)).numpy()


def temporal_matrix(store: Store, ctx: MapContext, *, layers=None, head: int | None = None, steps=None,
                    location: tuple[int, int] | None = None) -> np.ndarray:
    """Frame-to-frame attention (F, F), averaged over locations or at one grid location (y, x)."""
    mats = _mean(store, ctx, "temporal", layers, head, steps)  # (N, F, F)
    m = mats.mean(0) if location is None else mats[_loc_index(ctx, location)]
    return _rows_to_one(m).numpy()


def joint_to_temporal(store: Store, ctx: MapContext, *, layers=None, head: int | None = None, steps=None,
                      location: tuple[int, int] | None = None) -> np.ndarray:
    """Frame-to-frame attention (F, F) from full space-time ("joint") attention: the mass a query
    token in frame i puts on all tokens of frame j, averaged over query locations (or at one)."""
    joint = _mean(store, ctx, "joint", layers, head, steps)  # (F*N, F*N)
    f, n = ctx.num_frames, ctx.num_tokens
    per_frame = joint.reshape(f, n, f, n).sum(-1)  # (F, N, F): query (frame, loc) -> key frame
    m = per_frame.mean(1) if location is None else per_frame[:, _loc_index(ctx, location)]
    return _rows_to_one(m).numpy()


def pixel_to_grid(y: float, x: float, height: int, width: int, grid: tuple[int, int]) -> tuple[int, int]:
    """Map a pixel (y, x) of a height x width image to the attention-grid cell (gy, gx) containing it."""
    h, w = grid
    gy = min(max(int(y * h / height), 0), h - 1)
    gx = min(max(int(x * w / width), 0), w - 1)
    return gy, gx


def spatial_map(store: Store, ctx: MapContext, *, frame: int, query: tuple[int, int], layers=None,
                head: int | None = None, steps=None) -> np.ndarray:
    """Where the grid cell ``query`` = (gy, gx) of ``frame`` attends within that frame: (h, w), sums to 1."""
    spatial = _mean(store, ctx, "spatial", layers, head, steps)  # (F, N, N)
    if not -spatial.shape[0] <= frame < spatial.shape[0]:
        raise ValueError(f"frame {frame} out of range: {spatial.shape[0]} frames recorded")
    return spatial[frame, _loc_index(ctx, query)].reshape(ctx.grid).numpy()


def audio_attention(store: Store, ctx: MapContext, *, layers=None, head: int | None = None,
                    steps=None) -> np.ndarray:
    """Each frame's attention over the audio tokens, averaged over pixels and renormalized: (F, A)."""
    if ctx.audio_tokens is None:
        raise ValueError("this context has no audio tokens (no audio was given)")
    cross = _mean(store, ctx, "cross", layers, head, steps)  # (F, N, L)
    audio = cross[..., ctx.audio_tokens]
    if audio.shape[-1] == 0:
        raise ValueError(f"audio_tokens={ctx.audio_tokens} selects nothing in {cross.shape[-1]} tokens")
    return _rows_to_one(audio.mean(1)).numpy()


# ---------------------------------------------------------------------------------------- images

# 17 anchors (indices 0, 16, ..., 240, 255) of matplotlib's 256-entry LUTs; linear interpolation
# between them is visually indistinguishable and avoids a matplotlib dependency.
_ANCHOR_POS = np.array([*range(0, 256, 16), 255], dtype=np.float64)
_ANCHORS = {
    "inferno": [
        (0.001462, 0.000466, 0.013866), (0.042253, 0.028139, 0.141141), (0.129285, 0.047293, 0.290788),
        (0.238273, 0.036621, 0.396353), (0.341500, 0.062325, 0.429425), (0.441207, 0.099338, 0.431594),
        (0.540920, 0.134729, 0.415123), (0.640135, 0.171438, 0.381065), (0.735683, 0.215906, 0.330245),
        (0.822386, 0.275197, 0.266085), (0.894305, 0.353399, 0.193584), (0.946965, 0.449191, 0.115272),
        (0.978422, 0.557937, 0.034931), (0.987874, 0.675267, 0.065257), (0.974638, 0.797692, 0.206332),
        (0.947594, 0.917399, 0.410665), (0.988362, 0.998364, 0.644924)],
    "viridis": [
        (0.267004, 0.004874, 0.329415), (0.282327, 0.094955, 0.417331), (0.278826, 0.175490, 0.483397),
        (0.258965, 0.251537, 0.524736), (0.229739, 0.322361, 0.545706), (0.199430, 0.387607, 0.554642),
        (0.172719, 0.448791, 0.557885), (0.149039, 0.508051, 0.557250), (0.127568, 0.566949, 0.550556),
        (0.120638, 0.625828, 0.533488), (0.157851, 0.683765, 0.501686), (0.246070, 0.738910, 0.452024),
        (0.369214, 0.788888, 0.382914), (0.515992, 0.831158, 0.294279), (0.678489, 0.863742, 0.189503),
        (0.845561, 0.887322, 0.099702), (0.993248, 0.906157, 0.143936)],
}
COLORMAPS = tuple(_ANCHORS)


@cache
def _lut(name: str) -> np.ndarray:
    if name not in _ANCHORS:
        raise ValueError(f"unknown colormap {name!r}; choose from {COLORMAPS}")
    anchors = np.asarray(_ANCHORS[name])
    lut = np.stack([np.interp(np.arange(256), _ANCHOR_POS, anchors[:, c]) for c in range(3)], -1)
    lut = (lut * 255).round().astype(np.uint8)
    lut.flags.writeable = False  # shared by every caller
    return lut


def colormap(x: np.ndarray, name: str = "inferno") -> np.ndarray:
    """Map values in [0, 1] (clipped; NaN -> 0) to colors: (...) -> (..., 3) uint8."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0)
    return _lut(name)[(np.clip(x, 0, 1) * 255).round().astype(np.intp)]


def overlay(frames: np.ndarray, heat: np.ndarray, *, alpha: float = 0.55, cmap: str = "inferno") -> np.ndarray:
    """Blend a colored heat map over video frames. frames (F, H, W, 3) uint8, heat (F, h, w) or (h, w)
    in [0, 1] (bilinearly upsampled to H x W) -> (F, H, W, 3) uint8."""
    frames = np.asarray(frames)
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim == 2:
        heat = heat[None]
    fr, hh, ww, _ = frames.shape
    if heat.shape[0] not in (1, fr):
        raise ValueError(f"heat has {heat.shape[0]} frames but the video has {fr}")
    up = F.interpolate(torch.from_numpy(heat)[:, None], size=(hh, ww), mode="bilinear", align_corners=False)
    color = colormap(up[:, 0].numpy(), cmap).astype(np.float32)  # (F|1, H, W, 3)
    out = (1 - alpha) * frames.astype(np.float32) + alpha * color
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def heat_to_image(mat: np.ndarray, *, scale: int = 16, cmap: str = "inferno",
                  vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Show a matrix (a, b) crisply: scale to [0, 1] (min-max unless vmin/vmax given), color, and
    nearest-upscale each cell to scale x scale pixels -> (a*scale, b*scale, 3) uint8."""
    m = np.asarray(mat, dtype=np.float32)
    lo = float(m.min()) if vmin is None else vmin
    hi = float(m.max()) if vmax is None else vmax
    m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    return colormap(m, cmap).repeat(scale, 0).repeat(scale, 1)


def strip(frames: np.ndarray, *, columns: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Lay frames (F, H, W, 3) out row-major on a grid with ``columns`` columns (default: one row),
    separated by ``pad`` pixels -> (H', W', 3) uint8."""
    frames = np.asarray(frames)
    f, h, w, c = frames.shape
    cols = max(1, min(columns or f, f))
    rows = -(-f // cols)
    out = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), pad_value, dtype=frames.dtype)
    for i, frame in enumerate(frames):
        y, x = (i // cols) * (h + pad), (i % cols) * (w + pad)
        out[y:y + h, x:x + w] = frame
    return out
