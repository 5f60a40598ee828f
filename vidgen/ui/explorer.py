"""The attention explorer's data: a finished run's recorded maps, and the four views built from them.

`ExplorerData.from_result(result, pipe)` keeps what the views need after the run (the frames, the
recorded store in float16, the TGS bias and gate of every temporal layer, the audio's loudness)
so the app can hold it in a `gr.State` and redraw views when a slider moves. Every view returns
(picture or None, caption); the caption says what is shown or why nothing is.

Selections use 0 for "average": layer 0 = all layers, head 0 = all heads, step 0 = all steps;
layer k, head k and step k count from 1 as the sliders show them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import torch

from .. import maps as M
from ..maps import MapContext
from . import views

STOP_WORDS = frozenset({"a", "an", "and", "the", "moving"})


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which maps to average: 0 means all (layers, heads, steps); k >= 1 picks the k-th."""

    layer: int = 0
    head: int = 0
    step: int = 0

    @classmethod
    def of(cls, layer: Any = 0, head: Any = 0, step: Any = 0) -> "Selection":
        return cls(*(int(v or 0) for v in (layer, head, step)))


def _natural(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def block_of(layer_name: str) -> str:
    """"blocks.1.cross" -> "blocks.1" (the layer's transformer block)."""
    return layer_name.rsplit(".", 1)[0]


def content_words(words: list[str], at_most: int = 4) -> list[str]:
    """The words worth a live heat map: without "a", "and", "moving" (unless nothing else is left)."""
    keep = [w for w in words if w.split(" (")[0] not in STOP_WORDS]
    return (keep or list(words))[:at_most]


def live_heatmaps(step_maps: dict | None, ctx: MapContext | None) -> dict[str, np.ndarray]:
    """This step's cross-attention per word, averaged over layers and heads: {word: (F, h, w)}."""
    if not step_maps or ctx is None or not any(k[2] == "cross" for k in step_maps):
        return {}
    return M.word_heatmaps(step_maps, ctx)


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float16)


@dataclasses.dataclass
class ExplorerData:
    """Everything the explorer needs about one finished run (kept per browser session)."""

    frames: np.ndarray  # (F, H, W, 3) uint8, the final video
    store: dict[tuple[int, str, str], torch.Tensor]  # the recorded maps, float16 (see vidgen.maps)
    ctx: MapContext
    num_steps: int
    blocks: list[str]  # "blocks.0", "blocks.1", ... in order
    heads: int  # heads recorded separately (0: the pipeline averaged them)
    words: list[str]  # display names, as vidgen.maps.word_heatmaps keys them
    temporal_bias: dict[str, np.ndarray]  # temporal layer name -> B (heads, F, F)
    gates: dict[str, float]  # temporal layer name -> the gamma used in this run
    trained_gates: dict[str, float]  # temporal layer name -> the checkpoint's gamma
    temporal_attention: bool = True
    loudness: np.ndarray | None = None  # (F,) per-frame RMS of the audio, when audio was given
    prompt: str = ""

    # ------------------------------------------------------------------ building
    @classmethod
    def from_result(cls, result, pipe=None) -> "ExplorerData":
        """From a GenerationResult recorded with attention (and the pipeline, for B and gamma)."""
        if result.maps is None or result.map_context is None:
            raise ValueError("this run was generated without recording attention")
        ctx = result.map_context
        store = {}
        for key, t in result.maps.items():
            if key[2] == "joint":  # full space-time maps are big: keep only their frame-to-frame part
                ft = M.joint_to_temporal({key: t}, ctx)
                store[(key[0], key[1], "temporal")] = _half(torch.from_numpy(ft)[None, None])
            elif key[2] == "spatial" and t.ndim == 5:  # per-head spatial maps are big: average heads
                store[key] = _half(t.float().mean(1))
            else:
                store[key] = _half(t)
        cross = [t for k, t in store.items() if k[2] == "cross"]
        heads = int(cross[0].shape[1]) if cross and cross[0].ndim == 5 else 0
        steps = sorted({k[0] for k in store})
        words = list(M.word_heatmaps(store, ctx, steps=steps[-1]).keys()) if cross else []
        bias, gates, trained = {}, {}, {}
        settings = result.settings
        if pipe is not None:
            for name, layer in pipe.model.denoiser.attention_layers().items():
                if layer.kind != "temporal":
                    continue
                with torch.no_grad():
                    bias[name] = layer.temporal_bias(ctx.num_frames).float().cpu().numpy()
                trained[name] = float(layer.gate.detach())
                gates[name] = trained[name] if settings.temporal_gate is None else float(settings.temporal_gate)
        loudness = None
        if result.audio is not None:
            from ..world import audio_envelope

            loudness = audio_envelope(result.audio, ctx.num_frames, fps=result.fps, sample_rate=result.sample_rate)
        return cls(
            frames=np.asarray(result.frames), store=store, ctx=ctx, num_steps=settings.num_inference_steps,
            blocks=sorted({block_of(k[1]) for k in store}, key=_natural), heads=heads, words=words,
            temporal_bias=bias, gates=gates, trained_gates=trained,
            temporal_attention=settings.temporal_attention, loudness=loudness, prompt=settings.prompt,
        )

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + sum(t.numel() * t.element_size() for t in self.store.values())

    def kinds(self) -> set[str]:
        return {k[2] for k in self.store}

    # ------------------------------------------------------------------ selection
    def _query(self, sel: Selection, *, per_head: bool = True) -> tuple[dict, str]:
        """maps-function keyword arguments for a selection, and words describing it."""
        layer = min(max(sel.layer, 0), len(self.blocks))
        step = min(max(sel.step, 0), self.num_steps)
        head = min(max(sel.head, 0), self.heads) if per_head else 0
        kw = {
            "layers": None if layer == 0 else self.blocks[layer - 1],
            "steps": None if step == 0 else step - 1,
            "head": None if head == 0 else head - 1,
        }
        text = [
            "all layers" if layer == 0 else f"layer {layer} of {len(self.blocks)}",
            "average of heads" if head == 0 else f"head {head} of {self.heads}",
            f"all {self.num_steps} steps" if step == 0 else f"step {step} of {self.num_steps}",
        ]
        return kw, " · ".join(text)

    def head_note(self, sel: Selection) -> str:
        if sel.head and not self.heads:
            return " (this run's maps were recorded with heads averaged, so the head slider has no effect)"
        return ""

    # ------------------------------------------------------------------ views
    def words_view(self, word: str | None, sel: Selection) -> tuple[np.ndarray | None, str]:
        """Words -> pixels: one word's cross-attention heat map over every frame."""
        if not self.words:
            return None, "No cross-attention was recorded for this run."
        word = word if word in self.words else self.default_word()
        kw, what = self._query(sel)
        heat = M.word_heatmaps(self.store, self.ctx, **kw)[word]
        img, _ = views.word_overlay_image(self.frames, heat)
        return img, f"Where **{word}** is read, over every frame ({what}){self.head_note(sel)}. Bright = more attention."

    def default_word(self) -> str | None:
        words = content_words(self.words, at_most=len(self.words))
        shapes = [w for w in words if w in ("circle", "square", "triangle")]
        return (shapes or words or [None])[0]

    def frames_view(self, sel: Selection) -> tuple[np.ndarray | None, str]:
        """Frames -> frames: the F x F temporal attention, beside the TGS bias B and gate gamma."""
        if "temporal" not in self.kinds():
            if not self.temporal_attention:
                return None, ("Temporal attention was switched off for this run (an ablation), so no frame looked "
                              "at any other: expect flicker, since each frame was denoised on its own.")
            return None, "This model has no temporal attention layers to show."
        kw, what = self._query(sel)
        mat = M.temporal_matrix(self.store, self.ctx, **kw)
        layer_names = [n for n in self.temporal_bias if kw["layers"] is None or block_of(n) == kw["layers"]]
        bias = gamma = None
        if layer_names:
            head = kw["head"]
            bs = [self.temporal_bias[n] for n in layer_names]
            bias = np.mean([b.mean(0) if head is None else b[head % b.shape[0]] for b in bs], axis=0)
            gamma = float(np.mean([self.gates[n] for n in layer_names]))
        img = views.temporal_image(mat, bias, gamma)
        gate_text = ""
        if layer_names:
            used = ", ".join(f"{self.gates[n]:.2f}" for n in layer_names)
            gate_text = f" Gate gamma = {used}"
            if any(abs(self.gates[n] - self.trained_gates[n]) > 1e-6 for n in layer_names):
                gate_text += " (overridden; trained: " + ", ".join(f"{self.trained_gates[n]:.2f}" for n in layer_names) + ")"
            gate_text += "."
        return img, f"Frame-to-frame attention ({what}), averaged over positions.{gate_text}{self.head_note(sel)}"

    def pixels_view(self, sel: Selection, point: tuple[int, int, int] | None) -> tuple[np.ndarray | None, str, Any]:
        """Pixels -> pixels: where one grid cell attends within its frame. point = (frame, gy, gx).
        Also returns the picture's GridLayout so a click can be mapped back to (frame, y, x)."""
        if "spatial" not in self.kinds():
            img, layout = views.frame_grid(self.frames)
            return img, "This model records no spatial self-attention (the joint variant mixes space and time).", layout
        gh, gw = self.ctx.grid
        frame, gy, gx = point or (0, gh // 2, gw // 2)
        frame = min(max(int(frame), 0), self.ctx.num_frames - 1)
        kw, what = self._query(sel, per_head=False)
        heat = np.stack([M.spatial_map(self.store, self.ctx, frame=f, query=(gy, gx), **kw)
                         for f in range(self.ctx.num_frames)])
        heat = M.normalize(heat)
        img, layout = views.spatial_image(self.frames, heat, frame=frame, cell=(gy, gx), grid=self.ctx.grid)
        note = " Per-head spatial maps are not kept (memory); heads are averaged." if sel.head else ""
        caption = (f"Where the outlined cell (row {gy}, column {gx}) attends inside its own frame, in every frame; "
                   f"frame {frame + 1} is the one you clicked ({what}).{note} Click any frame to pick another point.")
        return img, caption, layout

    def locate_click(self, x: float, y: float) -> tuple[int, int, int] | None:
        """A click on the Pixels -> pixels picture -> (frame, gy, gx) on the attention grid."""
        _, layout = views.frame_grid(self.frames)
        hit = layout.locate(x, y)
        if hit is None:
            return None
        frame, fy, fx = hit
        gy, gx = M.pixel_to_grid(fy, fx, layout.frame_height, layout.frame_width, self.ctx.grid)
        return frame, gy, gx

    def sound_view(self, sel: Selection) -> tuple[np.ndarray | None, str]:
        """Sound -> frames: which audio moments each frame reads, beside the loudness curve."""
        if self.ctx.audio_tokens is None:
            return None, "No audio was given for this run. Add a clip (upload or microphone) and generate again."
        if "cross" not in self.kinds():
            return None, "No cross-attention was recorded for this run."
        kw, what = self._query(sel)
        att = M.audio_attention(self.store, self.ctx, **kw)
        return views.sound_image(att, self.loudness), (
            f"Each row is a video frame; it spreads its attention over the audio moments ({what}). "
            f"A bright diagonal means frame t listens to the sound at time t.{self.head_note(sel)}")


EMPTY = "Generate a video first: the explorer shows the attention maps recorded during your last run."


def render_all(data: ExplorerData | None, word: str | None, sel: Selection,
               point: tuple[int, int, int] | None) -> tuple:
    """All four views at once: (words image, caption, frames image, caption, pixels image, caption,
    sound image, caption). Without data, empty pictures and a hint."""
    if data is None:
        return (None, EMPTY) * 4
    pixels_img, pixels_md, _ = data.pixels_view(sel, point)
    return (*data.words_view(word, sel), *data.frames_view(sel), pixels_img, pixels_md, *data.sound_view(sel))
