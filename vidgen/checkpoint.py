"""VideoModel: the denoiser with its condition encoders and noise schedule, saved as a checkpoint.

A checkpoint folder holds `config.json` (a ModelConfig) and `model.safetensors` (all weights).
Nothing is ever unpickled: a folder with only .bin / .pt / .ckpt files is refused, and pickle files
next to a model.safetensors are never opened.

Loading checks everything before a request can see the model, and each problem is a ValueError:
config.json must be a JSON object with known keys of the right types and sane sizes; the model it
describes is first built on the "meta" device (no memory) and its tensor names and shapes compared
with the safetensors header, so a mismatched config never allocates a huge model; the weights must
be readable (not corrupt or truncated) and finite.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ModelConfig, from_dict, to_dict
from .encoders import AudioEncoder, TextEncoder
from .model import VideoDenoiser
from .schedules import NoiseSchedule

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Sanity bounds on a loaded config.json (inclusive): far above any real vidgen model, low enough that
# even building the model on the meta device stays quick.
CONFIG_BOUNDS = {
    "in_channels": (1, 64), "sample_size": (1, 4096), "num_frames": (1, 4096), "max_frames": (1, 4096),
    "fps": (1, 240), "patch_size": (1, 64), "conv_channels": (1, 8192), "width": (4, 16384), "depth": (0, 256),
    "heads": (1, 1024), "mlp_ratio": (0.0, 64.0), "context_length": (2, 4096), "text_width": (1, 16384),
    "text_layers": (0, 256), "text_heads": (1, 1024), "audio_sample_rate": (1000, 768_000), "n_mels": (1, 1024),
    "num_train_timesteps": (1, 1_000_000), "snr_shift": (1e-6, 1e6),
}
MAX_VOCABULARY = 100_000


def check_config_dict(data) -> ModelConfig:
    """A ModelConfig from parsed config.json, or a ValueError naming the first bad field."""
    if not isinstance(data, dict):
        raise ValueError(f"it must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown config keys {unknown[:10]}")
    for key, value in data.items():
        default = fields[key].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:  # the vocabulary: a list of words
            ok = isinstance(value, list) and len(value) <= MAX_VOCABULARY and all(isinstance(w, str) for w in value)
        if not ok:
            raise ValueError(f"{key!r} has the wrong type ({type(value).__name__}: {str(value)[:40]})")
        lo_hi = CONFIG_BOUNDS.get(key)
        if lo_hi and not lo_hi[0] <= value <= lo_hi[1]:
            raise ValueError(f"{key!r} = {value} is outside the supported range {list(lo_hi)}")
    return from_dict(ModelConfig, data)


@dataclasses.dataclass
class Conditioning:
    """What the denoiser attends to: context tokens (B, L, D) (text tokens, then one audio token per
    frame when audio is used), their key mask (B, L), per-frame features (B, F, D) or None, and the
    caption's bag of words (B, text_width) when the model has `word_embedding`, else None."""

    context: torch.Tensor
    context_mask: torch.Tensor
    frame_cond: torch.Tensor | None
    num_text_tokens: int
    words: torch.Tensor | None = None

    def select(self, index: torch.Tensor | slice) -> "Conditioning":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return Conditioning(self.context[index], self.context_mask[index], pick(self.frame_cond),
                            self.num_text_tokens, pick(self.words))


class VideoModel(nn.Module):
    """Denoiser + text encoder + audio encoder + schedule: everything a checkpoint restores."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.denoiser = VideoDenoiser(cfg)
        self.text = TextEncoder(cfg)
        self.audio = AudioEncoder(cfg)
        self.schedule = NoiseSchedule(cfg.schedule, cfg.num_train_timesteps, cfg.snr_shift)

    def encode(
        self,
        token_ids: torch.Tensor,
        num_frames: int,
        audio: torch.Tensor | None = None,
        has_audio: torch.Tensor | None = None,
    ) -> Conditioning:
        """token_ids (B, L); audio (B, S) at cfg.audio_sample_rate or None; has_audio (B,) bool
        masks audio per row (for conditioning dropout and mixed batches)."""
        text, text_mask = self.text(token_ids)
        words = self.text.bag_of_words(token_ids) if self.cfg.word_embedding else None
        if audio is None:
            return Conditioning(text, text_mask, None, text.shape[1], words)
        audio_tokens = self.audio(audio, num_frames)  # (B, F, D)
        if has_audio is None:
            has_audio = torch.ones(audio.shape[0], dtype=torch.bool, device=audio.device)
        audio_tokens = audio_tokens * has_audio[:, None, None].to(audio_tokens.dtype)
        mask = torch.cat([text_mask, has_audio[:, None].expand(-1, num_frames)], dim=1)
        return Conditioning(torch.cat([text, audio_tokens], dim=1), mask, audio_tokens, text.shape[1], words)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: Conditioning,
        image: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The raw model output (cfg.prediction_type) for x_t (B, C, F, H, W) at timesteps t (B,)."""
        return self.denoiser(x_t, t, cond.context, cond.context_mask, cond.frame_cond, image, image_mask, cond.words)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: str | Path, *, dtype: torch.dtype | None = None, metadata: dict | None = None) -> Path:
        """Write config.json + model.safetensors (optionally cast, e.g. to float16 to halve the size)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(to_dict(self.cfg), indent=2, sort_keys=True) + "\n")
        state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous() for k, v in self.state_dict().items()}
        save_file(state, directory / WEIGHTS_NAME, metadata={k: str(v) for k, v in (metadata or {}).items()})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> "VideoModel":
        """Load a local checkpoint folder. Every problem is a ValueError naming the file and the fix."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(f"checkpoint folder {str(directory)!r} does not exist")
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not weights_path.is_file():
            pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
            if pickles:
                raise ValueError(
                    f"refusing to load {pickles} from {str(directory)!r}: pickle-based weights can run code; "
                    f"vidgen only loads {WEIGHTS_NAME} (safetensors)"
                )
            raise ValueError(f"{str(directory)!r} has no {WEIGHTS_NAME}")
        if not config_path.is_file():
            raise ValueError(f"{str(directory)!r} has no {CONFIG_NAME}")
        try:
            cfg = check_config_dict(json.loads(config_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError, RecursionError) as e:
            raise ValueError(f"invalid {CONFIG_NAME} in {str(directory)!r}: {e}") from None
        except OSError as e:
            raise ValueError(f"{CONFIG_NAME} in {str(directory)!r} cannot be read: {e}") from None
        try:  # the expected tensors, at no memory cost: a mismatched config must not allocate a huge model
            with torch.device("meta"):
                expected = {k: tuple(v.shape) for k, v in cls(cfg).state_dict().items()}
        except Exception as e:  # a combination of fields no model can be built from
            raise ValueError(f"{CONFIG_NAME} in {str(directory)!r} describes a model that cannot be built: "
                             f"{type(e).__name__}: {e}") from None
        try:  # reads only the header (names, dtypes, shapes, offsets checked against the file size)
            with safe_open(weights_path, framework="pt", device="cpu") as f:
                found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise ValueError(f"{str(weights_path)!r} is not a readable safetensors file (corrupt or truncated?): {e}") from None
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        if missing or unexpected or wrong:
            raise ValueError(
                f"{CONFIG_NAME} does not match the weights in {str(directory)!r}: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
            )
        try:
            state = load_file(weights_path, device="cpu")
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise ValueError(f"{str(weights_path)!r} is not a readable safetensors file (corrupt or truncated?): {e}") from None
        bad = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
        if bad:
            raise ValueError(f"{str(weights_path)!r} holds NaN or infinite weights (corrupt?): {bad[:5]}")
        model = cls(cfg)
        dtypes = {k: v.dtype for k, v in model.state_dict().items()}
        model.load_state_dict({k: v.to(dtypes[k]) for k, v in state.items()})
        return model.to(device).eval()
