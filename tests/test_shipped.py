"""The checkpoint shipped in the repository loads and generates: the app's default must work."""

from __future__ import annotations

import json

import numpy as np

from vidgen.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from vidgen.hub import DEFAULT_CHECKPOINT
from vidgen.pipeline import VideoPipeline
from vidgen.world import VOCABULARY


def test_shipped_checkpoint_is_safetensors_json_and_small():
    files = {p.name for p in DEFAULT_CHECKPOINT.iterdir()}
    assert {CONFIG_NAME, WEIGHTS_NAME, "card.md"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")) for name in files)
    size = sum(p.stat().st_size for p in DEFAULT_CHECKPOINT.iterdir() if p.is_file())
    assert size <= 25 * 2**20, f"{size / 2**20:.1f} MB"
    cfg = json.loads((DEFAULT_CHECKPOINT / CONFIG_NAME).read_text())
    assert tuple(cfg["vocabulary"]) == VOCABULARY


def test_shipped_checkpoint_generates_one_video():
    pipe = VideoPipeline.from_pretrained(DEFAULT_CHECKPOINT, device="cpu")
    result = pipe("a red circle moving left", num_frames=4, num_inference_steps=3, seed=0, record_attention=["cross"])
    assert result.frames.shape == (4, pipe.cfg.sample_size, pipe.cfg.sample_size, 3)
    assert result.frames.dtype == np.uint8 and result.frames.std() > 0
    assert result.maps and result.warnings == []
