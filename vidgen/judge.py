"""The judge: scores a video against its prompt in the shapes world.

Segmentation: every pixel is projected onto the line from the background to each palette colour;
its coverage estimate is the position along that line and its colour the nearest line. A colour's
object is the morphological opening of its confident pixels (which removes noise speckle), grown
back over the anti-aliased rim with soft coverage. Per frame this gives area, centroid and the
widest row / tallest column, from which:

- shape: upward triangles have a row profile skewed towards their base (skew ~ -0.57, circles and
  squares 0); circles and squares are told apart by fill = area / (widest row * tallest column)
  (pi/4 vs 1). Both features are scale invariant and survive clipping at the border.
- size: half of max(widest row, tallest column) / min(H, W), divided by the audio-driven scale
  (`world.size_scale`) when audio is given, median over frames.
- direction and speed: a line fitted to the centroid track; speed is the fitted travel over the
  clip as a fraction of the frame, like `world.SPEED_TRAVEL`.

Objects are matched to the prompt by colour. Two prompt objects of one colour cannot be told apart
by colour segmentation: they are reported `ambiguous` and only their colour is judged. Every object
found, named by the prompt or not, is also described on its own (`JudgeResult.found_objects`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from vidgen.world import (BACKGROUND, COLORS, SIZE_RADIUS, SIZES, SPEED_TRAVEL, SPEEDS, Scene, audio_envelope,
                          parse_caption, size_scale)

ATTRIBUTES = ("color", "shape", "size", "direction", "speed")
_NAMES = tuple(COLORS)
_BG = np.array(BACKGROUND, np.float32)
_PAL = np.array([COLORS[c] for c in _NAMES], np.float32) - _BG  # (K, 3) background -> colour
_PAL_N2 = (_PAL**2).sum(1)
RESIDUAL_MAX = 60.0  # max distance (0..255 units) of a pixel from its colour line
TRIANGLE_SKEW = -0.3  # row-profile skewness below this -> triangle
SQUARE_FILL = 0.89  # fill above this -> square, else circle
STATIC_TRAVEL = 0.05  # fitted travel below this fraction of the frame -> no direction
STABLE = 0.9  # stability score threshold for `stable`


def _thresholds(table: dict[str, float], order: tuple[str, ...]) -> np.ndarray:
    values = [table[k] for k in order]
    return np.sqrt(np.multiply(values[:-1], values[1:]))  # geometric midpoints between classes


_SIZE_EDGES, _SPEED_EDGES = _thresholds(SIZE_RADIUS, SIZES), _thresholds(SPEED_TRAVEL, SPEEDS)


# ----------------------------------------------------------------------------- segmentation


def as_planes(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 (F, H, W, 3) or float (3, F, H, W) in [-1, 1] (or a batch of 1) -> float32 (3, F, H, W) in 0..255."""
    v = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    if v.ndim == 5 and v.shape[0] == 1:
        v = v[0]
    v = np.nan_to_num(v) if np.issubdtype(v.dtype, np.floating) else v
    if v.ndim == 4 and v.dtype == np.uint8 and v.shape[-1] == 3:
        return v.transpose(3, 0, 1, 2).astype(np.float32)
    if v.ndim == 4 and np.issubdtype(v.dtype, np.floating) and v.shape[0] == 3:
        return ((np.clip(v, -1, 1) + 1) * 127.5).astype(np.float32)
    raise ValueError(f"expected uint8 (F, H, W, 3) or float (3, F, H, W), got {v.dtype} {v.shape}")


def _shift_all(mask: np.ndarray, op) -> np.ndarray:
    """Combine a (F, H, W) mask with its 4 neighbours (edge-replicated) using op (np.logical_and / _or)."""
    p = np.pad(mask, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = op(mask, p[:, :-2, 1:-1])
    for view in (p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]):
        out = op(out, view)
    return out


@dataclass(eq=False)
class Track:
    """One colour's object over time. soft: (F, H, W) coverage; area, row_max, col_max, skew: (F,);
    center: (F, 2) (y, x) centroid in pixel-index coordinates; present: (F,) bool."""

    color: str
    soft: np.ndarray
    area: np.ndarray
    center: np.ndarray
    row_max: np.ndarray
    col_max: np.ndarray
    skew: np.ndarray
    present: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.soft >= 0.5


def segment(video: torch.Tensor | np.ndarray, *, min_area: float | None = None) -> dict[str, Track]:
    """Per-colour objects of a video (any format `as_planes` takes); only colours seen in some frame."""
    return _segment(as_planes(video), min_area)


def _line(d: np.ndarray, n2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Coverage estimate alpha (N,) of colour k (position along the background -> colour line) and the
    squared distance (N,) from that line, for background offsets d (3, N) with squared norms n2 (N,)."""
    p = _PAL[k]
    proj = p[0] * d[0] + p[1] * d[1] + p[2] * d[2]  # elementwise: BLAS threads stall on busy CPUs
    alpha = proj / _PAL_N2[k]
    return alpha, n2 - proj * alpha


def _segment(x: np.ndarray, min_area: float | None) -> dict[str, Track]:
    _, f, h, w = x.shape
    min_area = max(3.0, 0.002 * h * w) if min_area is None else min_area
    d = x.reshape(3, -1) - _BG[:, None]  # (3, N) offsets from the background
    n2 = (d * d).sum(0)
    best = np.full(d.shape[1], -1)  # nearest colour line of each confident pixel, -1 for none
    cand = np.flatnonzero(n2 > 0.25 * _PAL_N2.min())  # alpha > 0.5 needs |d| > |c - bg| / 2: skip background
    if cand.size:
        dc, n2c = d[:, cand], n2[cand]
        best_c, best_res = np.full(cand.size, -1), np.full(cand.size, RESIDUAL_MAX**2, np.float32)
        for k in range(len(_NAMES)):  # among lines the pixel is at least half-way along
            alpha, res2 = _line(dc, n2c, k)
            better = (alpha > 0.5) & (res2 < best_res)
            best_c, best_res = np.where(better, k, best_c), np.where(better, res2, best_res)
        best[cand] = best_c
    counts = np.bincount(best + 1, minlength=len(_NAMES) + 1)[1:]
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    tracks = {}
    for k in np.flatnonzero(counts >= min_area):
        core = (best == k).reshape(f, h, w)
        core = _shift_all(_shift_all(core, np.logical_and), np.logical_or)  # opening: drops speckle
        if core.sum() < min_area:
            continue
        support = _shift_all(_shift_all(core, np.logical_or), np.logical_or)  # grow back over the rim
        alpha, res2 = _line(d, n2, k)
        soft = np.clip(alpha, 0, 1).reshape(f, h, w) * (support & (res2 < RESIDUAL_MAX**2).reshape(f, h, w))
        rows, cols = soft.sum(2), soft.sum(1)  # (F, H), (F, W)
        area = rows.sum(1)
        safe = np.maximum(area, 1e-6)
        cy, cx = (rows * ys).sum(1) / safe, (cols * xs).sum(1) / safe  # sums, not matmuls (see _line)
        var = np.maximum((rows * ys**2).sum(1) / safe - cy**2, 1e-6)
        skew = ((rows * ys**3).sum(1) / safe - 3 * cy * var - cy**3) / var**1.5  # third standardized moment of y
        tracks[_NAMES[k]] = Track(_NAMES[k], soft, area, np.stack([cy, cx], 1), rows.max(1), cols.max(1),
                                  skew, area >= min_area)
    return tracks


def classify_shape(fill: float, skew: float) -> str:
    """Shape from the fill ratio and the row-profile skewness (see module docstring)."""
    return "triangle" if skew < TRIANGLE_SKEW else "square" if fill > SQUARE_FILL else "circle"


# ----------------------------------------------------------------------------- results


@dataclass
class ObjectReport:
    """One prompt object: expected and measured attributes, correctness (None = not judged)."""

    expected: dict[str, str]
    found: dict[str, str | None]
    correct: dict[str, bool | None]
    presence: float  # fraction of frames where it is visible
    stability: float  # in [0, 1]
    measures: dict[str, float | None] = field(default_factory=dict)  # fill, skew, radius, travel, audio_corr


@dataclass
class FoundObject:
    """One object found by colour segmentation, whether the prompt names it or not. direction is "none"
    for a static object and, like speed and travel, None when fewer than 2 frames show it. Two objects
    of one colour form one segment, described as one object."""

    color: str
    shape: str
    size: str
    direction: str | None
    speed: str | None
    frames: int  # number of frames it is visible in
    radius: float  # half-extent / min(H, W), the audio pulse divided out
    travel: float | None  # fitted travel over the clip / frame extent


@dataclass
class JudgeResult:
    """The judge's verdict on one video. Per-attribute `correct` is None when no object could be judged."""

    caption: str
    objects: list[ObjectReport]
    correct: dict[str, bool | None]
    num_expected: int
    num_found: int
    count_correct: bool
    all_correct: bool
    stability: float
    stable: bool
    ambiguous: bool
    audio_corr: float | None = None
    psnr: float | None = None
    pointing: float | None = None
    iou: float | None = None
    attention: dict[str, dict[str, float]] = field(default_factory=dict)  # word -> {"pointing", "iou"}
    found_objects: list[FoundObject] = field(default_factory=list)  # every object found, in palette order

    def to_dict(self) -> dict:
        """JSON-serializable dict (numpy scalars -> Python, NaN -> None)."""
        return json.loads(json.dumps(asdict(self), default=_plain), parse_constant=lambda _: None)


def _plain(x):
    return x.item() if isinstance(x, np.generic) else str(x)


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


# ----------------------------------------------------------------------------- judging


def _classify(value: float, edges: np.ndarray, names: tuple[str, ...]) -> str:
    return names[int(np.searchsorted(edges, value))]


def _motion(track: Track, height: int, width: int) -> tuple[str | None, str | None, float | None]:
    """(direction, speed, travel) from a line fit to the centroid over present frames."""
    t = np.flatnonzero(track.present)
    f = len(track.present)
    if len(t) < 2 or f < 2:
        return None, None, None
    vy, vx = np.polyfit(t, track.center[t], 1)[0]  # pixels per frame
    travel_y, travel_x = abs(vy) * (f - 1) / height, abs(vx) * (f - 1) / width
    travel = max(travel_y, travel_x)
    if travel < STATIC_TRAVEL:
        return "none", _classify(travel, _SPEED_EDGES, SPEEDS), travel
    direction = ("down" if vy > 0 else "up") if travel_y > travel_x else ("right" if vx > 0 else "left")
    return direction, _classify(travel, _SPEED_EDGES, SPEEDS), travel


def _stability(track: Track, shapes: np.ndarray, shape: str, scale: np.ndarray, extent: float) -> float:
    """presence x shape consistency x smooth area x smooth path, each a fraction of frames (pairs)."""
    p = track.present
    presence = p.mean()
    consistent = (shapes[p] == shape).mean() if p.any() else 0.0
    area = track.area / scale**2  # undo the audio pulse: a steady object has a steady base area
    both = p[1:] & p[:-1]
    ratio = np.abs(np.log(np.maximum(area[1:], 1e-6) / np.maximum(area[:-1], 1e-6)))[both]
    area_ok = (ratio < math.log(1.35)).mean() if ratio.size else 1.0
    triple = p[2:] & p[1:-1] & p[:-2]
    accel = np.linalg.norm(track.center[2:] - 2 * track.center[1:-1] + track.center[:-2], axis=1)[triple]
    path_ok = (accel < 0.05 * extent).mean() if accel.size else 1.0
    return float(presence * consistent * area_ok * path_ok)


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or a.std() < 1e-8 or b.std() < 1e-8:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _psnr(frame: np.ndarray, image: torch.Tensor | np.ndarray) -> float:
    """PSNR (dB, capped at 100) of a (3, H, W) 0..255 frame against a (3, H, W) [-1, 1] or (H, W, 3) uint8 image."""
    img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    img = img.astype(np.float32).transpose(2, 0, 1) if img.dtype == np.uint8 else (np.clip(img, -1, 1) + 1) * 127.5
    if img.shape != frame.shape:
        raise ValueError(f"image {tuple(img.shape)} does not match the video frame {tuple(frame.shape)}")
    mse = float(np.mean((frame / 255.0 - img / 255.0) ** 2))
    return 100.0 if mse < 1e-10 else min(100.0, 10 * math.log10(1 / mse))


def _upsample(maps: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
    """(f, h, w) attention maps -> (F, H, W): nearest in time, bilinear in space."""
    m = torch.as_tensor(np.asarray(maps, np.float32))
    if m.ndim == 2:
        m = m[None]
    m = m[np.round(np.linspace(0, len(m) - 1, num_frames)).astype(int)]
    return torch.nn.functional.interpolate(m[:, None], size=(height, width), mode="bilinear",
                                           align_corners=False)[:, 0].numpy()


def attention_faithfulness(maps: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Pointing (fraction of frames whose argmax is inside the mask) and mean IoU of map > 0.5 max vs mask.

    maps: (F, H, W) at video resolution; mask: (F, H, W) bool. Frames with an empty mask are skipped.
    """
    frames = np.flatnonzero(mask.any((1, 2)))
    if not len(frames):
        return {"pointing": 0.0, "iou": 0.0}
    m, k = maps[frames].reshape(len(frames), -1), mask[frames].reshape(len(frames), -1)
    hit = k[np.arange(len(frames)), m.argmax(1)]
    sel = m > 0.5 * m.max(1, keepdims=True)
    iou = (sel & k).sum(1) / np.maximum((sel | k).sum(1), 1)
    return {"pointing": float(hit.mean()), "iou": float(iou.mean())}


def _fill(track: Track) -> np.ndarray:
    """(F,) how much of its bounding box the object covers per frame: the shape cue (1 square, pi/4 circle)."""
    return track.area / np.maximum(track.row_max * track.col_max, 1e-6)


def _describe(track: Track, scale: np.ndarray, height: int, width: int) -> tuple[FoundObject, dict]:
    """Measure one found track (present in at least one frame): its description and raw measures."""
    p = track.present
    fill = _fill(track)
    fill_med, skew_med = float(np.median(fill[p])), float(np.median(track.skew[p]))
    radius = float(np.median((np.maximum(track.row_max, track.col_max) / 2 / scale)[p])) / min(height, width)
    direction, speed, travel = _motion(track, height, width)
    found = FoundObject(track.color, classify_shape(fill_med, skew_med), _classify(radius, _SIZE_EDGES, SIZES),
                        direction, speed, int(p.sum()), radius, _num(travel))
    return found, {"fill": _num(fill_med), "skew": _num(skew_med), "radius": radius, "travel": _num(travel)}


def _report(obj, track: Track | None, described: tuple[FoundObject, dict] | None, scale: np.ndarray,
            envelope: np.ndarray | None, merged: bool, height: int, width: int) -> ObjectReport:
    """Judge one prompt object on its matched track and that track's `_describe` (None: nothing left to match)."""
    expected = {a: getattr(obj, a) for a in ATTRIBUTES}
    if track is None:
        return ObjectReport(expected, dict.fromkeys(ATTRIBUTES), dict.fromkeys(ATTRIBUTES, False), 0.0, 0.0)
    description, measures = described
    found = {a: getattr(description, a) for a in ATTRIBUTES}
    correct = {a: None if found[a] is None or (merged and a != "color") else found[a] == expected[a]
               for a in ATTRIBUTES}  # a merged mask of several objects only tells their colour
    per_frame_shapes = np.array([classify_shape(a, b) for a, b in zip(_fill(track), track.skew)])
    return ObjectReport(
        expected, found, correct, float(track.present.mean()),
        _stability(track, per_frame_shapes, description.shape, scale, min(height, width)),
        {**measures, "audio_corr": None if envelope is None else _pearson(envelope, track.area)})


def judge(video: torch.Tensor | np.ndarray, prompt: str | Scene, *, audio: np.ndarray | None = None,
          image: torch.Tensor | np.ndarray | None = None, attention: dict[str, np.ndarray] | None = None,
          fps: float = 8, sample_rate: int = 16000) -> JudgeResult:
    """Score a video (uint8 (F, H, W, 3) or float (3, F, H, W) in [-1, 1]) against its prompt.

    audio: (S,) the conditioning audio; image: the conditioning first frame ((3, H, W) in [-1, 1] or
    (H, W, 3) uint8); attention: per-word cross-attention maps {word: (F, h, w)} for the colour and
    shape words (any resolution; upsampled to the video's).
    """
    scene = parse_caption(prompt) if isinstance(prompt, str) else prompt
    x = as_planes(video)
    _, f, h, w = x.shape
    found = {c: t for c, t in _segment(x, None).items() if t.present.sum() >= max(1, math.ceil(0.5 * f))}
    envelope = None if audio is None else audio_envelope(audio, f, fps=fps, sample_rate=sample_rate)
    scale = np.ones(f, np.float32) if envelope is None else size_scale(envelope)
    colors = [o.color for o in scene.objects]

    # Match prompt objects to found colours: the same colour first, else the largest unclaimed one.
    spare = sorted((c for c in found if c not in colors), key=lambda c: -found[c].area.sum())
    tracks = [found[c] if c in found else found[spare.pop(0)] if spare else None for c in colors]
    described = {c: _describe(t, scale, h, w) for c, t in found.items()}
    reports = [_report(o, t, None if t is None else described[t.color], scale, envelope, colors.count(o.color) > 1,
                       h, w) for o, t in zip(scene.objects, tracks)]

    correct = {}
    for a in ATTRIBUTES:
        judged = [r.correct[a] for r in reports if r.correct[a] is not None]
        correct[a] = all(judged) if judged else None
    count_correct = len(found) == len(set(colors))
    corrs = [r.measures["audio_corr"] for r in reports if r.measures.get("audio_corr") is not None]
    words = {}
    for word, maps in (attention or {}).items():
        named = [t.mask for o, t in zip(scene.objects, tracks) if t is not None and word in (o.color, o.shape)]
        if named:
            words[word] = attention_faithfulness(_upsample(maps, f, h, w), np.logical_or.reduce(named))
    stability = min(r.stability for r in reports)
    return JudgeResult(
        caption=scene.caption, objects=reports, correct=correct, num_expected=len(colors), num_found=len(found),
        count_correct=count_correct, all_correct=count_correct and all(v is not False for v in correct.values()),
        stability=stability, stable=stability >= STABLE, ambiguous=len(set(colors)) < len(colors),
        audio_corr=float(np.mean(corrs)) if corrs else None,
        psnr=None if image is None else _psnr(x[:, 0], image),
        pointing=float(np.mean([s["pointing"] for s in words.values()])) if words else None,
        iou=float(np.mean([s["iou"] for s in words.values()])) if words else None,
        attention=words, found_objects=[d for d, _ in described.values()],
    )


# ----------------------------------------------------------------------------- summaries


def summarize(results: list[JudgeResult]) -> dict:
    """Aggregate metrics over results: accuracies, rates, medians and counts (None where nothing applies)."""
    def mean(values):
        values = [float(v) for v in values if v is not None]
        return float(np.mean(values)) if values else None

    out: dict = {"n": len(results)}
    for a in ATTRIBUTES:
        out[f"{a}_accuracy"] = mean(r.correct[a] for r in results)
    corrs = [r.audio_corr for r in results if r.audio_corr is not None]
    out.update({
        "all_correct_rate": mean(r.all_correct for r in results),
        "count_accuracy": mean(r.count_correct for r in results),
        "stable_rate": mean(r.stable for r in results),
        "stability_mean": mean(r.stability for r in results),
        "audio_corr_median": float(np.median(corrs)) if corrs else None,
        "psnr_mean": mean(r.psnr for r in results),
        "pointing_accuracy": mean(r.pointing for r in results),
        "iou_mean": mean(r.iou for r in results),
        "n_audio": sum(r.audio_corr is not None for r in results),
        "n_image": sum(r.psnr is not None for r in results),
        "n_attention": sum(r.pointing is not None for r in results),
        "n_ambiguous": sum(r.ambiguous for r in results),
    })
    return out


def summary_markdown(summary: dict) -> str:
    """A two-column markdown table of a `summarize` dict."""
    def fmt(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    return "\n".join(["| metric | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in summary.items())])
