"""Every bad input of issue 7 as one table: the pipeline answers each with a ValueError (or a
FileNotFoundError for a missing path) whose message is a readable sentence naming the problem, or
succeeds where the input is merely unusual (emoji, 1x1 images, 96 kHz audio, ...). Plus the memory
bounds: an hour of audio and a 10000x10000 image cost no more than a few megabytes.

Runs on the FAST tiny model (16x16, 1 frame, 1 step: ~10 ms a generation)."""

from __future__ import annotations

import math
import re
import time
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from support import bomb_png, sparse_wav, tiny_pipeline, tone, write_pcm_wav
from vidgen import video_io
from vidgen.attention import get_processors
from vidgen.encoders import ImageEncoder, prepare_audio
from vidgen.pipeline import MAX_PROMPT_CHARS

# PIL warns about the 10000x10000 test image while reading its header; load_image refuses it anyway.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

PROMPT = "a red circle moving left"
CHEAP = dict(num_frames=1, num_inference_steps=1, height=16, width=16, seed=0)


# ------------------------------------------------------------------------------------------ media

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(d / "ok.png")
    data = (d / "ok.png").read_bytes()
    (d / "cut.png").write_bytes(data[: len(data) // 2])
    (d / "text.png").write_text("this is not a picture")
    (d / "random.jpg").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d / "empty.png").write_bytes(b"")
    (d / "folder").mkdir()
    rgba = np.dstack([noise, np.full((32, 32), 128, np.uint8)])
    Image.fromarray(rgba).save(d / "rgba.png")
    Image.fromarray(noise[..., 0]).save(d / "gray.png")
    Image.fromarray(noise[..., 0]).convert("LA").save(d / "la.png")
    Image.fromarray((noise[..., 0].astype(np.uint16) * 257)).save(d / "i16.png")
    assert Image.open(d / "i16.png").mode == "I;16"
    Image.fromarray(noise).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette.png")
    Image.fromarray(noise).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette_t.png", transparency=0)
    Image.fromarray(noise).convert("1").save(d / "bilevel.png")
    Image.fromarray(noise).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(noise[:1, :1]).save(d / "tiny.png")
    frames = [Image.fromarray(noise), Image.fromarray(255 - noise)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])
    (d / "bomb.png").write_bytes(bomb_png(10_000, 10_000))
    Image.fromarray(noise).save(d / "drawing.eps")  # would be handed to Ghostscript on load
    Image.fromarray(noise).save(d / "texture.tga")
    Image.fromarray(noise).save(d / "photo.jpg")
    (d / "photo.png").write_bytes((d / "photo.jpg").read_bytes())  # a JPEG named .png
    # audio
    video_io.write_wav(d / "8k.wav", tone(1, 8000), 8000)
    video_io.write_wav(d / "44k_stereo.wav", tone(1, 44100, 2), 44100)
    video_io.write_wav(d / "96k.wav", tone(1, 96000), 96000)
    video_io.write_wav(d / "short.wav", tone(0.05, 16000), 16000)
    write_pcm_wav(d / "int32.wav", (tone(1, 16000) * 2**31).astype(np.int32), 16000)
    write_pcm_wav(d / "uint8.wav", (tone(1, 16000) * 127 + 128).astype(np.uint8), 16000)
    video_io.write_wav(d / "silent.wav", np.zeros(16000, np.float32), 16000)
    video_io.write_wav(d / "clipping.wav", np.clip(tone(1, 16000, amp=5.0), -1, 1), 16000)
    (d / "text.wav").write_text("hello, this is not audio")
    (d / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    return d


@pytest.fixture(scope="module")
def pipe():
    # One intra-op thread: these tensors are tiny, and on a busy machine a second thread only spins.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_pipeline()
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------ the checks

def assert_readable(exc: BaseException, *fragments: str) -> str:
    """One human sentence: no traceback, no errno prefix, no memory address, not too long, and it
    names the problem (each fragment, case-insensitive)."""
    msg = str(exc)
    assert 15 <= len(msg) <= 600, msg
    assert "\n" not in msg and "Traceback" not in msg and not msg.startswith("[Errno"), msg
    assert not re.search(r"0x[0-9a-f]{6,}", msg), msg
    for fragment in fragments:
        assert fragment.lower() in msg.lower(), f"{fragment!r} not in {msg!r}"
    return msg


# The table. Each row: id, keyword arguments of pipe(...) (callables get the media folder), and the
# expectation: "ok", or (exception type, fragments the message must contain).
V, F = ValueError, FileNotFoundError
KNOB_ERR = {
    "num_inference_steps": (V, ["num_inference_steps", "[1, 250]"]),
    "num_frames": (V, ["num_frames", "[1, 8]"]),
    "height": (V, ["height", "[16, 64]"]),
    "guidance_scale": (V, ["guidance_scale", "[0.0, 20.0]"]),
    "seed": (V, ["seed", "[0, 2**63 - 1]"]),
    "temporal_gate": (V, ["temporal_gate", "[-10.0, 10.0]"]),
}
ROWS = [
    # ---- prompt
    ("prompt-empty", dict(prompt=""), (V, ["prompt is empty"])),
    ("prompt-whitespace", dict(prompt=" \n\t \u3000 "), (V, ["prompt is empty"])),
    ("prompt-none", dict(prompt=None), (V, ["prompt is empty"])),
    ("prompt-only-control", dict(prompt="\x00\x07\x1b\u200b\ufeff"), (V, ["prompt is empty"])),
    ("prompt-int", dict(prompt=123), (V, ["prompt must be text", "123"])),
    ("prompt-bytes", dict(prompt=b"a red circle"), (V, ["prompt must be text"])),
    ("prompt-longer-than-context", dict(prompt=" ".join([PROMPT] * 12)), "truncated"),
    ("prompt-megabyte", dict(prompt="a red circle " * 100_000), (V, ["prompt", f"{MAX_PROMPT_CHARS:,}"])),
    ("prompt-emoji-mixed", dict(prompt="a red circle 🔴 moving left 😀"), "ok"),
    ("prompt-other-scripts-mixed", dict(prompt="a red circle 赤い円 красный κύκλος moving left"), "ok"),
    ("prompt-control-chars", dict(prompt="a red\x00 circle\x07\x1b moving\u200b\r\nleft\ud800"), "ok"),
    ("prompt-emoji-only", dict(prompt="😀🔥🎥"), (V, ["none of the prompt's words", "it knows", "circle"])),
    ("prompt-cjk-only", dict(prompt="赤い円が左に動く"), (V, ["none of the prompt's words", "it knows"])),
    ("prompt-cyrillic-only", dict(prompt="красный круг"), (V, ["none of the prompt's words", "it knows"])),
    ("prompt-unknown-words", dict(prompt="xyzzy plugh frobnicate"),
     (V, ["none of the prompt's words", "xyzzy", "plugh", "it knows", "circle", "triangle"])),
    ("prompt-some-unknown", dict(prompt="a red xyzzy circle"), "unknown-warning"),
    ("negative-prompt-int", dict(negative_prompt=3), (V, ["negative prompt must be text"])),
    ("negative-prompt-unknown-words", dict(negative_prompt="blurry xyzzy"), "ok"),
    # ---- image
    ("image-text-file", dict(image=lambda m: m / "text.png"), (V, ["text.png", "not a readable image"])),
    ("image-truncated", dict(image=lambda m: str(m / "cut.png")), (V, ["cut.png", "not a readable image"])),
    ("image-random-bytes-file", dict(image=lambda m: m / "random.jpg"), (V, ["not a readable image"])),
    ("image-empty-file", dict(image=lambda m: m / "empty.png"), (V, ["not a readable image"])),
    ("image-random-bytes", dict(image=b"\x89PNG garbage"), (V, ["uploaded data", "not a readable image"])),
    ("image-missing-path", dict(image=lambda m: m / "nope.png"), (F, ["nope.png", "does not exist"])),
    ("image-folder", dict(image=lambda m: m / "folder"), (V, ["not a file"])),
    ("image-huge-10000x10000", dict(image=lambda m: m / "bomb.png"), (V, ["10000x10000", "too large", "megapixels"])),
    ("image-huge-array", dict(image=np.broadcast_to(np.uint8(0), (7000, 7000, 3))), (V, ["7000x7000", "megapixels"])),
    ("image-empty-array", dict(image=np.zeros((0, 0, 3), np.uint8)), (V, ["image is empty"])),
    ("image-1d-array", dict(image=np.zeros(5, np.uint8)), (V, ["not an image", "(5,)"])),
    ("image-5-channels", dict(image=np.zeros((4, 4, 5), np.uint8)), (V, ["not an image"])),
    ("image-object-array", dict(image=np.array([[None, 1]])), (V, ["image array must hold numbers", "object"])),
    ("image-complex-array", dict(image=np.zeros((4, 4), np.complex64)), (V, ["image array must hold numbers"])),
    ("image-int", dict(image=5), (V, ["image must be a file path", "int"])),
    ("image-list", dict(image=[[0, 1], [2, 3]]), (V, ["image must be a file path", "list"])),
    ("image-tensor", dict(image=torch.zeros(4, 4, 3)), (V, ["image must be a file path", "Tensor"])),
    ("image-empty-pil", dict(image=Image.new("RGB", (0, 0))), (V, ["image is empty"])),
    ("image-eps-refused", dict(image=lambda m: m / "drawing.eps"), (V, ["drawing.eps", "not a readable image", "PNG"])),
    ("image-rare-format-refused", dict(image=lambda m: m / "texture.tga"), (V, ["not a readable image", "JPEG"])),
    ("image-wrong-extension", dict(image=lambda m: m / "photo.png"), "ok"),
    ("image-1x1-file", dict(image=lambda m: m / "tiny.png"), "ok"),
    ("image-1x1-array", dict(image=np.full((1, 1, 3), 200, np.uint8)), "ok"),
    ("image-1xN-strip", dict(image=np.zeros((1, 2000, 3), np.uint8)), "ok"),
    ("image-png-bytes", dict(image=lambda m: (m / "ok.png").read_bytes()), "ok"),
    ("image-rgba", dict(image=lambda m: m / "rgba.png"), "ok"),
    ("image-grayscale", dict(image=lambda m: m / "gray.png"), "ok"),
    ("image-gray-alpha", dict(image=lambda m: m / "la.png"), "ok"),
    ("image-16-bit", dict(image=lambda m: m / "i16.png"), "ok"),
    ("image-palette", dict(image=lambda m: m / "palette.png"), "ok"),
    ("image-palette-transparency", dict(image=lambda m: m / "palette_t.png"), "ok"),
    ("image-1-bit", dict(image=lambda m: m / "bilevel.png"), "ok"),
    ("image-cmyk-jpeg", dict(image=lambda m: m / "cmyk.jpg"), "ok"),
    ("image-animated-gif", dict(image=lambda m: m / "anim.gif"), "ok"),
    ("image-float-array-nan-inf", dict(image=np.array([[np.nan, np.inf], [-np.inf, 0.5]], np.float32)), "ok"),
    ("image-uint16-array", dict(image=np.full((4, 4, 3), 65535, np.uint16)), "ok"),
    ("image-bool-array", dict(image=np.eye(4, dtype=bool)), "ok"),
    ("image-pil-modes", dict(image=Image.new("I;16", (3, 5), 40000)), "ok"),
    ("image-pil-float", dict(image=Image.new("F", (3, 5), float("nan"))), "ok"),
    # ---- audio
    ("audio-text-file", dict(audio=lambda m: m / "text.wav"), (V, ["text.wav", "not a readable audio file"])),
    ("audio-corrupt-file", dict(audio=lambda m: str(m / "corrupt.wav")), (V, ["corrupt.wav", "audio"])),
    ("audio-image-file", dict(audio=lambda m: m / "ok.png"), (V, ["ok.png", "no audio stream"])),
    ("audio-missing-path", dict(audio=lambda m: m / "nope.wav"), (F, ["nope.wav", "does not exist"])),
    ("audio-folder", dict(audio=lambda m: m / "folder"), (V, ["not a file"])),
    ("audio-bytes", dict(audio=b"RIFF...."), (V, ["audio must be a file path or a (sample_rate, samples) tuple"])),
    ("audio-int", dict(audio=16000), (V, ["audio must be a file path"])),
    ("audio-list", dict(audio=[16000, np.zeros(100)]), (V, ["audio must be a file path", "list"])),
    ("audio-tuple-3", dict(audio=(16000, np.zeros(10), 1)), (V, ["(sample_rate, samples)", "3 items"])),
    ("audio-rate-zero", dict(audio=(0, np.zeros(100))), (V, ["sample rate", "[1000, 768000]", "got 0"])),
    ("audio-rate-negative", dict(audio=(-16000, np.zeros(100))), (V, ["sample rate"])),
    ("audio-rate-none", dict(audio=(None, np.zeros(100))), (V, ["sample rate", "None"])),
    ("audio-rate-string", dict(audio=("16000", np.zeros(100))), (V, ["sample rate"])),
    ("audio-rate-nan", dict(audio=(math.nan, np.zeros(100))), (V, ["sample rate", "nan"])),
    ("audio-rate-fraction", dict(audio=(16000.5, np.zeros(100))), (V, ["sample rate"])),
    ("audio-rate-absurd", dict(audio=(10**12, np.zeros(100))), (V, ["sample rate"])),
    ("audio-samples-object", dict(audio=(16000, np.array([None, "x"]))), (V, ["audio samples must be numbers"])),
    ("audio-samples-strings", dict(audio=(16000, "abc")), (V, ["audio samples must be numbers"])),
    ("audio-samples-complex", dict(audio=(16000, np.zeros(10, np.complex64))), (V, ["audio samples must be numbers"])),
    ("audio-samples-ragged", dict(audio=(16000, [[1, 2], [3]])), (V, ["audio samples"])),
    ("audio-samples-3d", dict(audio=(16000, np.zeros((10, 10, 10)))), (V, ["audio must be (N,) or (N, channels)"])),
    ("audio-samples-scalar", dict(audio=(16000, 0.5)), (V, ["audio must be (N,)"])),
    ("audio-samples-empty", dict(audio=(16000, np.zeros(0, np.int16))), (V, ["audio is empty"])),
    ("audio-silent", dict(audio=(16000, np.zeros(16000, np.float32))), "audio-ok"),
    ("audio-clipping", dict(audio=(16000, tone(1, 16000, amp=50.0))), "audio-ok"),
    ("audio-nan-inf", dict(audio=(16000, np.array([np.nan, np.inf, -np.inf, 0.5] * 4000, np.float32))), "audio-ok"),
    ("audio-mono-int16", dict(audio=(16000, (tone(1, 16000) * 32767).astype(np.int16))), "audio-ok"),
    ("audio-stereo-int16", dict(audio=(16000, (tone(1, 16000, 2) * 32767).astype(np.int16))), "audio-ok"),
    ("audio-stereo-channels-first", dict(audio=(16000, (tone(1, 16000, 2).T * 32767).astype(np.int16))), "audio-ok"),
    ("audio-int32", dict(audio=(16000, (tone(1, 16000) * 2**31).astype(np.int32))), "audio-ok"),
    ("audio-uint8", dict(audio=(8000, (tone(1, 8000) * 127 + 128).astype(np.uint8))), "audio-ok"),
    ("audio-float64", dict(audio=(16000, tone(1, 16000).astype(np.float64))), "audio-ok"),
    ("audio-float16", dict(audio=(16000, tone(1, 16000).astype(np.float16))), "audio-ok"),
    ("audio-8k", dict(audio=(8000, tone(1, 8000))), "audio-ok"),
    ("audio-44k-stereo", dict(audio=(44100, tone(1, 44100, 2))), "audio-ok"),
    ("audio-96k", dict(audio=(96000, tone(1, 96000))), "audio-ok"),
    ("audio-rate-numpy-int", dict(audio=(np.int64(22050), tone(1, 22050))), "audio-ok"),
    ("audio-0.05s", dict(audio=(16000, tone(0.05, 16000))), "audio-ok"),
    ("audio-one-sample", dict(audio=(16000, np.ones(1, np.float32))), "audio-ok"),
    ("audio-hour-array", dict(audio=(8000, np.zeros(8000 * 3600, np.int16))), "audio-ok"),
    ("audio-file-8k", dict(audio=lambda m: m / "8k.wav"), "audio-ok"),
    ("audio-file-44k-stereo", dict(audio=lambda m: m / "44k_stereo.wav"), "audio-ok"),
    ("audio-file-96k", dict(audio=lambda m: str(m / "96k.wav")), "audio-ok"),
    ("audio-file-int32", dict(audio=lambda m: m / "int32.wav"), "audio-ok"),
    ("audio-file-uint8", dict(audio=lambda m: m / "uint8.wav"), "audio-ok"),
    ("audio-file-0.05s", dict(audio=lambda m: m / "short.wav"), "audio-ok"),
    ("audio-file-silent", dict(audio=lambda m: m / "silent.wav"), "audio-ok"),
    ("audio-file-clipping", dict(audio=lambda m: m / "clipping.wav"), "audio-ok"),
    # ---- knobs
    ("steps-0", dict(num_inference_steps=0), KNOB_ERR["num_inference_steps"]),
    ("steps-1e6", dict(num_inference_steps=10**6), KNOB_ERR["num_inference_steps"]),
    ("steps-negative", dict(num_inference_steps=-3), KNOB_ERR["num_inference_steps"]),
    ("steps-string", dict(num_inference_steps="2"), KNOB_ERR["num_inference_steps"]),
    ("steps-none", dict(num_inference_steps=None), KNOB_ERR["num_inference_steps"]),
    ("steps-float", dict(num_inference_steps=2.0), KNOB_ERR["num_inference_steps"]),
    ("steps-bool", dict(num_inference_steps=True), KNOB_ERR["num_inference_steps"]),
    ("steps-numpy-int", dict(num_inference_steps=np.int32(1)), "ok"),
    ("frames-0", dict(num_frames=0), KNOB_ERR["num_frames"]),
    ("frames-1e4", dict(num_frames=10**4), KNOB_ERR["num_frames"]),
    ("frames-1e4-float", dict(num_frames=1e4), KNOB_ERR["num_frames"]),
    ("frames-string", dict(num_frames="2"), KNOB_ERR["num_frames"]),
    ("frames-bool", dict(num_frames=True), KNOB_ERR["num_frames"]),
    ("frames-none-is-default", dict(num_frames=None), "ok"),
    ("height-too-small", dict(height=8), KNOB_ERR["height"]),
    ("height-not-multiple", dict(height=18), (V, ["height must be a multiple of 4"])),
    ("height-float", dict(height=16.0), KNOB_ERR["height"]),
    ("guidance-negative", dict(guidance_scale=-1.0), KNOB_ERR["guidance_scale"]),
    ("guidance-nan", dict(guidance_scale=math.nan), KNOB_ERR["guidance_scale"]),
    ("guidance-inf", dict(guidance_scale=math.inf), KNOB_ERR["guidance_scale"]),
    ("guidance-huge", dict(guidance_scale=1e9), KNOB_ERR["guidance_scale"]),
    ("guidance-huge-int", dict(guidance_scale=10**400), (V, ["guidance_scale", "digits"])),
    ("guidance-string", dict(guidance_scale="3"), KNOB_ERR["guidance_scale"]),
    ("guidance-none", dict(guidance_scale=None), KNOB_ERR["guidance_scale"]),
    ("guidance-bool", dict(guidance_scale=True), KNOB_ERR["guidance_scale"]),
    ("guidance-int", dict(guidance_scale=3), "ok"),
    ("guidance-numpy-float", dict(guidance_scale=np.float32(2.5)), "ok"),
    ("seed-negative", dict(seed=-1), KNOB_ERR["seed"]),
    ("seed-2**63", dict(seed=2**63), KNOB_ERR["seed"]),
    ("seed-2**64", dict(seed=2**64), KNOB_ERR["seed"]),
    ("seed-numpy-uint64-max", dict(seed=np.uint64(2**64 - 1)), KNOB_ERR["seed"]),
    ("seed-float", dict(seed=1.5), KNOB_ERR["seed"]),
    ("seed-string", dict(seed="7"), KNOB_ERR["seed"]),
    ("seed-bool", dict(seed=True), KNOB_ERR["seed"]),
    ("seed-max", dict(seed=2**63 - 1), "ok"),
    ("seed-none-is-random", dict(seed=None), "ok"),
    ("sampler-unknown", dict(sampler="euler"), (V, ["unknown sampler", "euler", "ddim", "ddpm", "dpmpp"])),
    ("sampler-wrong-case", dict(sampler="DDIM"), (V, ["unknown sampler", "ddim"])),
    ("sampler-empty", dict(sampler=""), (V, ["unknown sampler"])),
    ("sampler-none", dict(sampler=None), (V, ["sampler", "None"])),
    ("sampler-list", dict(sampler=["ddim"]), (V, ["sampler", "list"])),
    ("temporal-gate-nan", dict(temporal_gate=math.nan), KNOB_ERR["temporal_gate"]),
    ("temporal-gate-huge", dict(temporal_gate=1e30), KNOB_ERR["temporal_gate"]),
    ("temporal-gate-string", dict(temporal_gate="0.5"), KNOB_ERR["temporal_gate"]),
    ("temporal-gate-bool", dict(temporal_gate=True), KNOB_ERR["temporal_gate"]),
    ("temporal-attention-string", dict(temporal_attention="no"), (V, ["temporal_attention", "True or False"])),
    ("temporal-attention-none", dict(temporal_attention=None), (V, ["temporal_attention", "True or False"])),
    ("record-attention-int", dict(record_attention=5), (V, ["record_attention"])),
    ("record-attention-unknown-kind", dict(record_attention=["cross", "bogus"]), (V, ["record_attention", "bogus"])),
    ("record-attention-one-kind", dict(record_attention="cross"), "ok"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_validation_table(pipe, media, row):
    _, spec, expect = row
    kwargs = {k: (v(media) if callable(v) else v) for k, v in spec.items()}
    kwargs = {**CHEAP, **kwargs}
    prompt = kwargs.pop("prompt", PROMPT)
    before = get_processors(pipe.model.denoiser)
    if isinstance(expect, tuple):
        exc_type, fragments = expect
        with pytest.raises((ValueError, FileNotFoundError)) as info:
            pipe.stream(prompt, **kwargs)  # validation is eager: raises on the call, before any step
        assert type(info.value) is exc_type, repr(info.value)
        assert_readable(info.value, *fragments)
    else:
        result = pipe(prompt, **kwargs)
        assert result.frames.dtype == np.uint8 and result.frames.shape[1:] == (16, 16, 3)
        assert np.isfinite(result.video.numpy()).all()
        if expect == "truncated":
            assert any("truncated to 14 tokens" in w for w in result.warnings), result.warnings
        if expect == "unknown-warning":
            assert any("never saw" in w and "xyzzy" in w for w in result.warnings), result.warnings
        if expect == "audio-ok":  # mono float32 at the model's rate, exactly the video's length, clean
            n = round(kwargs["num_frames"] / pipe.cfg.fps * pipe.cfg.audio_sample_rate)
            assert result.audio.dtype == np.float32 and result.audio.shape == (n,)
            assert np.isfinite(result.audio).all() and np.abs(result.audio).max() <= 1.0
        if "control" in row[0]:
            assert result.settings.prompt == "a red circle moving left"
    assert all(get_processors(pipe.model.denoiser)[n] is p for n, p in before.items())


def test_table_covers_the_issue():
    """Every category of the issue has refused and accepted rows."""
    ids = [r[0] for r in ROWS]
    for prefix in ("prompt", "image", "audio", "steps", "frames", "guidance", "seed", "sampler"):
        assert any(i.startswith(prefix) for i in ids), prefix
    assert len(ROWS) >= 120


# ------------------------------------------------------------------------------- library level

@pytest.mark.parametrize("call, fragments", [
    (lambda: prepare_audio(np.zeros(10, object), 16000, num_frames=1, fps=8, target_sr=16000), ["numbers"]),
    (lambda: prepare_audio(np.zeros(10), 0, num_frames=1, fps=8, target_sr=16000), ["sample rate"]),
    (lambda: prepare_audio(np.zeros(10), None, num_frames=1, fps=8, target_sr=16000), ["sample rate"]),
    (lambda: prepare_audio([[1, 2], [3]], 16000, num_frames=1, fps=8, target_sr=16000), ["audio samples"]),
    (lambda: prepare_audio(np.zeros(0), 16000, num_frames=1, fps=8, target_sr=16000), ["empty"]),
    (lambda: ImageEncoder(16, 16)(np.zeros((0, 4, 3), np.uint8)), ["empty"]),
    (lambda: ImageEncoder(16, 16)(np.zeros((4, 4), object)), ["image array"]),
    (lambda: ImageEncoder(16, 16)(Image.new("RGB", (0, 3))), ["empty"]),
    (lambda: ImageEncoder(16, 16)("not an image"), ["unsupported image type"]),
])
def test_encoders_refuse_bad_input_with_value_error(call, fragments):
    with pytest.raises(ValueError) as info:
        call()
    assert_readable(info.value, *fragments)


def test_encoders_accept_odd_but_valid_input():
    wave = prepare_audio(np.full(100, 128, np.uint8), 8000, num_frames=1, fps=8, target_sr=16000)
    assert wave.shape == (2000,) and float(wave.abs().max()) == 0.0  # unsigned mid-scale is silence
    wave = prepare_audio(np.array([np.nan, 9.0]), 16000, num_frames=1, fps=8, target_sr=16000)
    assert torch.isfinite(wave).all() and float(wave.abs().max()) <= 1.0
    out = ImageEncoder(16, 16)(np.array([[np.nan, np.inf]], np.float32))
    assert out.shape == (3, 16, 16) and torch.isfinite(out).all()


# --------------------------------------------------------------------------------- memory bounds

def test_hour_long_audio_file_reads_only_the_video_length(pipe, tmp_path):
    """An hour of 8 kHz 16-bit audio (57.6 MB announced, a sparse file on disk): ffmpeg is told to
    stop at the video's length, so loading is fast and Python holds only those samples."""
    sr, head = 8000, (tone(2, 8000) * 32767).astype(np.int16)
    path = sparse_wav(tmp_path / "hour.wav", 3600, sr, head)
    assert (tmp_path / "hour.wav").stat().st_size == 44 + 2 * 3600 * sr
    tracemalloc.start()
    t0 = time.perf_counter()
    samples, got_sr = video_io.load_audio(path, max_seconds=1.0)
    result = pipe(PROMPT, **CHEAP, audio=path)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got_sr == sr and abs(len(samples) - sr) <= sr // 100  # one second, not an hour
    np.testing.assert_allclose(samples[:100], head[:100] / 32768, atol=1e-3)
    assert result.audio.shape == (round(1 / pipe.cfg.fps * pipe.cfg.audio_sample_rate),)
    assert elapsed < 5, elapsed
    assert peak < 8e6, peak  # bytes; the whole file as float32 would be 115 MB


def test_hour_long_audio_array_is_sliced_before_any_copy(pipe):
    long = np.zeros(44100 * 3600, np.int16)  # what gr.Audio hands over for an hour at 44.1 kHz (318 MB)
    long[:441] = 1000
    tracemalloc.start()
    t0 = time.perf_counter()
    result = pipe(PROMPT, **CHEAP, audio=(44100, long))
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.audio is not None and np.abs(result.audio).max() > 0
    assert elapsed < 5 and peak < 8e6, (elapsed, peak)  # converting it all to float32 would take 635 MB


def test_huge_image_is_refused_from_its_header(media, monkeypatch):
    """A valid 10000x10000 PNG (a few kB) is refused before any pixel is decoded."""
    decoded = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or original(self))
    assert (media / "bomb.png").stat().st_size < 200_000
    tracemalloc.start()
    t0 = time.perf_counter()
    for src in (media / "bomb.png", (media / "bomb.png").read_bytes()):
        with pytest.raises(ValueError, match="10000x10000 pixels exceeds the limit"):
            video_io.load_image(src)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (10000, 10000) not in decoded
    assert elapsed < 2 and peak < 4e6, (elapsed, peak)
