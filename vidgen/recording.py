"""AttentionRecorder: capture attention maps by swapping attention processors.

    with AttentionRecorder(model, kinds=("cross",)) as rec:
        rec.step = 0
        model(...)
    rec.maps[(0, "blocks.0.cross", "cross")]   # (B, F, N, L)

On enter it saves every layer's processor and installs a recording `EagerProcessor` on the
selected layers; on exit (also after an exception or a generator close) it puts the originals
back. The model itself has no recording branches, so with no recorder there is zero overhead.

Stored maps (CPU, float32; heads averaged unless per_head, which adds an H axis after B):
    "spatial":  (B, F, N, N)     within-frame attention, N = h*w grid tokens (row-major)
    "temporal": (B, N, F, F)     per location, query frame -> key frame
    "cross":    (B, F, N, L)     video tokens -> the L condition tokens (text, then audio)
    "joint":    (B, F*N, F*N)    space-time attention of the "joint" variant
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .attention import KINDS, Attention, EagerProcessor, attention_modules

MapKey = tuple[int, str, str]  # (step, layer name, kind)


def unfold_probs(kind: str, probs: torch.Tensor, layout: tuple[int, ...]) -> torch.Tensor:
    """Reshape raw probabilities (B', H, Nq, Nk) to the documented (B, H, ...) layout of `kind`."""
    B, Fr, N = layout
    H = probs.shape[1]
    if kind == "spatial":  # B' = B*F, Nq = Nk = N
        return probs.reshape(B, Fr, H, N, N).transpose(1, 2)
    if kind == "temporal":  # B' = B*N, Nq = Nk = F
        return probs.reshape(B, N, H, Fr, Fr).transpose(1, 2)
    if kind == "cross":  # B' = B, Nq = F*N
        return probs.reshape(B, H, Fr, N, probs.shape[-1])
    return probs  # joint: (B, H, F*N, F*N)


class AttentionRecorder:
    """Context manager that records attention maps of selected layers and kinds.

    Args:
        model: any module containing `Attention` layers.
        kinds: which kinds to record (subset of spatial / temporal / cross / joint).
        layers: layer names (or substrings of them) to record; None = all of the kinds.
        per_head: keep the heads axis instead of averaging it: True for every kind, or the kinds
            to keep it for (e.g. ("cross", "temporal"); spatial maps are the large ones).
        batch_index: keep only this batch row (e.g. the conditional half of a CFG pair).
    Set `recorder.step` before each model call; maps land in `recorder.maps[(step, layer, kind)]`.
    """

    def __init__(
        self,
        model: nn.Module,
        kinds: Iterable[str] = ("spatial", "temporal", "cross"),
        layers: Iterable[str] | None = None,
        *,
        per_head: bool | Iterable[str] = False,
        batch_index: int | None = None,
    ):
        self.kinds = tuple(kinds)
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown attention kinds {unknown}; expected a subset of {KINDS}")
        self.model = model
        self.layer_filter = None if layers is None else tuple(layers)
        self.per_head_kinds = set(self.kinds) if per_head is True else set(per_head or ())
        self.batch_index = batch_index
        self.step = 0
        self.maps: dict[MapKey, torch.Tensor] = {}
        self._saved: dict[str, Any] | None = None
        # Looked up once: a recorder entered at every denoising step would otherwise walk the
        # module tree several times per model call.
        self._layers: dict[str, Attention] | None = None
        self._processors: dict[str, EagerProcessor] | None = None

    def selected_layers(self) -> dict[str, Attention]:
        return {
            name: m
            for name, m in attention_modules(self.model).items()
            if m.kind in self.kinds and (self.layer_filter is None or any(f in name for f in self.layer_filter))
        }

    def _callback(self, name: str):
        def on_probs(attn: Attention, probs: torch.Tensor, layout: tuple[int, ...]) -> None:
            maps = unfold_probs(attn.kind, probs.detach(), layout)
            if self.batch_index is not None:
                # A layer that ran once for all videos (the denoiser's shared rows, batch 1) holds
                # every video's maps, that of batch_index included.
                i = self.batch_index if maps.shape[0] > 1 else 0
                maps = maps[i : i + 1]
            maps = maps if attn.kind in self.per_head_kinds else maps.mean(dim=1)
            self.maps[(self.step, name, attn.kind)] = maps.float().cpu()

        return on_probs

    def pop_step(self, step: int) -> dict[MapKey, torch.Tensor]:
        """Remove and return the maps of one step (streaming callers keep memory bounded)."""
        keys = [k for k in self.maps if k[0] == step]
        return {k: self.maps.pop(k) for k in keys}

    def __enter__(self) -> "AttentionRecorder":
        if self._layers is None:
            self._layers = attention_modules(self.model)
            self._processors = {name: EagerProcessor(self._callback(name)) for name in self.selected_layers()}
        self._saved = {name: m.processor for name, m in self._layers.items()}
        for name, proc in self._processors.items():
            self._layers[name].processor = proc
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            for name, proc in self._saved.items():
                self._layers[name].processor = proc
            self._saved = None
