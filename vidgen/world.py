"""The shapes world: procedural videos whose every attribute is known.

A caption follows the grammar

    a [small|big] <color> <shape> moving <left|right|up|down> [slowly|quickly]

and two objects join two such phrases with "and". Each object is an axis-aligned circle, square or
upward triangle whose bounding box is 2r x 2r (so fill ratios are pi/4, 1 and 1/2), moving with
constant velocity on a plain dark background. Size is the half-extent r as a fraction of
min(H, W); speed is the distance travelled over the whole clip as a fraction of the frame extent
along the motion (so a clip of any length stays inside the frame). With audio, the object's area
follows the clip's per-frame loudness (`audio_envelope` -> `size_scale`), with mean scale 1 so
sizes stay distinguishable on average; the judge divides the scale back out.

Video tensors are (3, F, H, W) float32 in [-1, 1]; uint8 frames are (F, H, W, 3).
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 50, 50),
    "green": (50, 200, 70),
    "blue": (60, 100, 240),
    "yellow": (240, 220, 50),
    "purple": (160, 70, 210),
    "orange": (250, 140, 30),
    "white": (240, 240, 240),
}
BACKGROUND: tuple[int, int, int] = (16, 16, 24)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
SIZES: tuple[str, ...] = ("small", "medium", "big")
SPEEDS: tuple[str, ...] = ("slowly", "normal", "quickly")
SIZE_RADIUS: dict[str, float] = {"small": 0.09, "medium": 0.13, "big": 0.18}  # half-extent / min(H, W)
SPEED_TRAVEL: dict[str, float] = {"slowly": 0.15, "normal": 0.3, "quickly": 0.5}  # per clip / frame extent
DIRECTION_VECTORS: dict[str, tuple[int, int]] = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
VOCABULARY: tuple[str, ...] = (
    "a", "and", "moving", "small", "big", "slowly", "quickly", *COLORS, *SHAPES, *DIRECTIONS,
)

# Combinations never rendered for training, to measure compositional generalisation: every colour,
# shape and direction is still seen, only these pairings are not. A pair (color, shape) holds out
# that object in any direction; a triple (color, shape, direction) holds out only that motion.
HELD_OUT: frozenset[tuple[str, ...]] = frozenset({
    ("yellow", "triangle"),
    ("orange", "circle"),
    ("purple", "square", "up"),
    ("green", "circle", "left"),
    ("white", "triangle", "right"),
})

AUDIO_GAIN = 1.0  # area factor = 1 + AUDIO_GAIN * (loudness/max - its mean), clipped to AREA_RANGE
AREA_RANGE = (0.36, 1.96)  # i.e. radius scale 0.6x .. 1.4x


# ----------------------------------------------------------------------------- captions


@dataclass(frozen=True)
class ObjectSpec:
    """One object: colour, shape, direction, size ("small"|"medium"|"big"), speed ("slowly"|"normal"|"quickly")."""

    color: str
    shape: str
    direction: str
    size: str = "medium"
    speed: str = "normal"

    def __post_init__(self) -> None:
        for value, allowed in ((self.color, COLORS), (self.shape, SHAPES), (self.direction, DIRECTIONS),
                               (self.size, SIZES), (self.speed, SPEEDS)):
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {tuple(allowed)}")

    @property
    def phrase(self) -> str:
        size = [] if self.size == "medium" else [self.size]
        speed = [] if self.speed == "normal" else [self.speed]
        return " ".join(["a", *size, self.color, self.shape, "moving", self.direction, *speed])


@dataclass(frozen=True)
class Scene:
    """A scene of one or more objects; later objects are drawn on top."""

    objects: tuple[ObjectSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        if not self.objects:
            raise ValueError("a scene needs at least one object")

    @property
    def caption(self) -> str:
        """Canonical caption (omits the default "medium" size and "normal" speed)."""
        return " and ".join(o.phrase for o in self.objects)


GRAMMAR = "a [small|big] <color> <shape> moving <left|right|up|down> [slowly|quickly] [and a ...]"


def parse_caption(caption: str) -> Scene:
    """Parse a caption of the grammar (case and whitespace tolerant) into a Scene; ValueError otherwise."""
    words = [w.strip(".,;:!?") for w in caption.lower().split()]
    words = [w for w in words if w]
    if not words:
        raise ValueError(f"empty caption; expected {GRAMMAR!r}")
    unknown = [w for w in words if w not in VOCABULARY]
    if unknown:
        raise ValueError(f"unknown word(s) {', '.join(map(repr, dict.fromkeys(unknown)))} in {caption!r}; "
                         f"expected {GRAMMAR!r}")
    phrases = [list(g) for is_and, g in itertools.groupby(words, lambda w: w == "and") if not is_and]
    if len(phrases) != words.count("and") + 1:
        raise ValueError(f"misplaced 'and' in {caption!r}; expected {GRAMMAR!r}")
    return Scene(tuple(_parse_phrase(p, caption) for p in phrases))


def _parse_phrase(words: list[str], caption: str) -> ObjectSpec:
    rest = list(words)

    def take(what: str, allowed, optional: bool = False) -> str | None:
        if rest and rest[0] in allowed:
            return rest.pop(0)
        if optional:
            return None
        got = f"got {rest[0]!r}" if rest else "the phrase ended"
        raise ValueError(f"expected {what} in {' '.join(words)!r} but {got} (caption {caption!r}; "
                         f"expected {GRAMMAR!r})")

    take("'a'", ("a",))
    size = take("size", ("small", "big"), optional=True) or "medium"
    color = take(f"a color {tuple(COLORS)}", COLORS)
    shape = take(f"a shape {SHAPES}", SHAPES)
    take("'moving'", ("moving",))
    direction = take(f"a direction {DIRECTIONS}", DIRECTIONS)
    speed = take("speed", ("slowly", "quickly"), optional=True) or "normal"
    if rest:
        raise ValueError(f"unexpected word(s) {', '.join(map(repr, rest))} at the end of {' '.join(words)!r} "
                         f"(caption {caption!r}; expected {GRAMMAR!r})")
    return ObjectSpec(color, shape, direction, size, speed)


def _as_scene(scene_or_caption: Scene | str) -> Scene:
    return parse_caption(scene_or_caption) if isinstance(scene_or_caption, str) else scene_or_caption


def is_held_out(scene: Scene | ObjectSpec | str) -> bool:
    """True when any object of the scene is a HELD_OUT (color, shape) or (color, shape, direction) combination."""
    objects = (scene,) if isinstance(scene, ObjectSpec) else _as_scene(scene).objects
    return any((o.color, o.shape) in HELD_OUT or (o.color, o.shape, o.direction) in HELD_OUT for o in objects)


def random_scene(rng: np.random.Generator | int, *, max_objects: int = 2, p_two: float = 0.3,
                 exclude_held_out: bool = True) -> Scene:
    """Sample a scene: 1 object, or with probability p_two 2..max_objects objects of distinct colours."""
    rng = np.random.default_rng(rng)
    n = int(rng.integers(2, max_objects + 1)) if max_objects >= 2 and rng.random() < p_two else 1
    while True:  # rejection sampling: held-out objects are a small fraction
        colors = rng.permutation(list(COLORS))[:n]  # distinct colours keep every object identifiable
        scene = Scene(tuple(ObjectSpec(str(c), _pick(rng, SHAPES), _pick(rng, DIRECTIONS), _pick(rng, SIZES),
                                       _pick(rng, SPEEDS)) for c in colors))
        if not (exclude_held_out and is_held_out(scene)):
            return scene


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _random_held_out_scene(rng: np.random.Generator) -> Scene:
    """One object of a HELD_OUT combination; the attributes the combination leaves open are random."""
    combo = _pick(rng, sorted(HELD_OUT))
    direction = combo[2] if len(combo) == 3 else _pick(rng, DIRECTIONS)
    return Scene((ObjectSpec(combo[0], combo[1], direction, _pick(rng, SIZES), _pick(rng, SPEEDS)),))


# ----------------------------------------------------------------------------- audio


def num_audio_samples(num_frames: int, *, fps: float = 8, sample_rate: int = 16000) -> int:
    """Samples in a clip of num_frames at fps."""
    return int(round(num_frames / fps * sample_rate))


def synthesize_audio(seed: int, *, num_frames: int = 16, fps: float = 8, sample_rate: int = 16000) -> np.ndarray:
    """A tone with a few smooth loudness beats (1.25-2 per second), float32 (S,) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = num_audio_samples(num_frames, fps=fps, sample_rate=sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    duration = max(n / sample_rate, 1e-6)
    f0 = rng.uniform(220, 660)
    tone = np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t + rng.uniform(0, 2 * np.pi))
    n_beats = max(1, int(round(duration * rng.uniform(1.25, 2.0))))
    centers = (np.arange(n_beats) + rng.uniform(0.3, 0.7, n_beats)) / n_beats * duration
    width = rng.uniform(0.06, 0.1)  # seconds; a frame lasts 1/fps
    heights = rng.uniform(0.6, 1.0, n_beats)
    envelope = 0.08 + (heights[:, None] * np.exp(-0.5 * ((t[None] - centers[:, None]) / width) ** 2)).sum(0)
    audio = envelope / envelope.max() * tone
    return (0.8 * audio / max(np.abs(audio).max(), 1e-8)).astype(np.float32)


def audio_envelope(audio: np.ndarray, num_frames: int, *, fps: float = 8, sample_rate: int = 16000) -> np.ndarray:
    """Per-frame RMS loudness, float32 (F,). Audio shorter than the video is zero-padded, longer is trimmed.

    Stereo (S, C) or (C, S) input is averaged over channels.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=int(np.argmin(audio.shape)))
    n = num_audio_samples(num_frames, fps=fps, sample_rate=sample_rate)
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    bounds = np.round(np.arange(num_frames + 1) * (n / max(num_frames, 1))).astype(int)
    energy = np.concatenate([[0.0], np.cumsum(audio**2)])
    counts = np.maximum(np.diff(bounds), 1)
    return np.sqrt(np.maximum(energy[bounds[1:]] - energy[bounds[:-1]], 0) / counts).astype(np.float32)


def size_scale(envelope: np.ndarray) -> np.ndarray:
    """Radius scale (F,) for a loudness envelope: area grows linearly with loudness, mean area factor ~1."""
    envelope = np.asarray(envelope, dtype=np.float64)
    if envelope.size == 0 or envelope.max() < 1e-8:
        return np.ones(envelope.shape, np.float32)
    e = envelope / envelope.max()
    area = np.clip(1 + AUDIO_GAIN * (e - e.mean()), *AREA_RANGE)
    return np.sqrt(area).astype(np.float32)


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True, eq=False)
class RenderedVideo:
    """A rendered scene with its ground truth.

    video: (3, F, H, W) float32 in [-1, 1]; masks: (N, F, H, W) bool visible pixels of each object
    (coverage >= 0.5 after occlusion); centers: (N, F, 2) bounding-box centre (y, x) in pixel-index
    coordinates; areas: (N, F) visible area in pixels (anti-aliased coverage); scale: (F,) radius
    scale (1 without audio); coverage: (N, F, H, W) float32 visible anti-aliased coverage in [0, 1].
    """

    video: torch.Tensor
    masks: np.ndarray
    centers: np.ndarray
    areas: np.ndarray
    scene: Scene
    scale: np.ndarray
    coverage: np.ndarray | None = None


def _paths(scene: Scene, rng: np.random.Generator, num_frames: int, height: int, width: int,
           max_scale: float, candidates: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Object centres (N, F, 2) (y, x) in continuous pixel units, and base radii (N,).

    Start positions keep each whole path (plus the largest pulse) inside the frame; with several
    objects, the candidate set with the least bounding-box overlap over time is kept.
    """
    dims = np.array([height, width], np.float64)
    radii = np.array([SIZE_RADIUS[o.size] * min(height, width) for o in scene.objects])
    t = np.arange(num_frames) / max(num_frames - 1, 1)  # 0..1 over the clip
    k = 1 if len(scene.objects) == 1 else candidates
    centers = np.empty((k, len(scene.objects), num_frames, 2))
    for i, (obj, r) in enumerate(zip(scene.objects, radii)):
        step = np.array(DIRECTION_VECTORS[obj.direction]) * SPEED_TRAVEL[obj.speed] * dims  # (2,) over the clip
        margin = r * max_scale
        lo = margin + np.maximum(-step, 0)
        hi = dims - margin - np.maximum(step, 0)
        start = np.where(hi > lo, lo + rng.random((k, 2)) * (hi - lo), (dims - step) / 2)  # (k, 2)
        centers[:, i] = start[:, None] + t[:, None] * step
    if k > 1:
        lo, hi = centers - radii[:, None, None], centers + radii[:, None, None]  # (k, N, F, 2)
        inter = np.clip(np.minimum(hi[:, :, None], hi[:, None]) - np.maximum(lo[:, :, None], lo[:, None]), 0, None)
        overlap = np.triu(inter.prod(-1).sum(-1), 1).sum((1, 2))  # (k,)
        centers = centers[int(np.argmin(overlap))]
    else:
        centers = centers[0]
    return centers, radii


def _coverage(shape: str, cy: np.ndarray, cx: np.ndarray, r: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anti-aliased coverage (F, H, W) in [0, 1] from a signed distance (pixel (i, j) spans [i, i+1) x [j, j+1))."""
    dy = (np.arange(height, dtype=np.float32) + 0.5)[None, :, None] - cy[:, None, None].astype(np.float32)
    dx = (np.arange(width, dtype=np.float32) + 0.5)[None, None, :] - cx[:, None, None].astype(np.float32)
    r = r[:, None, None].astype(np.float32)
    if shape == "square":  # separable box filter: exact for axis-aligned edges
        return np.clip(0.5 + r - np.abs(dy), 0, 1) * np.clip(0.5 + r - np.abs(dx), 0, 1)
    if shape == "circle":
        sdf = np.sqrt(dy * dy + dx * dx) - r
    else:  # upward triangle: apex (-r, 0), base corners (r, +-r); slanted edges |dx| = (dy + r) / 2
        sdf = np.maximum(dy - r, (2 * np.abs(dx) - dy - r) / np.float32(math.sqrt(5)))
    return np.clip(0.5 - sdf, 0, 1)


def render(scene_or_caption: Scene | str, seed: int = 0, *, num_frames: int = 16, height: int = 64,
           width: int = 64, fps: float = 8, audio: np.ndarray | None = None,
           sample_rate: int = 16000) -> RenderedVideo:
    """Render a scene. The seed picks start positions; audio (S,) makes every object pulse with its loudness."""
    scene = _as_scene(scene_or_caption)
    rng = np.random.default_rng(seed)
    scale = (np.ones(num_frames, np.float32) if audio is None else
             size_scale(audio_envelope(audio, num_frames, fps=fps, sample_rate=sample_rate)))
    centers, radii = _paths(scene, rng, num_frames, height, width, float(scale.max()))
    canvas = np.empty((3, num_frames, height, width), np.float32)
    canvas[:] = np.array(BACKGROUND, np.float32)[:, None, None, None]
    covers = []
    for obj, c, r in zip(scene.objects, centers, radii):
        cov = _coverage(obj.shape, c[:, 0], c[:, 1], r * scale, height, width)
        canvas += cov[None] * (np.array(COLORS[obj.color], np.float32)[:, None, None, None] - canvas)
        covers.append(cov)
    visible = [cov * np.prod([1 - above for above in covers[i + 1:]], axis=0) for i, cov in enumerate(covers)]
    visible = np.stack(visible)  # (N, F, H, W)
    video = torch.from_numpy(canvas / np.float32(127.5) - 1)
    return RenderedVideo(video=video, masks=visible >= 0.5, centers=(centers - 0.5).astype(np.float32),
                         areas=visible.sum((2, 3)), scene=scene, scale=scale, coverage=visible)


def motion_targets(rendered: RenderedVideo) -> dict[str, torch.Tensor]:
    """The known motion of a render, for the temporal-consistency loss (`vidgen.train.consistency_loss`).

    shift: (F-1, 2) float32, the first object's displacement (dy, dx) from each frame to the next;
    object_mask: (F, H, W) bool, pixels fully covered by the first object with nothing on top (flat
    colour); static_mask: (F, H, W) bool, pixels no object touches (flat background).
    """
    centers = torch.from_numpy(np.ascontiguousarray(rendered.centers[0]))
    return {
        "shift": (centers[1:] - centers[:-1]).float(),
        "object_mask": torch.from_numpy(rendered.coverage[0] >= 1.0),
        "static_mask": torch.from_numpy(rendered.coverage.sum(0) <= 0.0),
    }


def first_frame(rendered: RenderedVideo) -> torch.Tensor:
    """The image condition of a rendered video: its first frame (3, H, W) in [-1, 1]."""
    return rendered.video[:, 0].clone()


def video_to_uint8(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8; one implementation, in vidgen.video_io."""
    from vidgen import video_io  # lazy: keeps the world importable without the I/O stack

    return video_io.video_to_uint8(video)


# ----------------------------------------------------------------------------- dataset


class ShapesWorld(IterableDataset):
    """Infinite seeded stream of training videos; never yields HELD_OUT combinations.

    Each DataLoader worker and each distributed rank draws its own stream, seeded by
    (seed, rank, worker_id). Items: {"video": (3, F, H, W), "caption": str, "audio": (S,) float32
    (zeros when absent), "has_audio": bool tensor, "image": (3, H, W) (zeros when absent),
    "has_image": bool tensor}, plus the known motion of `motion_targets` ("shift", "object_mask",
    "static_mask") and "has_motion" (True). Audio items pulse with their audio; image items' image is frame 0.

    With `reference_renders` K > 1, each item also carries "reference": (K, 3, F, H, W), K renders of
    the same scene with the same audio, the first being "video" itself and the others new start
    positions: samples of p(video | caption, audio) for the low-variance targets of
    `vidgen.train.posterior_mean_x0` (they do not share an image item's first frame).
    """

    def __init__(self, *, num_frames: int = 16, height: int = 64, width: int = 64, p_two: float = 0.3,
                 p_audio: float = 0.25, p_image: float = 0.25, seed: int = 0, fps: float = 8,
                 sample_rate: int = 16000, rank: int | None = None, world_size: int | None = None,
                 reference_renders: int = 1) -> None:
        super().__init__()
        if rank is not None and world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        if reference_renders < 1:
            raise ValueError(f"reference_renders must be >= 1, got {reference_renders}")
        self.reference_renders = reference_renders
        self.num_frames, self.height, self.width = num_frames, height, width
        self.p_two, self.p_audio, self.p_image, self.seed = p_two, p_audio, p_image, seed
        self.fps, self.sample_rate, self.rank, self.world_size = fps, sample_rate, rank, world_size

    def _rank(self) -> int:
        if self.rank is not None:
            return self.rank
        dist = torch.distributed
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    def __iter__(self):
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, self._rank(), info.id if info is not None else 0])
        while True:
            yield self.sample(rng)

    def sample(self, rng: np.random.Generator) -> dict:
        """One item drawn from rng (the draws happen in a fixed order, so streams are reproducible)."""
        scene = random_scene(rng, p_two=self.p_two)
        seed, use_audio, use_image = int(rng.integers(2**31)), rng.random() < self.p_audio, rng.random() < self.p_image
        kw = dict(num_frames=self.num_frames, fps=self.fps, sample_rate=self.sample_rate)
        audio = synthesize_audio(seed, **kw) if use_audio else None
        rendered = render(scene, seed, height=self.height, width=self.width, audio=audio, **kw)
        n = num_audio_samples(self.num_frames, fps=self.fps, sample_rate=self.sample_rate)
        extra = {}
        if self.reference_renders > 1:
            # drawn after the item's own draws, so this item is the same for every K (later items are not)
            seeds = rng.integers(2**31, size=self.reference_renders - 1)
            others = [render(scene, int(s), height=self.height, width=self.width, audio=audio, **kw).video for s in seeds]
            extra["reference"] = torch.stack([rendered.video, *others])
        return {
            "video": rendered.video,
            "caption": scene.caption,
            "audio": torch.from_numpy(audio) if use_audio else torch.zeros(n),
            "has_audio": torch.tensor(bool(use_audio)),
            "image": first_frame(rendered) if use_image else torch.zeros(3, self.height, self.width),
            "has_image": torch.tensor(bool(use_image)),
            **motion_targets(rendered),
            "has_motion": torch.tensor(True),
            **extra,
        }


# ----------------------------------------------------------------------------- evaluation set


@dataclass(frozen=True, eq=False)
class EvalPrompt:
    """One evaluation prompt. audio: (S,) for "audio" prompts; image: (3, H, W) frame 0 of the
    ground-truth render of (caption, seed) for "image" prompts."""

    category: str
    caption: str
    seed: int
    audio: np.ndarray | None = None
    image: torch.Tensor | None = None


EVAL_CATEGORIES: tuple[str, ...] = ("single", "two", "held_out", "audio", "image")


def evaluation_prompts(n_per_category: int = 40, seed: int = 1234, *, num_frames: int = 16, height: int = 64,
                       width: int = 64, fps: float = 8, sample_rate: int = 16000) -> list[EvalPrompt]:
    """A fixed, seeded evaluation set: n prompts in each of EVAL_CATEGORIES.

    single: one object; two: two objects of distinct colours; held_out: one HELD_OUT object;
    audio: one object with synthesized audio; image: one or two objects with their first frame.
    Only held_out prompts contain HELD_OUT combinations.
    """
    rng = np.random.default_rng(seed)
    kw = dict(num_frames=num_frames, fps=fps, sample_rate=sample_rate)
    prompts = []
    for category in EVAL_CATEGORIES:
        for _ in range(n_per_category):
            scene = (_random_held_out_scene(rng) if category == "held_out" else
                     random_scene(rng, p_two=1.0 if category == "two" else 0.3 if category == "image" else 0.0))
            s = int(rng.integers(2**31))
            audio = synthesize_audio(s, **kw) if category == "audio" else None
            image = (first_frame(render(scene, s, height=height, width=width, **kw))
                     if category == "image" else None)
            prompts.append(EvalPrompt(category, scene.caption, s, audio, image))
    return prompts


# ----------------------------------------------------------------------------- CLI


def _tile(videos: list[np.ndarray], cols: int, gap: int = 2) -> np.ndarray:
    """Tile uint8 videos (F, H, W, 3) into one (F, rows*(H+gap)-gap, cols*(W+gap)-gap, 3) video."""
    f, h, w, _ = videos[0].shape
    rows = math.ceil(len(videos) / cols)
    out = np.full((f, rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 64, np.uint8)
    for i, v in enumerate(videos):
        y, x = (i // cols) * (h + gap), (i % cols) * (w + gap)
        out[:, y:y + h, x:x + w] = v
    return out


def cli(argv: list[str] | None = None) -> int:
    """`python -m vidgen world`: write sample videos as a PNG grid (rows = videos) or a tiled MP4/GIF."""
    p = argparse.ArgumentParser(prog="python -m vidgen world", description="Sample videos from the shapes world.")
    p.add_argument("--n", type=int, default=16, help="number of videos")
    p.add_argument("--out", default="world.png", help=".png (grid of frames), .mp4 or .gif")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="height and width in pixels")
    args = p.parse_args(argv)
    world = ShapesWorld(num_frames=args.frames, height=args.size, width=args.size, seed=args.seed)
    items = list(itertools.islice(iter(world), args.n))
    videos = [video_to_uint8(item["video"]) for item in items]
    for i, item in enumerate(items):
        tags = "".join(f" [{k}]" for k in ("audio", "image") if item[f"has_{k}"])
        print(f"{i:3d}: {item['caption']}{tags}")
    out = str(args.out)
    if out.lower().endswith((".mp4", ".gif")):
        from vidgen import video_io  # lazy: only this branch needs the writers

        frames = _tile(videos, cols=math.ceil(math.sqrt(len(videos))))
        (video_io.write_mp4 if out.lower().endswith(".mp4") else video_io.write_gif)(frames, out, fps=8)
    else:
        from PIL import Image

        idx = np.unique(np.linspace(0, args.frames - 1, min(args.frames, 8)).round().astype(int))
        rows = [_tile(list(v[idx][:, None]), cols=len(idx))[0] for v in videos]  # each row: frames side by side
        Image.fromarray(_tile([r[None] for r in rows], cols=1)[0]).save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
