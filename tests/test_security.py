"""Checkpoint security: safetensors + JSON only (pickles are refused and never opened), every broken
checkpoint fails at load time with a clear ValueError, and checkpoint names from users or env vars
stay inside the allowed root or are well-formed Hub ids."""

from __future__ import annotations

import json
import os
import pickle
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from support import FAST, tiny_pipeline
from vidgen import hub
from vidgen.checkpoint import CONFIG_NAME, PICKLE_SUFFIXES, WEIGHTS_NAME, VideoModel
from vidgen.hub import checkpoint_root, resolve_checkpoint, resolve_user_checkpoint
from vidgen.pipeline import VideoPipeline

PROMPT = "a red circle moving left"
CHEAP = dict(num_frames=1, num_inference_steps=1, height=16, width=16, seed=0)


@pytest.fixture(autouse=True)
def _offline(offline):
    """Every test here runs offline (the `offline` fixture of conftest.py)."""
    return offline


@pytest.fixture(scope="module")
def model():
    return tiny_pipeline().model


@pytest.fixture
def good(model, tmp_path) -> Path:
    return model.save_pretrained(tmp_path / "good")


class Payload:
    """Unpickling this creates `marker`: the proof that a file was unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def load_error(folder) -> str:
    with pytest.raises(ValueError) as info:
        VideoModel.from_pretrained(folder)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 800, msg
    return msg


# ------------------------------------------------------------------------------------- pickles

def test_payload_is_live(tmp_path):
    """Control: the payload really runs code when unpickled, so its absence below means something."""
    marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("name", [f"pytorch_model{s}" for s in PICKLE_SUFFIXES] + ["model.pt", "diffusion.ckpt"])
def test_pickle_weights_are_refused_and_never_opened(tmp_path, model, name, monkeypatch):
    marker = tmp_path / "pwned"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / CONFIG_NAME).write_text(json.dumps({k: v for k, v in FAST.items()} | {"vocabulary": list(FAST["vocabulary"])}))
    (folder / name).write_bytes(pickle.dumps(Payload(marker)))
    opened = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: opened.append("pickle.load"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: opened.append("pickle.loads"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: opened.append("torch.load"))
    msg = load_error(folder)
    assert "refusing to load" in msg and name in msg and "pickle" in msg and WEIGHTS_NAME in msg
    with pytest.raises(ValueError, match="pickle"):
        VideoPipeline.from_pretrained(folder, device="cpu")
    assert not marker.exists() and not opened


def test_pickle_next_to_safetensors_is_ignored(good, tmp_path):
    marker = tmp_path / "pwned"
    for suffix in PICKLE_SUFFIXES:
        (good / f"pytorch_model{suffix}").write_bytes(pickle.dumps(Payload(marker)))
    pipe = VideoPipeline.from_pretrained(good, device="cpu")
    assert pipe(PROMPT, **CHEAP).frames.shape == (1, 16, 16, 3)
    assert not marker.exists()


def test_hub_downloads_only_safetensors_and_json():
    assert all(not f.endswith(PICKLE_SUFFIXES) for f in hub.CHECKPOINT_FILES)
    assert set(hub.CHECKPOINT_FILES) >= {CONFIG_NAME, WEIGHTS_NAME}


def test_hub_snapshot_with_only_pickles_is_refused(offline, tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = offline / "models--org--evil"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha
    snap.mkdir(parents=True)
    (snap / CONFIG_NAME).write_text("{}")
    (snap / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(tmp_path / "pwned")))
    with pytest.raises(ValueError, match="pickle"):
        VideoPipeline.from_pretrained("org/evil", device="cpu")
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------------------ broken weights

def _corrupt(kind: str, data: bytes) -> bytes:
    n = int.from_bytes(data[:8], "little")
    return {
        "random": np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes(),
        "empty": b"",
        "truncated-half": data[: len(data) // 2],
        "truncated-header": data[: 8 + n // 2],
        "huge-header-length": (2**62).to_bytes(8, "little") + data[8:],
        "bad-header-json": data[:8] + b"{" * n + data[8 + n:],
        "text": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n",  # an LFS pointer
    }[kind]


@pytest.mark.parametrize("kind", ["random", "empty", "truncated-half", "truncated-header", "huge-header-length",
                                  "bad-header-json", "text"])
def test_corrupt_or_truncated_safetensors(good, kind):
    path = good / WEIGHTS_NAME
    path.write_bytes(_corrupt(kind, path.read_bytes()))
    msg = load_error(good)
    assert WEIGHTS_NAME in msg and "not a readable safetensors file" in msg


def test_non_finite_weights(good, model):
    from safetensors.torch import save_file

    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = float("nan")
    save_file(state, good / WEIGHTS_NAME)
    msg = load_error(good)
    assert "NaN or infinite" in msg and first in msg


def test_weights_file_is_a_folder(good):
    (good / WEIGHTS_NAME).unlink()
    (good / WEIGHTS_NAME).mkdir()
    assert "has no model.safetensors" in load_error(good)


# ------------------------------------------------------------------------------ broken configs

def _edit_config(folder: Path, edit) -> None:
    cfg = json.loads((folder / CONFIG_NAME).read_text())
    out = edit(cfg)
    (folder / CONFIG_NAME).write_text(out if isinstance(out, str) else json.dumps(out))


@pytest.mark.parametrize("edit, fragments", [
    (lambda c: "{not json", ["invalid config.json"]),
    (lambda c: "", ["invalid config.json"]),
    (lambda c: "[1, 2, 3]", ["invalid config.json", "JSON object", "list"]),
    (lambda c: "null", ["invalid config.json", "JSON object"]),
    (lambda c: "[" * 100_000, ["invalid config.json"]),
    (lambda c: c | {"__class__": "os.system", "evil": 1}, ["unknown config keys", "__class__", "evil"]),
    (lambda c: c | {"width": "32"}, ["'width'", "wrong type"]),
    (lambda c: c | {"depth": 1.5}, ["'depth'", "wrong type"]),
    (lambda c: c | {"image_condition": "yes"}, ["'image_condition'", "wrong type"]),
    (lambda c: c | {"vocabulary": "abc"}, ["'vocabulary'", "wrong type"]),
    (lambda c: c | {"vocabulary": [1, 2]}, ["'vocabulary'", "wrong type"]),
    (lambda c: c | {"depth": 10**9}, ["'depth'", "outside the supported range"]),
    (lambda c: c | {"width": -4}, ["'width'", "outside the supported range"]),
    (lambda c: c | {"heads": 0}, ["'heads'", "outside the supported range"]),
    (lambda c: c | {"width": 20, "heads": 3}, ["not divisible"]),
    (lambda c: c | {"variant": "diagonal"}, ["variant"]),
    (lambda c: c | {"schedule": "sigmoid"}, ["cannot be built", "schedule"]),
    (lambda c: c | {"width": 64}, ["does not match the weights", "wrong shapes"]),
    (lambda c: c | {"depth": 3}, ["does not match the weights", "missing"]),
    (lambda c: c | {"variant": "joint"}, ["does not match the weights"]),
    (lambda c: c | {"vocabulary": c["vocabulary"] + ["purple"]}, ["does not match the weights"]),
])
def test_bad_config_fails_at_load_time(good, edit, fragments):
    _edit_config(good, edit)
    msg = load_error(good)
    for fragment in fragments:
        assert fragment in msg, msg
    with pytest.raises(ValueError):  # through the pipeline too, and nothing half-loaded is cached
        VideoPipeline.from_pretrained(good, device="cpu")


def test_missing_or_unreadable_config(good):
    (good / CONFIG_NAME).unlink()
    assert "has no config.json" in load_error(good)
    (good / CONFIG_NAME).write_bytes(b"\xff\xfe\x00garbage")
    assert "invalid config.json" in load_error(good)


def test_oversized_config_is_refused_before_allocating(good):
    """A config describing a 17-billion-parameter model next to tiny weights: compared on the meta
    device, so the refusal is quick and allocates nothing like the 68 GB the model would take."""
    _edit_config(good, lambda c: c | {"width": 4096, "depth": 40, "heads": 32})
    tracemalloc.start()
    t0 = time.perf_counter()
    msg = load_error(good)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "does not match the weights" in msg
    assert elapsed < 15 and peak < 50e6, (elapsed, peak)


def test_a_failed_load_does_not_break_the_next(good, tmp_path, model):
    bad = model.save_pretrained(tmp_path / "bad")
    (bad / WEIGHTS_NAME).write_bytes(b"garbage")
    with pytest.raises(ValueError):
        VideoPipeline.from_pretrained(bad, device="cpu")
    pipe = VideoPipeline.from_pretrained(good, device="cpu")
    assert pipe(PROMPT, **CHEAP).frames.shape == (1, 16, 16, 3)


# ------------------------------------------------------------------------ names and the root

@pytest.fixture
def tree(tmp_path, model):
    """root/ holds a checkpoint, a nested one and symlinks; outside/ holds another checkpoint."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    model.save_pretrained(root / "ck")
    model.save_pretrained(root / "org" / "model")
    model.save_pretrained(outside / "ck")
    (root / "escape").symlink_to(outside / "ck", target_is_directory=True)
    (root / "inner-link").symlink_to(root / "ck", target_is_directory=True)
    (root / "sneaky").mkdir()
    (root / "sneaky" / CONFIG_NAME).write_text((root / "ck" / CONFIG_NAME).read_text())
    (root / "sneaky" / WEIGHTS_NAME).symlink_to(outside / "ck" / WEIGHTS_NAME)
    (root / "file.txt").write_text("x")
    return root, outside


@pytest.mark.parametrize("name, expected", [
    ("ck", "ck"),
    ("./ck", "ck"),
    ("ck/", "ck"),
    ("org/model", "org/model"),  # a local folder wins over the Hub id of the same name
    ("inner-link", "ck"),  # a symlink that stays inside the root is fine
    ("{root}/ck", "ck"),
])
def test_names_inside_the_root(tree, name, expected):
    root, _ = tree
    folder = resolve_checkpoint(name.format(root=root), allowed_root=root)
    assert folder.resolve() == (root / expected).resolve()
    assert VideoPipeline.from_pretrained(name.format(root=root), device="cpu", allowed_root=root).source


@pytest.mark.parametrize("name, fragment", [
    ("../outside/ck", "contains '..'"),
    ("ck/../../outside/ck", "contains '..'"),
    ("..", "contains '..'"),
    ("{outside}/ck", "outside the allowed root"),
    ("{root}/../outside/ck", "contains '..'"),
    ("escape", "outside the allowed root"),
    ("sneaky", "links outside the allowed root"),
    ("/etc", "outside the allowed root"),
    ("/etc/passwd", "is not a folder"),
    ("/no/such/folder", "does not exist"),
    ("~", "outside the allowed root"),
    ("file.txt", "is not a folder"),
    ("", "empty checkpoint name"),
    ("   ", "empty checkpoint name"),
    ("org/\x00model", "malformed"),
    ("org/model\n", "malformed"),
    ("x" * 5000, "malformed"),
    ("a" * 300, "cannot be used as a path"),
    ("org/" + "a" * 300, "cannot be used as a path"),
    ("https://evil.example/org/model", "not found"),
    ("org/model/extra", "not found"),
    ("-org/model", "not found"),
    ("org//absent", "not found"),
    ("org/mo del", "not found"),
    ("org/../model", "contains '..'"),
])
def test_names_escaping_the_root_or_malformed(tree, name, fragment):
    root, outside = tree
    name = name.format(root=root, outside=outside)
    with pytest.raises(ValueError) as info:
        resolve_checkpoint(name, allowed_root=root)
    assert fragment in str(info.value), str(info.value)
    with pytest.raises(ValueError):
        VideoPipeline.from_pretrained(name, device="cpu", allowed_root=root)


@pytest.mark.parametrize("name", [None, 5, b"org/model", ["org/model"]])
def test_names_of_the_wrong_type(tree, name):
    with pytest.raises(ValueError, match="checkpoint"):
        resolve_checkpoint(name, allowed_root=tree[0])


def test_well_formed_hub_id_goes_to_the_hub(tree):
    root, _ = tree
    with pytest.raises(ValueError, match="org/absent.*not in the local cache"):
        resolve_checkpoint("org/absent", allowed_root=root)


def test_without_a_root_any_existing_folder_is_trusted(tree):
    _, outside = tree
    assert resolve_checkpoint(outside / "ck") == outside / "ck"  # the CLI and scripts: a local user


def test_user_checkpoint_uses_the_env_root(tree, monkeypatch):
    root, outside = tree
    monkeypatch.setenv("VIDGEN_CHECKPOINT_ROOT", str(root))
    monkeypatch.delenv("VIDGEN_CHECKPOINT", raising=False)
    assert checkpoint_root() == root
    assert resolve_user_checkpoint("ck").resolve() == (root / "ck").resolve()
    with pytest.raises(ValueError, match="contains '..'"):
        resolve_user_checkpoint("../outside/ck")
    with pytest.raises(ValueError, match="outside the allowed root"):
        resolve_user_checkpoint(str(outside / "ck"))
    # the env var naming the checkpoint is checked the same way
    monkeypatch.setenv("VIDGEN_CHECKPOINT", str(root / "ck"))
    assert resolve_user_checkpoint().resolve() == (root / "ck").resolve()
    monkeypatch.setenv("VIDGEN_CHECKPOINT", str(outside / "ck"))
    with pytest.raises(ValueError, match="outside the allowed root"):
        resolve_user_checkpoint()
    monkeypatch.setenv("VIDGEN_CHECKPOINT", "../outside/ck")
    with pytest.raises(ValueError, match="contains '..'"):
        resolve_user_checkpoint(None)


def test_default_root_is_the_repository_checkpoints_folder(monkeypatch):
    monkeypatch.delenv("VIDGEN_CHECKPOINT_ROOT", raising=False)
    monkeypatch.delenv("VIDGEN_CHECKPOINT", raising=False)
    repo_checkpoints = Path(__file__).resolve().parent.parent / "checkpoints"
    assert checkpoint_root() == repo_checkpoints
    assert Path(hub.default_checkpoint()).resolve().is_relative_to(repo_checkpoints)
    if Path(hub.default_checkpoint()).is_dir():  # once the shipped checkpoint exists
        assert resolve_user_checkpoint() == Path(hub.default_checkpoint())
    else:
        with pytest.raises(ValueError):
            resolve_user_checkpoint()
    with pytest.raises(ValueError, match="outside the allowed root"):
        resolve_user_checkpoint(os.path.expanduser("~"))
