"""The app's adapter around VideoPipeline: one shared pipeline, loaded lazily, one run at a time.

    engine = Engine("checkpoints/vidgen-shapes")
    for update in engine.generate(make_request("a red circle moving left", steps=10)):
        show(update.preview, update.attention, update.status)      # one update per step
    update.video, update.files, update.explorer                     # on the last updates

No gradio here: the app turns `Update`s into component values and ValueErrors into `gr.Error`.
Closing the generator (Stop, a dropped connection) closes the pipeline's stream at the next step
boundary, which restores the attention processors and releases the model for the next run.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import gpu  # noqa: I001  (first: `spaces` must be imported before CUDA is initialised)
from .. import maps as M
from .. import video_io
from ..config import ModelConfig, load_json
from ..encoders import normalize_words
from ..hub import default_checkpoint, resolve_checkpoint, resolve_user_checkpoint
from ..pipeline import MAX_SEED, VideoPipeline, clean_prompt
from . import views
from .explorer import ExplorerData, content_words, live_heatmaps

PREVIEW_MODES = {"x0 estimate": "x0", "noisy sample x_t": "xt"}


# ---------------------------------------------------------------------------------------- input

@dataclasses.dataclass(frozen=True)
class Defaults:
    """Initial values of the app's controls (also what an API call gets for omitted inputs)."""

    steps: int = 25
    guidance: float = 3.0
    sampler: str = "ddim"
    frames: int | None = None  # None: the checkpoint's default frame count
    gamma: float = 1.0
    seed: int = 0
    random_seed: bool = True
    preview: str = "x0 estimate"


@dataclasses.dataclass
class Request:
    """One generation, in the pipeline's terms. seed None = draw one (then it is reported)."""

    prompt: str
    image: Any = None
    audio: Any = None
    seed: int | None = None
    sampler: str = "ddim"
    steps: int = 25
    guidance: float = 3.0
    frames: int | None = None
    negative_prompt: str = ""
    temporal_attention: bool = True
    gamma: float | None = None
    preview: str = "x0"

    def pipeline_kwargs(self) -> dict[str, Any]:
        return dict(
            prompt=self.prompt, image=self.image, audio=self.audio, seed=self.seed, sampler=self.sampler,
            num_inference_steps=self.steps, guidance_scale=self.guidance, num_frames=self.frames,
            negative_prompt=self.negative_prompt or None, record_attention=True,
            temporal_attention=self.temporal_attention, temporal_gate=self.gamma,
        )


def _whole(value: Any, name: str) -> int:
    """An integer from a UI number (sliders send floats); ValueError for fractions and non-numbers."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if not f.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(f)


def _optional(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def make_request(prompt: Any, image: Any = None, audio: Any = None, seed: Any = 0, random_seed: Any = True,
                 sampler: str = "ddim", steps: Any = 25, guidance: Any = 3.0, frames: Any = None,
                 negative_prompt: Any = "", temporal_attention: Any = True, override_gamma: Any = False,
                 gamma: Any = 1.0, preview: str = "x0 estimate") -> Request:
    """The app's inputs (in the generate event's order) -> a Request. Knob ranges are the pipeline's
    to check; here only what the UI adds: seed vs "random", gamma vs "override", the preview mode."""
    if random_seed:
        seed = random.SystemRandom().randrange(0, 2**31)
    elif seed is None or seed == "":
        raise ValueError("enter a seed, or tick 'random seed'")
    else:
        seed = _whole(seed, "seed")
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {seed}")
    if preview not in PREVIEW_MODES and preview not in PREVIEW_MODES.values():
        raise ValueError(f"preview must be one of {list(PREVIEW_MODES)}, got {preview!r}")
    g = None
    if override_gamma:
        try:
            g = float(gamma)
        except (TypeError, ValueError):
            raise ValueError(f"the gate gamma must be a number, got {gamma!r}") from None
    return Request(
        prompt="" if prompt is None else str(prompt), image=_optional(image), audio=_optional(audio), seed=seed,
        sampler=str(sampler), steps=_whole(steps, "steps"), guidance=guidance,
        frames=None if frames in (None, "", 0) else _whole(frames, "frames"),
        negative_prompt=str(negative_prompt or ""), temporal_attention=bool(temporal_attention), gamma=g,
        preview=PREVIEW_MODES.get(preview, preview),
    )


# --------------------------------------------------------------------------------------- output

@dataclasses.dataclass
class Update:
    """What the page shows after one step (preview, attention, status) or at the end (video, files,
    explorer). Fields left None mean "unchanged"."""

    status: str
    seed: int
    step: int = 0
    num_steps: int = 0
    preview: str | None = None  # JPEG path
    attention: str | None = None  # JPEG path
    video: str | None = None
    files: list[str] | None = None
    explorer: ExplorerData | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


class OutputDir:
    """Per-run folders under one private temp dir. Runs older than `max_age` seconds are removed
    when a new run starts (the app hands files to Gradio, which copies them into its own cache),
    and the whole dir at exit, so it never grows without bound."""

    def __init__(self, max_age: float = 600.0):
        self.max_age = max_age
        self.root: Path | None = None
        self._lock = threading.Lock()

    def new_run(self) -> Path:
        with self._lock:
            if self.root is None or not self.root.is_dir():
                self.root = Path(tempfile.mkdtemp(prefix="vidgen-app-"))
                atexit.register(shutil.rmtree, self.root, True)
            self.sweep()
            run = self.root / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
            run.mkdir()
            return run

    def sweep(self, now: float | None = None) -> int:
        """Delete runs older than max_age; returns how many were deleted."""
        if self.root is None or not self.root.is_dir():
            return 0
        now = time.time() if now is None else now
        removed = 0
        for run in self.root.iterdir():
            try:
                if now - run.stat().st_mtime > self.max_age:
                    shutil.rmtree(run, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:  # removed by a concurrent sweep
                pass
        return removed


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = int(round(width * done / max(total, 1)))
    return "▰" * filled + "▱" * (width - filled)


def write_maps(path: Path, result, explorer: ExplorerData, meta: dict) -> Path:
    """The maps download (.npz, no pickle): the CLI's products averaged over steps and layers
    (word/<w>, temporal, audio) plus per-step word maps "step_word/<w>" (S, F, h, w) float16 and
    per-step frame-to-frame matrices "step_temporal" (S, F, F)."""
    from ..cli import attention_products

    products, extra = attention_products(result)
    steps = sorted({k[0] for k in explorer.store})
    per_step = [M.word_heatmaps(explorer.store, explorer.ctx, steps=s) for s in steps]
    for word in explorer.words:
        products[f"step_word/{word}"] = np.stack([p[word] for p in per_step]).astype(np.float16)
    if "temporal" in explorer.kinds():
        products["step_temporal"] = np.stack([M.temporal_matrix(explorer.store, explorer.ctx, steps=s)
                                              for s in steps]).astype(np.float16)
    return video_io.write_npz(path, frames=result.frames, maps=products, meta={**meta, **extra})


# --------------------------------------------------------------------------------------- engine

def _gpu_seconds(source: Any, kwargs: dict) -> int:
    return gpu.estimate_seconds(kwargs.get("num_frames") or 16, kwargs.get("num_inference_steps") or 25)


@gpu.on_gpu(duration=_gpu_seconds)
def denoise(source: VideoPipeline | str, kwargs: dict) -> Iterator:
    """The GPU part of a generation: the pipeline's step events. On ZeroGPU this runs in a worker
    process (so `source` is the checkpoint folder and every event is pickled back)."""
    pipe = source if isinstance(source, VideoPipeline) else VideoPipeline.from_pretrained(source)
    stream = pipe.stream(**kwargs)
    try:
        yield from stream
    finally:
        stream.close()  # a cancel lands here: the recorder and ablations restore the model


@dataclasses.dataclass
class CheckpointInfo:
    """What the page shows about the checkpoint before anything is loaded."""

    name: str
    config: ModelConfig | None = None
    card: str | None = None
    error: str | None = None


class Engine:
    """Holds the checkpoint reference, the lazily loaded pipeline and the run lock."""

    def __init__(self, source: VideoPipeline | str | Path | None = None, *, device: str | None = None,
                 outputs: OutputDir | None = None, defaults: Defaults | None = None):
        self._pipe = source if isinstance(source, VideoPipeline) else None
        self.ref = (self._pipe.source or "in-memory pipeline") if self._pipe else str(source or default_checkpoint())
        # A checkpoint passed in by code is trusted; one named by $VIDGEN_CHECKPOINT must lie under
        # $VIDGEN_CHECKPOINT_ROOT (or be a well-formed Hub id).
        self._from_env = source is None
        self.device = device
        self.outputs = outputs or OutputDir()
        self.defaults = defaults or Defaults()
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # the model's processors and gates are shared state
        self._info: CheckpointInfo | None = None
        # observable activity (tests, benchmarks): steps computed, runs in progress, last timings
        self.steps_done = 0
        self.active = 0
        self.last_timings: dict[str, float] = {}

    # ------------------------------------------------------------------ checkpoint
    def _resolve(self) -> Path:
        return resolve_user_checkpoint(self.ref) if self._from_env else resolve_checkpoint(self.ref)

    def info(self) -> CheckpointInfo:
        """Config and model card read from the checkpoint folder (no weights loaded); never raises."""
        if self._info is None:
            info = CheckpointInfo(self.ref)
            try:
                if self._pipe is not None:
                    info.config = self._pipe.cfg
                    folder = Path(self._pipe.source) if self._pipe.source else None
                else:
                    folder = self._resolve()
                    info.config = load_json(ModelConfig, folder / "config.json")
                card = folder / "card.md" if folder else None
                if card is not None and card.is_file():
                    info.card = card.read_text(encoding="utf-8", errors="replace")
            except Exception as e:  # noqa: BLE001 - shown on the page instead of crashing the build
                info.error = f"cannot read checkpoint {self.ref!r}: {e}"
            self._info = info
        return self._info

    def fingerprint(self) -> str:
        """A short id of the checkpoint's weights (path, size, mtime): cached example outputs are kept
        per fingerprint, so a retrained checkpoint never shows the previous model's videos."""
        try:
            folder = Path(self._pipe.source) if self._pipe is not None and self._pipe.source else self._resolve()
            st = (folder / "model.safetensors").stat()
            key = f"{folder.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        except (ValueError, OSError, TypeError):
            key = self.ref if self._pipe is None else f"in-memory-{id(self._pipe)}"
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def pipeline(self) -> VideoPipeline:
        """The shared pipeline, loaded on first use (ValueError with a readable message if it can't)."""
        with self._load_lock:
            if self._pipe is None:
                self._pipe = VideoPipeline.from_pretrained(self._resolve(), device=self.device)
                self._info = None  # re-read from the loaded pipeline
            return self._pipe

    def vocabulary(self) -> tuple[str, ...]:
        cfg = self.info().config
        return tuple(cfg.vocabulary) if cfg is not None else ()

    def unknown_words(self, prompt: Any) -> list[str]:
        """Words of the prompt the model never saw (each once, in order); [] for an open vocabulary."""
        vocab = set(self.vocabulary())
        if not vocab:
            return []
        words = normalize_words(clean_prompt("" if prompt is None else str(prompt)))
        return list(dict.fromkeys(w for w in words if w not in vocab))

    # ------------------------------------------------------------------ generation
    def generate(self, req: Request) -> Iterator[Update]:
        """Stream one generation: an Update per denoising step, then one with the MP4 and one with
        the downloads and the explorer data. Bad input raises ValueError before the first step."""
        t0 = time.perf_counter()
        pipe = self.pipeline()
        seed = req.seed
        warnings = []
        unknown = self.unknown_words(req.prompt)
        if unknown:
            warnings.append("The model never saw these words and will ignore them: " + ", ".join(unknown))
        source = pipe.source if gpu.zero_gpu() and pipe.source else pipe
        result = explorer = last = None
        first = None
        run = self.outputs.new_run()
        self.active += 1
        try:
            kwargs = req.pipeline_kwargs()
            # Single heads for the explorer's head slider; spatial maps (the large ones) stay averaged.
            kwargs["record_per_head"] = ("cross", "temporal")
            with self._run_lock:
                events = denoise(source, kwargs)
                try:
                    for ev in events:
                        self.steps_done += 1
                        shown = ev.preview if req.preview == "x0" else ev.preview_xt
                        heat = live_heatmaps(ev.maps, ev.map_context)
                        heat = {w: heat[w] for w in content_words(list(heat))}
                        elapsed = time.perf_counter() - t0
                        first = first or elapsed
                        last = Update(
                            status=(f"**Step {ev.step + 1} / {ev.num_steps}** &nbsp; `{progress_bar(ev.step + 1, ev.num_steps)}`"
                                    f" &nbsp; t = {ev.t} · {elapsed:.1f} s · seed {seed}"),
                            seed=seed, step=ev.step + 1, num_steps=ev.num_steps,
                            preview=views.write_image(views.preview_image(shown), run / f"preview-{ev.step:03d}.jpg"),
                            attention=None if (strip := views.live_attention_image(ev.preview, heat)) is None
                            else views.write_image(strip, run / f"attention-{ev.step:03d}.jpg"),
                            warnings=warnings if ev.step == 0 else [],
                        )
                        yield last
                        result = ev.result or result
                finally:
                    events.close()
                if result is None:  # the stream ended early (it never does unless cancelled)
                    return
                explorer = ExplorerData.from_result(result, pipe)  # reads B and gamma: under the lock
            mp4 = video_io.write_mp4(result.frames, run / "vidgen.mp4", fps=result.fps, audio=result.audio,
                                     sample_rate=result.sample_rate)
            t_video = time.perf_counter() - t0
            s = result.settings
            summary = (f"{s.num_frames} frames {s.width}×{s.height}, {s.num_inference_steps} {s.sampler} steps, "
                       f"guidance {s.guidance_scale:g}, seed {result.seed}")
            yield Update(status=f"**Video ready** after {t_video:.1f} s · writing the GIF and maps…", seed=seed,
                         step=s.num_inference_steps, num_steps=s.num_inference_steps, video=str(mp4))
            gif = video_io.write_gif(result.frames, run / "vidgen.gif", fps=result.fps)
            meta = {"prompt": s.prompt, "settings": dataclasses.asdict(s), "seed": result.seed, "fps": result.fps,
                    "checkpoint": self.ref, "warnings": list(result.warnings), "timings": result.timings}
            npz = write_maps(run / "vidgen-maps.npz", result, explorer, json.loads(json.dumps(meta, default=str)))
            total = time.perf_counter() - t0
            self.last_timings = {"first_preview": first or 0.0, "video": t_video, "total": total,
                                 "per_step": result.timings.get("per_step", 0.0)}
            yield Update(
                status=(f"**Done** · {summary} · first preview after {first:.2f} s, video after {t_video:.1f} s"
                        + "".join(f"  \n⚠️ {w}" for w in result.warnings)),
                seed=seed, step=s.num_inference_steps, num_steps=s.num_inference_steps, video=str(mp4),
                files=[str(mp4), str(gif), str(npz)], explorer=explorer,
                preview=last.preview, attention=last.attention,  # so the final result is complete on its own
            )
        finally:
            self.active -= 1
