"""Configuration dataclasses with a JSON round trip.

Configs are plain data: every module receives the config it needs instead of reading globals.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build `cls` from a dict, refusing unknown keys so a mismatched config fails loudly."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {unknown}")
    kwargs = {}
    for key, value in data.items():
        # JSON has no tuples; restore them where the field default is one.
        default = names[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def save_json(config: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")


def load_json(cls: type[T], path: str | Path) -> T:
    return from_dict(cls, json.loads(Path(path).read_text()))


@dataclasses.dataclass
class ModelConfig:
    """Everything needed to rebuild a model: the denoiser and its condition encoders.

    The denoiser works on a space-to-depth view of the video: `patch_size`×`patch_size` pixel
    blocks become channels (a conv stage at H/patch), then one more 2× downsample to the grid where
    the transformer blocks run (H/(2·patch)). At 64×64 with patch 4 that grid is 8×8 per frame.
    """

    # video
    in_channels: int = 3
    sample_size: int = 64  # default height = width
    num_frames: int = 16  # default frame count
    max_frames: int = 32  # size of the learnable temporal position bias table
    fps: int = 8
    # denoiser
    patch_size: int = 4
    conv_channels: int = 32
    width: int = 96
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    variant: str = "factorized"  # "factorized" (spatial then temporal) or "joint" (space-time)
    temporal_attention: bool = True
    image_condition: bool = True  # first frame + mask concatenated as extra input channels
    # A learned absolute frame embedding added to every token (zero-initialised, so turning it on
    # for a warm start changes nothing until it trains). Without it, frame order reaches the tokens
    # only through the adaLN modulation, so the cross-attention queries cannot tell frame 0 from
    # frame 15. It was added so that direction words could steer where an object is at each frame.
    # On its own it did not: after 5,000 GPU steps with it, direction was still at chance (README).
    frame_embedding: bool = False
    # text encoder (open_clip TextTransformer, trained with the denoiser)
    context_length: int = 32
    text_width: int = 96
    text_layers: int = 2
    text_heads: int = 4
    # Add each token's own embedding to its output feature (a zero-initialised linear skip around the
    # text transformer). In the shapes checkpoints the transformer's outputs for "left" and "right"
    # differ by 0.01 per channel against 2.6 for "red" and "blue": the skip lets a word's identity
    # reach the cross-attention whatever the words before it are. Tried for 1,495 CPU steps from the
    # stage-3 weights, then with word_embedding for 3,200 GPU steps (stage 4): no effect on direction (README).
    text_token_skip: bool = False
    # A direct words x frame path into the denoiser's per-frame embedding (adaLN): the mean of the
    # caption's own token embeddings (a bag of words, before the text transformer, which blurs
    # "left" into "right") and each frame's index go through a small MLP whose output is added to
    # that frame's embedding, from the first cross-attention on. That is how class-conditional DiTs
    # condition, and it gives "moving left" a first-order way to say where the object is at frame f.
    # The MLP's last layer is zero-initialised, so turning it on for a warm start changes nothing.
    # Trained for 3,200 GPU steps (stage 4, README): its output tells "left" from "right" (0.15 apart,
    # "red" and "blue" 0.22), but the model did not use the difference: direction stayed at chance until
    # stages 5-6 trained on the noisiest steps against multi-render targets (README).
    word_embedding: bool = False
    # Words whose BPE tokens get their own embedding rows; every other token shares one "unknown"
    # row. Empty = the full 49,408-token open_clip vocabulary.
    vocabulary: tuple[str, ...] = ()
    # audio encoder (log-mel spectrogram -> one token per video frame)
    audio_sample_rate: int = 16000
    n_mels: int = 32
    # diffusion
    schedule: str = "cosine"  # "cosine" or "linear"
    num_train_timesteps: int = 1000
    # Multiplies the schedule's signal-to-noise ratio (see schedules.shift_snr); < 1 for large videos.
    snr_shift: float = 1.0
    prediction_type: str = "v"  # "v", "eps" or "x0"
    # Set by progressive distillation (vidgen.distill): the student samples with DDIM on
    # schedule.timesteps(distilled_steps), unguided (the teacher's guidance is baked in). 0 = not distilled.
    distilled_steps: int = 0

    def __post_init__(self) -> None:
        if self.variant not in ("factorized", "joint"):
            raise ValueError(f"variant must be 'factorized' or 'joint', got {self.variant!r}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.width % 4:  # the 2D sin-cos position embedding splits width into 4 equal parts
            raise ValueError(f"width must be a multiple of 4, got {self.width}")
        if self.prediction_type not in ("v", "eps", "x0"):
            raise ValueError(f"unknown prediction_type {self.prediction_type!r}")
        if not (math.isfinite(self.snr_shift) and self.snr_shift > 0):
            raise ValueError(f"snr_shift must be a positive number, got {self.snr_shift!r}")
        if not 0 <= self.distilled_steps <= self.num_train_timesteps:
            raise ValueError(f"distilled_steps must be in [0, {self.num_train_timesteps}], got {self.distilled_steps}")

    @property
    def downsample(self) -> int:
        """Pixels per attention-grid cell along each side."""
        return self.patch_size * 2
