"""VideoPipeline: prompt (+ image, + audio) -> video, step by step, with attention maps.

    pipe = VideoPipeline.from_pretrained("checkpoints/vidgen-shapes")   # or a Hub id
    result = pipe("a red circle moving left", seed=0)                    # result.frames (F, H, W, 3)
    for event in pipe.stream("a red circle moving left", record_attention=True):
        show(event.preview, event.maps)                                  # one event per step

Everything a UI needs is here; the app only lays it out. Closing a stream (a cancel) stops the
computation at the next step boundary, restores the attention processors and drops the tensors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from .attention import ZeroProcessor
from .checkpoint import VideoModel
from .encoders import ImageEncoder, normalize_words, prepare_audio
from .hub import resolve_checkpoint
from .maps import MapContext, merge_bpe_pieces
from .recording import AttentionRecorder, MapKey
from .samplers import get_sampler
from .video_io import load_audio, load_image, video_to_uint8

MAX_SEED = 2**63 - 1
MAX_PROMPT_CHARS = 2000  # refused above this (tokenizing megabytes is slow); the model reads ~30 tokens anyway
RECORDABLE = ("spatial", "temporal", "cross")


@dataclasses.dataclass
class GenerationSettings:
    """The validated knobs of one generation (what the result reports back)."""

    prompt: str
    negative_prompt: str
    num_frames: int
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    sampler: str
    seed: int
    temporal_attention: bool = True
    temporal_gate: float | None = None


@dataclasses.dataclass
class GenerationResult:
    """A finished video. frames: uint8 (F, H, W, 3); video: float (1, 3, F, H, W) in [-1, 1];
    audio: float32 (S,) at `sample_rate` trimmed to the video, or None; maps: {(step, layer, kind):
    tensor} when attention was recorded, interpreted with `map_context` (see vidgen.maps)."""

    frames: np.ndarray
    video: torch.Tensor
    fps: int
    seed: int
    settings: GenerationSettings
    timings: dict[str, float]
    audio: np.ndarray | None = None
    sample_rate: int = 16000
    maps: dict[MapKey, torch.Tensor] | None = None
    map_context: MapContext | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class StepEvent:
    """One denoising step. preview: x0_pred as uint8 (F, H, W, 3); preview_xt: the noisy sample
    after this step, same layout; maps: this step's attention maps (when recording); result: set
    on the last event only."""

    step: int
    num_steps: int
    t: int
    preview: np.ndarray
    preview_xt: np.ndarray
    elapsed: float
    maps: dict[MapKey, torch.Tensor] | None = None
    map_context: MapContext | None = None
    result: GenerationResult | None = None


def pick_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def clean_prompt(prompt: str) -> str:
    """Drop control characters and collapse whitespace (they carry no meaning for the tokenizer)."""
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in str(prompt))
    return " ".join(text.split())


def _show(value) -> str:
    """A short repr of a user's value for an error message (never megabytes, never a crash)."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)) and abs(int(value)).bit_length() > 128:
        return f"an integer of about {int(abs(int(value)).bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, (str, bytes, int, float, np.integer, np.floating, type(None))):
        text = repr(value.item() if isinstance(value, np.generic) else value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__}"


def _check_int(name: str, value, lo: int, hi: int) -> int:
    """An integer knob (Python or numpy int, never a bool or a float) within [lo, hi]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {_show(value)}")
    return int(value)


def _check_float(name: str, value, lo: float, hi: float) -> float:
    """A finite number (int or float, never a bool or a string) within [lo, hi]."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    try:
        x = float(value) if ok else math.nan
    except OverflowError:
        x = math.inf
    if not math.isfinite(x) or not lo <= x <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {_show(value)}")
    return x


def _check_text(name: str, value) -> str:
    """A prompt as a str (None counts as empty), at most MAX_PROMPT_CHARS long, cleaned."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"the {name} must be text, got {_show(value)}")
    if len(value) > MAX_PROMPT_CHARS:
        raise ValueError(f"the {name} is {len(value):,} characters long; the limit is {MAX_PROMPT_CHARS:,} "
                         f"(the model reads only its first few dozen tokens)")
    return clean_prompt(value)


_CACHE: dict[tuple[str, str, str], "VideoPipeline"] = {}
_CACHE_LOCK = threading.Lock()


class VideoPipeline:
    """Generation around a VideoModel: validation, conditioning, guidance, sampling, previews, maps."""

    def __init__(self, model: VideoModel, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        self.device = torch.device(device) if device is not None else pick_device()
        self.dtype = dtype or torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.cfg = model.cfg
        self.source: str | None = None
        # Held for one model call at a time: recorders and ablations patch the shared model only
        # inside it, so interleaved or concurrent streams never see each other's processors or gates.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        allowed_root: str | os.PathLike | None = None,
    ) -> "VideoPipeline":
        """Load (once) a local checkpoint folder or a Hub repo id; cached per (path, device, dtype)
        and safe to call from several threads at once: concurrent callers share one load."""
        folder = resolve_checkpoint(name_or_path, allowed_root=allowed_root).resolve()
        device = torch.device(device) if device is not None else pick_device()
        dtype = dtype or torch.float32
        key = (str(folder), str(device), str(dtype))
        with _CACHE_LOCK:  # one lock: loads are rare and small, and a second caller must wait for the first
            pipe = _CACHE.get(key)
            if pipe is None:
                pipe = cls(VideoModel.from_pretrained(folder), device=device, dtype=dtype)
                pipe.source = str(folder)
                _CACHE[key] = pipe
        return pipe

    @staticmethod
    def clear_cache() -> None:
        with _CACHE_LOCK:
            _CACHE.clear()

    # ------------------------------------------------------------------ validation
    @property
    def vocabulary(self) -> tuple[str, ...]:
        return tuple(self.cfg.vocabulary)

    def unknown_words(self, prompt: str) -> list[str]:
        return self.model.text.unknown_words(clean_prompt(prompt))

    def limits(self) -> dict[str, tuple]:
        """Allowed ranges of every knob, as (low, high) inclusive."""
        k = self.cfg.downsample
        return {
            "num_frames": (1, self.cfg.max_frames),
            "height": (4 * k, 16 * k),
            "width": (4 * k, 16 * k),
            "num_inference_steps": (1, 250),
            "guidance_scale": (0.0, 20.0),
            "seed": (0, MAX_SEED),
            "temporal_gate": (-10.0, 10.0),
        }

    def settings(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.0,
        sampler: str = "ddim",
        seed: int | None = None,
        temporal_attention: bool = True,
        temporal_gate: float | None = None,
    ) -> GenerationSettings:
        """Validate every knob up front: anything out of range or of the wrong type (a string, a
        float for an integer, a bool for a number, None where a value is needed) is a ValueError whose
        message names the knob, the value and what is allowed."""
        text = _check_text("prompt", prompt)
        if not text:
            raise ValueError("the prompt is empty: describe the video, e.g. 'a red circle moving left'")
        negative = _check_text("negative prompt", negative_prompt)
        if self.vocabulary:
            words, unknown = normalize_words(text), self.model.text.unknown_words(text)
            if len(unknown) == len(words):  # also catches prompts with no words at all (only emoji)
                shown = ", ".join(unknown[:8]) + (", ..." if len(unknown) > 8 else "") if unknown else repr(text[:60])
                raise ValueError(
                    f"none of the prompt's words are known to this model ({shown}); "
                    f"it knows: {', '.join(self.vocabulary)}"
                )
        if not isinstance(sampler, str):
            raise ValueError(f"sampler must be the name of a sampler, got {_show(sampler)}")
        get_sampler(sampler)  # unknown sampler -> ValueError listing the choices
        lim = self.limits()
        values = {
            "num_frames": self.cfg.num_frames if num_frames is None else num_frames,
            "height": self.cfg.sample_size if height is None else height,
            "width": self.cfg.sample_size if width is None else width,
            "num_inference_steps": num_inference_steps,
        }
        values = {name: _check_int(name, value, *lim[name]) for name, value in values.items()}
        for name in ("height", "width"):
            if values[name] % self.cfg.downsample:
                raise ValueError(f"{name} must be a multiple of {self.cfg.downsample}, got {values[name]}")
        g = _check_float("guidance_scale", guidance_scale, *lim["guidance_scale"])
        if sampler == "fast":  # DDIM on a distilled checkpoint's own step grid, unguided (guidance is baked in)
            if not self.cfg.distilled_steps:
                raise ValueError("sampler 'fast' needs a distilled checkpoint (made by `python -m vidgen distill`); "
                                 "this one is not distilled: choose 'ddim', 'ddpm' or 'dpmpp'")
            values["num_inference_steps"], g = self.cfg.distilled_steps, 1.0
        if seed is None:
            seed = random.SystemRandom().randrange(0, 2**31)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {_show(seed)}")
        if not isinstance(temporal_attention, (bool, np.bool_)):
            raise ValueError(f"temporal_attention must be True or False, got {_show(temporal_attention)}")
        if temporal_gate is not None:
            temporal_gate = _check_float("temporal_gate", temporal_gate, *lim["temporal_gate"])
        return GenerationSettings(
            prompt=text,
            negative_prompt=negative,
            seed=int(seed),
            guidance_scale=g,
            sampler=sampler,
            temporal_attention=bool(temporal_attention),
            temporal_gate=temporal_gate,
            **values,
        )

    # ------------------------------------------------------------------ generation
    def __call__(self, prompt: str, **kwargs) -> GenerationResult:
        """Generate a video; same arguments as `stream`. Recorded maps of all steps are in the result."""
        *_, last = self.stream(prompt, **kwargs)
        return last.result

    def stream(
        self,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        image=None,
        audio=None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.0,
        sampler: str = "ddim",
        seed: int | None = None,
        record_attention: bool | Iterable[str] | None = None,
        record_per_head: bool | Iterable[str] = False,
        temporal_attention: bool = True,
        temporal_gate: float | None = None,
    ) -> Iterator[StepEvent]:
        """Yield one StepEvent per denoising step; the last one carries the GenerationResult.

        image: PIL image / numpy array / path, used as the first frame. audio: a path, or
        (sample_rate, samples) as Gradio gives it. record_attention: True for spatial, temporal and
        cross maps, or an iterable of those kinds. record_per_head: keep each head's map (an H axis
        after B) instead of their average, for every recorded kind (True) or the kinds listed.
        Validation happens before the first step.
        """
        s = self.settings(
            prompt, negative_prompt=negative_prompt, num_frames=num_frames, height=height, width=width,
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, sampler=sampler, seed=seed,
            temporal_attention=temporal_attention, temporal_gate=temporal_gate,
        )
        kinds = self._record_kinds(record_attention)
        if isinstance(record_per_head, (bool, np.bool_)):
            per_head = kinds if record_per_head else ()
        else:
            per_head = self._record_kinds(list(record_per_head) if not isinstance(record_per_head, str) else record_per_head)
        image_t = self._prepare_image(image, s) if image is not None else None
        audio_np = self._prepare_audio(audio, s) if audio is not None else None
        return self._run(s, image_t, audio_np, kinds, per_head)

    def _record_kinds(self, record_attention) -> tuple[str, ...]:
        if record_attention is None or isinstance(record_attention, (bool, np.bool_)):
            kinds = RECORDABLE if record_attention else ()
        elif isinstance(record_attention, str):
            kinds = (record_attention,)  # one kind by name, not its letters
        elif isinstance(record_attention, (list, tuple, set, frozenset)) and all(isinstance(k, str) for k in record_attention):
            kinds = tuple(record_attention)
        else:
            raise ValueError(f"record_attention must be True, False or a list of kinds among {RECORDABLE}, "
                             f"got {_show(record_attention)}")
        if not kinds:
            return ()
        bad = sorted(set(kinds) - set(RECORDABLE) - {"joint"})
        if bad:
            raise ValueError(f"record_attention kinds must be among {RECORDABLE}, got {bad}")
        if self.cfg.variant == "joint":
            kinds = tuple(k for k in kinds if k == "cross") + ("joint",)
        return kinds

    def _prepare_image(self, image, s: GenerationSettings) -> torch.Tensor:
        if not self.cfg.image_condition:
            raise ValueError("this checkpoint was trained without image conditioning")
        pil = load_image(image)  # ValueError for unreadable / oversized images
        return ImageEncoder(s.height, s.width)(pil)

    def _prepare_audio(self, audio, s: GenerationSettings) -> np.ndarray:
        seconds = s.num_frames / self.cfg.fps
        samples, sample_rate = load_audio(audio, max_seconds=seconds)  # ValueError for unreadable audio
        wave = prepare_audio(samples, sample_rate, num_frames=s.num_frames, fps=self.cfg.fps, target_sr=self.cfg.audio_sample_rate)
        return wave.numpy()

    @contextlib.contextmanager
    def _patched(self, recorder: AttentionRecorder | None, s: GenerationSettings):
        """Recording processors and ablations of one generation, installed for one model call."""
        with contextlib.ExitStack() as stack:
            if recorder is not None:
                stack.enter_context(recorder)
            stack.enter_context(self._ablations(s))
            yield

    @contextlib.contextmanager
    def _ablations(self, s: GenerationSettings):
        """Temporal attention off (ZeroProcessor) and a gate override, restored on exit."""
        layers = {n: m for n, m in self.model.denoiser.attention_layers().items() if m.kind == "temporal"}
        saved_procs = {n: m.processor for n, m in layers.items()}
        saved_gates = {n: m.gate.detach().clone() for n, m in layers.items()}
        try:
            if not s.temporal_attention:
                for m in layers.values():
                    m.processor = ZeroProcessor()
            if s.temporal_gate is not None:
                with torch.no_grad():
                    for m in layers.values():
                        m.gate.fill_(s.temporal_gate)
            yield
        finally:
            with torch.no_grad():
                for n, m in layers.items():
                    m.processor = saved_procs[n]
                    m.gate.copy_(saved_gates[n])

    def prompt_words(self, prompt: str) -> list[tuple[str, list[int]]]:
        """The words of a (cleaned) prompt as the attention maps name them, BPE pieces merged, each with
        its context-token positions (after SOT)."""
        return [(w, [i + 1 for i in idx]) for w, idx in merge_bpe_pieces(self.model.text.pieces(prompt))]

    def map_context(self, s: GenerationSettings, with_audio: bool) -> MapContext:
        k = self.cfg.downsample
        words = self.prompt_words(s.prompt)
        L = self.cfg.context_length
        return MapContext(
            grid=(s.height // k, s.width // k),
            num_frames=s.num_frames,
            words=words,
            audio_tokens=slice(L, L + s.num_frames) if with_audio else None,
            batch_index=0,  # the recorder keeps only the conditional row
        )

    @torch.inference_mode()
    def _conditioning(self, s: GenerationSettings, audio: np.ndarray | None, use_cfg: bool):
        prompts = [s.negative_prompt, s.prompt] if use_cfg else [s.prompt]
        ids, truncated = self.model.text.tokenize(prompts)
        audio_t = has_audio = None
        if audio is not None:
            audio_t = torch.from_numpy(audio)[None].expand(len(prompts), -1).to(self.device)
            # The unconditional row drops the audio too, so guidance strengthens text and sound together.
            has_audio = torch.tensor([False, True] if use_cfg else [True], device=self.device)
        cond = self.model.encode(ids.to(self.device), s.num_frames, audio_t, has_audio)
        return cond, truncated[-1]

    def _run(
        self, s: GenerationSettings, image: torch.Tensor | None, audio: np.ndarray | None, kinds: tuple[str, ...],
        per_head: tuple[str, ...] = (),
    ) -> Iterator[StepEvent]:
        t_start = time.perf_counter()
        model, schedule = self.model, self.model.schedule
        use_cfg = s.guidance_scale != 1.0
        warnings = []
        unknown = self.unknown_words(s.prompt)
        if unknown:
            warnings.append(f"words this model never saw: {', '.join(unknown)}")
        cond, truncated = self._conditioning(s, audio, use_cfg)
        if truncated:
            warnings.append(f"the prompt was truncated to {self.cfg.context_length - 2} tokens")
        batch = 2 if use_cfg else 1
        image_b = image_mask = None
        if image is not None:
            image_b = image[None].to(self.device, self.dtype)  # shared by the CFG pair (see denoise)
            image_mask = torch.ones(1, dtype=torch.bool, device=self.device)
        timings = {"encode": time.perf_counter() - t_start}

        generator = torch.Generator(device=self.device).manual_seed(s.seed)
        shape = (1, self.cfg.in_channels, s.num_frames, s.height, s.width)
        x_T = torch.randn(shape, generator=generator, device=self.device, dtype=self.dtype)
        timesteps = schedule.timesteps(s.num_inference_steps)
        recorder = AttentionRecorder(model.denoiser, kinds, per_head=per_head, batch_index=batch - 1) if kinds else None
        ctx = self.map_context(s, audio is not None) if kinds else None
        all_maps: dict[MapKey, torch.Tensor] = {}
        calls = 0

        def denoise(x_t: torch.Tensor, t: int) -> torch.Tensor:
            nonlocal calls
            if recorder is not None:
                recorder.step = calls
            calls += 1
            # The CFG pair shares x_t and t: passed once, the denoiser computes everything before its
            # first cross-attention once for both rows (VideoDenoiser's shared rows); same result.
            x_in = x_t
            t_in = torch.full((1,), t, device=self.device, dtype=torch.long)
            # The model is patched only for this call and never while the stream is suspended at a
            # yield; grad mode is scoped here too, not across yields (a resumed generator may run on
            # another thread, and the consumer's code between steps must not inherit it).
            with self._lock, self._patched(recorder, s), torch.no_grad():
                out = model(x_in, t_in, cond, image_b, image_mask).float()
            if use_cfg:  # classifier-free guidance, in the model's own parametrization (linear in x0)
                uncond, cond_out = out.chunk(2)
                out = uncond + s.guidance_scale * (cond_out - uncond)
            return schedule.to_x0(out, x_t.float(), t, self.cfg.prediction_type).clamp(-1, 1).to(x_t.dtype)

        steps_fn = get_sampler(s.sampler)
        first_step = None
        x = x_T
        for info in steps_fn(denoise, x_T, timesteps, schedule=schedule, generator=generator):
            x = info.x_prev
            step_maps = recorder.pop_step(info.step) if recorder is not None else None
            if step_maps:
                all_maps.update(step_maps)
            elapsed = time.perf_counter() - t_start
            first_step = first_step or elapsed
            event = StepEvent(
                step=info.step, num_steps=info.num_steps, t=info.t,
                preview=video_to_uint8(info.x0_pred[0]), preview_xt=video_to_uint8(info.x_prev[0].clamp(-1, 1)),
                elapsed=elapsed, maps=step_maps, map_context=ctx,
            )
            if info.step == info.num_steps - 1:
                video = x.float().clamp(-1, 1).cpu()
                timings.update(first_step=first_step, total=time.perf_counter() - t_start)
                timings["per_step"] = (timings["total"] - timings["encode"]) / info.num_steps
                event.result = GenerationResult(
                    frames=video_to_uint8(video[0]), video=video, fps=self.cfg.fps, seed=s.seed, settings=s,
                    timings=timings, audio=audio, sample_rate=self.cfg.audio_sample_rate,
                    maps=all_maps if recorder is not None else None, map_context=ctx, warnings=warnings,
                )
            yield event
