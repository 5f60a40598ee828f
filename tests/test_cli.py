"""`python -m vidgen`: generate end to end through a subprocess, bad input exits, command dispatch.

Subprocesses pay for importing torch, so only the smoke tests and the fast-failing inputs run as
real processes; the other bad inputs go through `cli.main` in this process (same code path).
"""

import os
import subprocess
import sys
import types
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from PIL import Image

from vidgen import cli, video_io, world
from vidgen.checkpoint import VideoModel
from vidgen.config import ModelConfig
from vidgen.hub import DEFAULT_CHECKPOINT
from vidgen.pipeline import VideoPipeline

REPO = Path(__file__).resolve().parent.parent
PROMPT = "a red circle moving left"
TINY = dict(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
            context_length=16, vocabulary=world.VOCABULARY, num_frames=4, sample_size=32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random model saved as a checkpoint folder (zero-initialized layers perturbed)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VideoModel(ModelConfig(**TINY))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def run(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(Path(cwd) / "hub"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "vidgen", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(rc, err, *fragments):
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ----------------------------------------------------------------------------------- subprocesses

def test_generate_writes_mp4_frames_and_maps(tmp_path, checkpoint):
    p = run("generate", PROMPT, "--checkpoint", checkpoint, "--frames", 4, "--steps", 2, "--seed", 7,
            "--out", "out/video.mp4", "--gif", "out/video.gif", "--save-frames", "out/frames.npz",
            "--maps", "out/maps.npz", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    out = tmp_path / "out"
    for name in ("video.mp4", "video.gif", "frames.npz", "maps.npz"):
        assert (out / name).stat().st_size > 0
        assert str(Path("out") / name) in p.stdout
    assert "seed: 7" in p.stdout and "timings:" in p.stdout

    frames, maps, meta = video_io.read_npz(out / "frames.npz")
    assert frames.dtype == np.uint8 and frames.shape == (4, 32, 32, 3)  # the model's own resolution
    assert meta["prompt"] == PROMPT and meta["seed"] == 7 and maps == {}

    same, maps, meta = video_io.read_npz(out / "maps.npz")
    np.testing.assert_array_equal(same, frames)
    words = PROMPT.split()
    assert meta["words"] == words and meta["grid"] == [4, 4] and meta["seed"] == 7
    assert set(maps) == {f"word/{w}" for w in words} | {"temporal"}
    for w in words:
        h = maps[f"word/{w}"]
        assert h.shape == (4, 4, 4) and h.min() >= 0 and h.max() <= 1
    np.testing.assert_allclose(maps["temporal"].sum(-1), 1.0, atol=1e-5)

    video, fps, has_audio = video_io.read_video(out / "video.mp4")
    assert len(video) == 4 and fps == pytest.approx(8) and not has_audio

    # the same seed in this process gives the same video (attention recording was on in the CLI run)
    pipe = VideoPipeline.from_pretrained(checkpoint, device="cpu")
    again = pipe(PROMPT, num_frames=4, num_inference_steps=2, seed=7, record_attention=True).frames
    assert np.abs(again.astype(int) - frames.astype(int)).max() <= 1


def test_fast_failures_exit_2_without_traceback(tmp_path, checkpoint):
    p = run("generate", PROMPT, "--checkpoint", checkpoint, "--image", "missing.png", cwd=tmp_path)
    assert_one_line_error(p.returncode, p.stderr, "missing.png")
    p = run("generate", PROMPT, "--checkpoint", tmp_path / "no-such-checkpoint", cwd=tmp_path)
    assert_one_line_error(p.returncode, p.stderr, "no-such-checkpoint", "not found")
    assert not (tmp_path / "video.mp4").exists()


@pytest.mark.parametrize("args, fragments", [
    (["--image", "noise.png"], ["noise.png", "not a readable image"]),
    (["--audio", "noise.wav"], ["noise.wav", "audio"]),
    (["--steps", "0"], ["num_inference_steps", "[1, 250]"]),
])
def test_bad_input_exits_2_through_subprocess(corrupt_files, checkpoint, args, fragments):
    p = run("generate", PROMPT, "--checkpoint", checkpoint, "--frames", 4, "--steps", 2, *args, cwd=corrupt_files)
    assert_one_line_error(p.returncode, p.stderr, *fragments)
    assert not (corrupt_files / "video.mp4").exists()


def test_world_command(tmp_path):
    p = run("world", "--n", 2, "--out", "x.png", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(": a ") == 2 and "wrote x.png" in p.stdout  # two captions listed
    with Image.open(tmp_path / "x.png") as im:
        assert im.mode == "RGB" and im.height > im.width / 8 > 0


# ------------------------------------------------------------------------------------ in process

@pytest.fixture
def corrupt_files(tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 4)
    (tmp_path / "noise.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return tmp_path


@pytest.mark.parametrize("args, fragments", [
    (["--audio", "{dir}/noise.wav"], ["noise.wav", "audio"]),
    (["--image", "{dir}/noise.png"], ["noise.png", "not a readable image"]),
    (["--audio", "{dir}/missing.wav"], ["audio file not found", "missing.wav"]),
    (["--steps", "0"], ["num_inference_steps", "[1, 250]"]),
    (["--frames", "0"], ["num_frames", "[1, 32]"]),
    (["--frames", "10000"], ["num_frames", "[1, 32]"]),
    (["--guidance", "nan"], ["guidance_scale", "[0.0, 20.0]"]),
    (["--guidance", "-1"], ["guidance_scale"]),
    (["--seed", "-1"], ["seed", "2**63 - 1"]),
    (["--sampler", "euler"], ["unknown sampler", "dpmpp"]),
    (["--height", "36"], ["multiple of 8"]),
    (["--device", "nonsense"], ["--device"]),
])
def test_bad_input_exits_2_with_one_line(capsys, corrupt_files, checkpoint, args, fragments):
    args = [a.format(dir=corrupt_files) for a in args]
    out = corrupt_files / "video.mp4"
    rc = cli.main(["generate", PROMPT, "--checkpoint", str(checkpoint), "--frames", "4", "--steps", "2",
                   "--out", str(out), *args])
    assert_one_line_error(rc, capsys.readouterr().err, *fragments)
    assert not out.exists()


@pytest.mark.parametrize("prompt, fragment", [("", "prompt is empty"), ("xyzzy plugh", "none of the prompt's words")])
def test_bad_prompt_exits_2(capsys, checkpoint, prompt, fragment):
    rc = cli.main(["generate", prompt, "--checkpoint", str(checkpoint), "--steps", "2"])
    assert_one_line_error(rc, capsys.readouterr().err, fragment)


def test_unreachable_hub_checkpoint_exits_2(capsys):
    rc = cli.main(["generate", PROMPT, "--checkpoint", "org/not-cached"])
    assert_one_line_error(rc, capsys.readouterr().err, "org/not-cached", "not in the local cache")


def test_generate_with_image_and_audio_in_process(tmp_path, capsys, checkpoint):
    image = tmp_path / "first.png"
    Image.fromarray(np.full((48, 64, 3), (220, 50, 50), np.uint8)).save(image)
    audio = video_io.write_wav(tmp_path / "beat.wav", world.synthesize_audio(0, num_frames=4), 16000)
    rc = cli.main(["generate", PROMPT, "--checkpoint", str(checkpoint), "--frames", "4", "--steps", "2",
                   "--image", str(image), "--audio", str(audio), "--no-temporal", "--seed", "1",
                   "--out", str(tmp_path / "v.mp4"), "--maps", str(tmp_path / "m.npz")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    _, fps, has_audio = video_io.read_video(tmp_path / "v.mp4")
    assert has_audio
    _, maps, meta = video_io.read_npz(tmp_path / "m.npz")
    assert "temporal" not in maps  # switched off: nothing to record
    assert maps["audio"].shape == (4, 4, 4) and meta["temporal_attention"] is False


def test_overlay_writes_the_default_word_over_the_video(tmp_path, capsys, checkpoint):
    rc = cli.main(["generate", PROMPT, "--checkpoint", str(checkpoint), "--frames", "4", "--steps", "2", "--seed", "3",
                   "--out", str(tmp_path / "v.mp4"), "--overlay", str(tmp_path / "o.mp4")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"wrote overlay of 'red': {tmp_path / 'o.mp4'}" in captured.out  # the colour, not "a"
    overlay, fps, _ = video_io.read_video(tmp_path / "o.mp4")
    plain, _, _ = video_io.read_video(tmp_path / "v.mp4")
    assert overlay.shape == plain.shape == (4, 256, 256, 3) and fps == pytest.approx(8)
    assert np.abs(overlay.astype(int) - plain).mean() > 10  # the heat map is blended in


def test_overlay_word_choice():
    assert cli.overlay_word(PROMPT.split(), None) == "red"
    assert cli.overlay_word("a big square moving up".split(), None) == "square"  # shape when no colour
    assert cli.overlay_word("a big dog moving up".split(), None) == "big"  # else the first content word
    assert cli.overlay_word(["a", "and"], None) == "a"
    assert cli.overlay_word(PROMPT.split(), " LEFT ") == "left"
    with pytest.raises(cli.InputError, match="choose from: a, red, circle, moving, left$"):
        cli.overlay_word(PROMPT.split(), "blue")


@pytest.mark.parametrize("args, fragments", [
    (["--overlay", "{dir}/o.mp4", "--overlay-word", "blue"],
     ["--overlay-word 'blue' is not a word of the prompt", "choose from: a, red, circle, moving, left"]),
    (["--overlay-word", "red"], ["--overlay-word needs --overlay"]),
])
def test_bad_overlay_word_exits_2_before_generating(tmp_path, capsys, checkpoint, monkeypatch, args, fragments):
    def no_denoising(*args, **kwargs):  # a generator, like _run: fails only when a step is asked for
        yield pytest.fail("denoised despite a bad --overlay-word")

    monkeypatch.setattr(VideoPipeline, "_run", no_denoising)
    args = [a.format(dir=tmp_path) for a in args]
    rc = cli.main(["generate", PROMPT, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "v.mp4"), *args])
    assert_one_line_error(rc, capsys.readouterr().err, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_default_checkpoint_is_the_shipped_one(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VIDGEN_CHECKPOINT", raising=False)
    rc = cli.main(["generate", PROMPT, "--frames", "2", "--steps", "1", "--device", "cpu",
                   "--out", str(tmp_path / "v.mp4"), "--save-frames", str(tmp_path / "f.npz")])
    assert rc == 0, capsys.readouterr().err
    frames, _, meta = video_io.read_npz(tmp_path / "f.npz")
    assert meta["checkpoint"] == str(DEFAULT_CHECKPOINT) and DEFAULT_CHECKPOINT.parent.name == "checkpoints"
    assert frames.shape == (2, 64, 64, 3)  # the shipped model's resolution, not the tiny test model's


# -------------------------------------------------------------------------------------- dispatch

def test_usage_and_unknown_command(capsys):
    assert cli.main([]) == 2
    assert cli.main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_subcommands_dispatch_lazily(monkeypatch, capsys):
    seen = {}

    def fake_cli(name):
        def cli_(argv):
            seen[name] = argv
            return 0
        return cli_

    for name in ("train", "distill", "evaluate", "world"):
        fake = types.ModuleType(f"vidgen.{name}")
        fake.cli = fake_cli(name)
        monkeypatch.setitem(sys.modules, f"vidgen.{name}", fake)
    for name in ("train", "distill", "evaluate", "world"):
        assert cli.main([name, "--flag", "x"]) == 0
    assert seen == {name: ["--flag", "x"] for name in ("train", "distill", "evaluate", "world")}


def test_missing_command_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vidgen.distill", None)  # import of it raises ModuleNotFoundError
    assert cli.main(["distill"]) == 2
    assert_one_line_error(2, capsys.readouterr().err, "distill", "not available")
