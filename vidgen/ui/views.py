"""Pictures for the app, as uint8 (H, W, 3) numpy arrays: frame grids, overlays, matrices, plots.

Pure numpy + PIL (for text labels), no gradio, so every picture is unit-testable. Frames are
uint8 (F, H, W, 3) as everywhere in vidgen; heat maps are floats in [0, 1]. Pixels are upscaled
with nearest neighbour (integer factors), so tiny videos stay crisp instead of blurry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..maps import colormap, heat_to_image, overlay

BACKGROUND = 255  # page-white padding between panels
INK = (40, 40, 48)
HIGHLIGHT = (0, 200, 255)


# ------------------------------------------------------------------------------------ basics

def upscale(image: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour upscale of (H, W, C) or (F, H, W, C) by an integer factor."""
    k = max(1, int(k))
    if k == 1:
        return image
    return image.repeat(k, -3).repeat(k, -2)


def auto_scale(size: int, target: int = 128) -> int:
    """The integer factor that brings a side of `size` pixels to about `target` (at least 1)."""
    return max(1, round(target / max(1, size)))


@cache
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def text_width(text: str, size: int = 12) -> int:
    left, _, right, _ = _font(size).getbbox(text)
    return int(right - left)


def draw_text(image: np.ndarray, xy: tuple[int, int], text: str, *, size: int = 12,
              fill: tuple[int, int, int] = INK) -> np.ndarray:
    """Write `text` onto a copy of `image` with its top-left corner at xy = (x, y)."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    ImageDraw.Draw(pil).text(xy, text, fill=fill, font=_font(size))
    return np.asarray(pil)


def blank(height: int, width: int, value: int = BACKGROUND) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def hstack(panels: list[np.ndarray], pad: int = 12) -> np.ndarray:
    """Place panels side by side, top-aligned, on a white background."""
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + pad * (len(panels) - 1)
    out = blank(h, w)
    x = 0
    for p in panels:
        out[: p.shape[0], x: x + p.shape[1]] = p
        x += p.shape[1] + pad
    return out


def vstack(panels: list[np.ndarray], pad: int = 6) -> np.ndarray:
    """Stack panels vertically, left-aligned, on a white background."""
    w = max(p.shape[1] for p in panels)
    h = sum(p.shape[0] for p in panels) + pad * (len(panels) - 1)
    out = blank(h, w)
    y = 0
    for p in panels:
        out[y: y + p.shape[0], : p.shape[1]] = p
        y += p.shape[0] + pad
    return out


def titled(panel: np.ndarray, title: str, size: int = 12) -> np.ndarray:
    """A panel with a one-line title above it."""
    head = draw_text(blank(size + 8, max(panel.shape[1], text_width(title, size) + 4)), (2, 2), title, size=size)
    return vstack([head, panel], pad=0)


# ------------------------------------------------------------------------------ frame grids

@dataclass(frozen=True)
class GridLayout:
    """Where each frame sits in a picture made by `frame_grid` (for mapping clicks back)."""

    num_frames: int
    frame_height: int  # of one source frame, before upscaling
    frame_width: int
    columns: int
    scale: int
    pad: int

    @property
    def cell(self) -> tuple[int, int]:
        """(height, width) of one upscaled frame plus its padding."""
        return self.frame_height * self.scale + self.pad, self.frame_width * self.scale + self.pad

    def origin(self, frame: int) -> tuple[int, int]:
        """(y, x) of a frame's top-left pixel in the picture."""
        ch, cw = self.cell
        return (frame // self.columns) * ch, (frame % self.columns) * cw

    def locate(self, x: float, y: float) -> tuple[int, float, float] | None:
        """A click at picture pixel (x, y) -> (frame, y, x) in that frame's own pixels, or None for padding."""
        ch, cw = self.cell
        if x < 0 or y < 0:
            return None
        row, col = int(y // ch), int(x // cw)
        frame = row * self.columns + col
        if col >= self.columns or frame >= self.num_frames:
            return None
        fy, fx = (y - row * ch) / self.scale, (x - col * cw) / self.scale
        if fy >= self.frame_height or fx >= self.frame_width:
            return None  # on the padding
        return frame, fy, fx


def default_columns(num_frames: int, max_columns: int = 8) -> int:
    """One row up to `max_columns` frames, then rows of equal length (16 frames -> 2 rows of 8)."""
    if num_frames <= max_columns:
        return max(1, num_frames)
    rows = -(-num_frames // max_columns)
    return -(-num_frames // rows)


def frame_grid(frames: np.ndarray, *, columns: int | None = None, scale: int | None = None,
               pad: int = 2) -> tuple[np.ndarray, GridLayout]:
    """Lay frames (F, H, W, 3) out on a grid, each upscaled by `scale` (default: to ~128 px)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames (F, H, W, 3) with F >= 1, got {frames.shape}")
    f, h, w, _ = frames.shape
    cols = max(1, min(columns or default_columns(f), f))
    k = scale or auto_scale(min(h, w))
    layout = GridLayout(f, h, w, cols, k, pad)
    rows = -(-f // cols)
    ch, cw = layout.cell
    out = blank(rows * ch - pad, cols * cw - pad)
    big = upscale(frames.astype(np.uint8, copy=False), k)
    for i in range(f):
        y, x = layout.origin(i)
        out[y: y + h * k, x: x + w * k] = big[i]
    return out, layout


_JPEG = {"quality": 90, "subsampling": 0}
FAST_ENCODING = {".png": {"compress_level": 1}, ".webp": {"quality": 80, "method": 0}, ".jpg": _JPEG, ".jpeg": _JPEG}


def write_image(image: np.ndarray, path: str | Path) -> str:
    """Save a uint8 (H, W, 3) picture (format from the suffix) and return its path as a string.

    The app streams pictures as files it names itself, one per step: Gradio's own array-to-file
    cache names files by content and rewrites an existing one in place, so re-sending an identical
    picture could truncate a copy a browser is still downloading.

    Encoded for speed, since one picture of each kind is written per denoising step (`FAST_ENCODING`):
    PNG at zlib level 1, WebP with method 0 and JPEG at quality 90 without chroma subsampling (4:4:4,
    so a colour edge one pixel wide stays one pixel wide when the page upscales it). Measured on one
    core of an otherwise idle machine, for the 16-frame 64x64 denoising preview: PNG 11-12 ms at 2x
    (the preview before) and 6-8 ms at 1x, JPEG 0.7 ms at 1x (16 KB against PNG's 83); for the live
    attention strip (4 words x 8 frames, 268x565), WebP (the strip before) 4.0 ms, JPEG 0.9 ms."""
    path = Path(path)
    Image.fromarray(image).save(path, **FAST_ENCODING.get(path.suffix.lower(), {}))
    return str(path)


def preview_image(frames: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """The live denoising preview: every frame on a grid, at the frames' own size by default. The
    page upscales it crisply (the `vg-pixelated` CSS class): a browser does that for free, while
    encoding a 2x picture costs the server 4x the pixels on every step."""
    return frame_grid(frames, scale=scale)[0]


def subsample(num_frames: int, at_most: int) -> np.ndarray:
    """Up to `at_most` frame indices spread evenly over the clip (first and last included)."""
    if num_frames <= at_most:
        return np.arange(num_frames)
    return np.unique(np.linspace(0, num_frames - 1, at_most).round().astype(int))


def labelled_rows(rows: list[np.ndarray], labels: list[str], *, size: int = 13, pad: int = 4) -> np.ndarray:
    """Stack picture rows with a text label to the left of each."""
    label_w = max(text_width(t, size) for t in labels) + 8
    out = []
    for row, label in zip(rows, labels):
        lab = draw_text(blank(row.shape[0], label_w), (2, max(0, row.shape[0] // 2 - size // 2 - 1)), label, size=size)
        out.append(hstack([lab, row], pad=0))
    return vstack(out, pad=pad)


# --------------------------------------------------------------------------- attention views

def word_overlay_image(frames: np.ndarray, heat: np.ndarray, *, scale: int | None = None,
                       alpha: float = 0.55) -> tuple[np.ndarray, GridLayout]:
    """A word's heat map (F, h, w) in [0, 1] blended over every frame, on a grid."""
    return frame_grid(overlay(frames, heat, alpha=alpha), scale=scale)


def live_attention_image(frames: np.ndarray, heat_by_word: dict[str, np.ndarray], *, max_words: int = 4,
                         max_frames: int = 8, scale: int | None = None) -> np.ndarray | None:
    """One row per word: its heat map over (a subsample of) the current frames. None without words."""
    if not heat_by_word:
        return None
    idx = subsample(len(frames), max_frames)
    k = scale or auto_scale(min(frames.shape[1:3]), 64)
    words = list(heat_by_word)[:max_words]
    rows = [frame_grid(overlay(frames[idx], heat_by_word[w][idx]), columns=len(idx), scale=k)[0] for w in words]
    return labelled_rows(rows, words)


def matrix_panel(mat: np.ndarray, title: str, *, cell: int | None = None, cmap: str = "inferno",
                 vmin: float | None = None, vmax: float | None = None, axis_labels: bool = True) -> np.ndarray:
    """A titled heat-map picture of a matrix (rows: queries, columns: keys), with frame numbers on the axes."""
    a, b = mat.shape
    cell = cell or max(6, min(24, 256 // max(a, b)))
    img = heat_to_image(mat, scale=cell, cmap=cmap, vmin=vmin, vmax=vmax)
    if axis_labels and max(a, b) <= 32:
        size = 10
        margin = text_width(str(max(a, b)), size) + 6
        framed = blank(img.shape[0] + size + 6, img.shape[1] + margin)
        framed[size + 6:, margin:] = img
        step = 1 if cell >= 14 else 2 if cell >= 8 else 4
        for j in range(0, b, step):
            framed = draw_text(framed, (margin + j * cell + cell // 2 - 3, 0), str(j), size=size)
        for i in range(0, a, step):
            framed = draw_text(framed, (1, size + 6 + i * cell + cell // 2 - size // 2), str(i), size=size)
        img = framed
    return titled(img, title)


def temporal_image(attention: np.ndarray | None, bias: np.ndarray | None, gamma: float | None) -> np.ndarray | None:
    """Frames -> frames: the attention matrix A, the learned bias B and what is added, gamma * B."""
    panels = []
    if attention is not None:
        panels.append(matrix_panel(attention, "attention (row: frame, col: frame it reads)"))
    if bias is not None:
        panels.append(matrix_panel(bias, "bias B (learned, by distance)", cmap="viridis"))
        if gamma is not None:
            added = gamma * bias
            lo, hi = float(min(added.min(), bias.min())), float(max(added.max(), bias.max()))
            panels.append(matrix_panel(added, f"added to scores: gamma*B, gamma={gamma:.2f}", cmap="viridis",
                                       vmin=lo, vmax=hi))
    return hstack(panels, pad=16) if panels else None


def spatial_image(frames: np.ndarray, heat: np.ndarray, *, frame: int, cell: tuple[int, int],
                  grid: tuple[int, int], scale: int | None = None) -> tuple[np.ndarray, GridLayout]:
    """Pixels -> pixels: heat (F, h, w) over every frame, the query cell outlined and its frame framed."""
    img, layout = frame_grid(overlay(frames, heat), scale=scale)
    f, h, w, _ = frames.shape
    (gy, gx), (gh, gw) = cell, grid
    k = layout.scale
    for i in range(f):  # outline the query cell in every frame (dim), bright in the clicked frame
        oy, ox = layout.origin(i)
        y0, y1 = oy + int(gy * h / gh) * k, oy + int((gy + 1) * h / gh) * k - 1
        x0, x1 = ox + int(gx * w / gw) * k, ox + int((gx + 1) * w / gw) * k - 1
        color = np.array(HIGHLIGHT if i == frame else (255, 255, 255), np.uint8)
        img[y0, x0: x1 + 1] = img[y1, x0: x1 + 1] = color
        img[y0: y1 + 1, x0] = img[y0: y1 + 1, x1] = color
    oy, ox = layout.origin(frame)
    p = layout.pad
    if p:  # frame the clicked frame in the padding around it
        y0, x0 = max(0, oy - p), max(0, ox - p)
        region = img[y0: oy + h * k + p, x0: ox + w * k + p]
        region[:p] = region[-p:] = HIGHLIGHT
        region[:, :p] = region[:, -p:] = HIGHLIGHT
    return img, layout


def sound_image(attention: np.ndarray, loudness: np.ndarray | None) -> np.ndarray:
    """Sound -> frames: each frame's attention over the audio tokens (rows: video frames, columns:
    audio moments), with the audio's loudness as bars under the same columns."""
    f, a = attention.shape
    cell = max(8, min(24, 320 // max(f, a)))
    mat = matrix_panel(attention, "attention (row: video frame, col: audio moment)", cell=cell)
    if loudness is None:
        return mat
    loud = np.asarray(loudness, np.float32)
    loud = loud / loud.max() if loud.size and loud.max() > 0 else np.zeros_like(loud)
    bar_h = 60
    size = 10
    margin = text_width(str(max(f, a)), size) + 6  # same left margin as the matrix's row labels
    bars = blank(bar_h, margin + a * cell)
    for j, v in enumerate(loud[:a]):
        top = int(round((1 - v) * (bar_h - 1)))
        bars[top:, margin + j * cell + 1: margin + (j + 1) * cell - 1] = colormap(np.array(0.75), "viridis")
    return vstack([mat, titled(bars, "loudness of each audio moment")], pad=4)
