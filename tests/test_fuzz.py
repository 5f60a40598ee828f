"""Property-based fuzz of the generate entry point (`pipe(...)` / `pipe.stream(...)`).

Hypothesis draws prompts (valid, unknown words, emoji, other scripts, control characters, too long,
wrong types), images (arrays of any dtype and shape, bytes, files: valid, corrupt, missing, huge),
audio ((rate, samples) tuples with odd rates, dtypes, shapes, NaN, short and hour-long, plus files)
and every knob in range, out of range and of the wrong type. Each example must end in success or a
ValueError / FileNotFoundError with a one-line message, and the pipeline must keep serving: its
attention processors and gates are the originals after every example, and a normal call works at
the end.

The raw values always go through validation (`pipe.stream(...)` validates eagerly, before its first
step); when they pass, the generation that actually runs has its costly knobs cut down (1 step, at
most 2 frames, the smallest size), so 200 examples take seconds on the FAST tiny model.
"""

from __future__ import annotations

import collections
import math
import os
import re
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from support import bomb_png, sparse_wav, tiny_pipeline, tone
from vidgen import video_io
from vidgen.attention import get_processors
from vidgen.pipeline import MAX_PROMPT_CHARS

PROMPT = "a red circle moving left"
EXAMPLES = int(os.environ.get("VIDGEN_FUZZ_EXAMPLES", 200))  # raise it for a longer hunt
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@pytest.fixture(scope="module")
def pipe():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second intra-op thread only spins on a busy machine
    yield tiny_pipeline()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz-media")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 40, 4), dtype=np.uint8)).save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)).save(d / "i16.png")
    data = (d / "rgba.png").read_bytes()
    (d / "cut.png").write_bytes(data[: len(data) // 3])
    (d / "text.png").write_text("not an image")
    (d / "bomb.png").write_bytes(bomb_png(10_000, 10_000))
    video_io.write_wav(d / "8k.wav", tone(0.5, 8000), 8000)
    video_io.write_wav(d / "44k.wav", tone(0.5, 44100, 2), 44100)
    sparse_wav(d / "hour.wav", 3600, 8000, (tone(1, 8000) * 20000).astype(np.int16))
    (d / "text.wav").write_text("not audio")
    return d


# ------------------------------------------------------------------------------------ strategies

def weighted(*pairs):
    """One of several strategies, picked with the given integer weights."""
    return st.sampled_from([s for w, s in pairs for _ in range(w)]).flatmap(lambda s: s)


VOCAB = ("a", "red", "blue", "circle", "square", "moving", "left", "up", "slowly", "big")
prompts = weighted(
    (6, st.lists(st.sampled_from(VOCAB), min_size=1, max_size=40).map(" ".join)),  # valid, sometimes > context
    (1, st.tuples(st.lists(st.sampled_from(VOCAB), max_size=4), st.text(max_size=12))
        .map(lambda t: " ".join(t[0]) + " " + t[1])),  # known words + any unicode (emoji, scripts, controls)
    (1, st.text(max_size=20)),  # mostly unknown words or none at all
    (1, st.sampled_from(["", "   \n\t", "\x00\x1b[31m\x07", "😀🔥", "赤い円", "xyzzy plugh", "a" * (MAX_PROMPT_CHARS + 1),
                         "a red\u202e circle\ud800"])),
    (1, st.sampled_from([None, 5, 1.5, b"a red circle", ["a", "red"]])),
)
array_dtypes = st.sampled_from([np.uint8, np.uint16, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_])
image_arrays = st.one_of(
    hnp.arrays(array_dtypes, st.tuples(st.integers(0, 6), st.integers(0, 6)) | st.tuples(
        st.integers(0, 6), st.integers(0, 6), st.sampled_from([1, 2, 3, 4, 5]))),
    hnp.arrays(np.complex64, (2, 2)),
    hnp.arrays(object, (2, 2), elements=st.none() | st.text(max_size=2) | st.integers()),
    hnp.arrays(np.dtype("U3"), (2, 2)),
    st.sampled_from([np.zeros(5, np.uint8), np.zeros((2, 2, 2, 3), np.uint8), np.array(3)]),
    st.just(np.broadcast_to(np.uint8(9), (7000, 7000))),  # huge without the memory
)
images = weighted(
    (6, st.none()),
    (3, image_arrays),
    (1, st.sampled_from(["rgba.png", "i16.png", "cut.png", "text.png", "bomb.png", "missing.png", "."])
        .map(lambda n: ("file", n))),
    (1, st.binary(max_size=64)),  # not an image
    (1, st.just(("bytes", "rgba.png"))),  # a real PNG as bytes
    (1, st.sampled_from([5, "", [[0, 1]], Image.new("RGB", (0, 0)), Image.new("P", (3, 1)), Image.new("I;16", (2, 9))])),
)


def _samples(kind: str, n: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.5, (n, channels) if channels else n)
    if kind == "loud":
        return (x * 100).astype(np.float32)
    if kind == "nan":
        x[:: 3] = np.nan
        return x.astype(np.float32)
    if kind in ("int16", "int32", "uint8"):
        info = np.iinfo(kind)
        return np.clip(x * info.max, info.min, info.max).astype(kind)
    if kind == "object":
        return x.astype(object)
    return x.astype(kind)  # float32, float64


audio_tuples = st.builds(
    lambda sr, kind, n, channels, chfirst, seed: (sr, _samples(kind, n, channels, seed).T if chfirst and channels
                                                  else _samples(kind, n, channels, seed)),
    sr=weighted((4, st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000, 1000, 768_000, 44100.0])),
                (1, st.sampled_from([0, -1, 1, 999, 10**9, 16000.5, math.nan, None, "16000", True]))),
    kind=weighted((6, st.sampled_from(["float32", "float64", "int16", "int32", "uint8", "loud", "nan"])),
                  (1, st.just("object"))),
    n=st.sampled_from([0, 1, 400, 800, 4000, 12000]),  # 0.05 s at 8 kHz ... 1.5 s
    channels=st.sampled_from([0, 0, 1, 2, 3]),
    chfirst=st.booleans(),
    seed=st.integers(0, 3),
)
audios = weighted(
    (6, st.none()),
    (4, audio_tuples),
    (1, st.just("hour-array")),  # an hour at 44.1 kHz, int16
    (1, st.sampled_from(["8k.wav", "44k.wav", "hour.wav", "text.wav", "rgba.png", "missing.wav"])
        .map(lambda n: ("file", n))),
    (1, st.sampled_from([(16000,), (16000, np.zeros(4), 2), b"RIFF", 5, [16000, [0.0]], ("x", "y")])),
)


def knob(valid, invalid):
    """Mostly valid values (so that many examples reach a generation), sometimes an invalid one."""
    return weighted((7, valid), (1, st.sampled_from(invalid)))


WRONG = [None, "1", 1.5, True, [1], float("nan")]
knobs = st.fixed_dictionaries({}, optional={
    "num_inference_steps": knob(st.integers(1, 3) | st.just(250), [0, -1, 251, 10**6, 10**30, *WRONG]),
    "num_frames": knob(st.integers(1, 8), [0, 9, 10**4, 1e4, *WRONG]),
    "height": knob(st.sampled_from([16, 32, 64]), [0, 8, 17, 68, 10**5, *WRONG]),
    "width": knob(st.sampled_from([16, 20, 64]), [12, 66, -16, *WRONG]),
    "guidance_scale": knob(st.floats(0, 20) | st.integers(0, 20), [-0.01, 20.5, math.inf, -math.inf, math.nan,
                                                                   10**400, "3", None, True]),
    "seed": knob(st.integers(0, 2**63 - 1) | st.none(), [-1, 2**63, 2**64, 1.5, "7", True, np.uint64(2**64 - 1)]),
    "sampler": knob(st.sampled_from(["ddim", "ddpm", "dpmpp"]), ["euler", "DDIM", "", None, ["ddim"], 3]),
    "negative_prompt": knob(st.text(max_size=10) | st.none(), [5, b"x", "n" * (MAX_PROMPT_CHARS + 1)]),
    "temporal_attention": knob(st.booleans(), ["no", None, 1]),
    "temporal_gate": knob(st.none() | st.floats(-10, 10), [math.nan, 11.0, -1e30, "0.5", True]),
    "record_attention": knob(st.sampled_from([None, False, True, "cross", ["spatial", "temporal"]]),
                             ["bogus", ["cross", 3], 7]),
})


# ---------------------------------------------------------------------------------------- the test

def _materialize(value, media):
    """Files and the hour-long array are built here, not by hypothesis (it would shrink them)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "file":
        return str(media / value[1])
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "bytes":
        return (media / value[1]).read_bytes()
    if isinstance(value, str) and value == "hour-array":
        return 44100, np.zeros(44100 * 3600, np.int16)
    return value


def _one_line(exc: BaseException) -> None:
    msg = str(exc)
    assert 10 <= len(msg) <= 800 and "\n" not in msg and "Traceback" not in msg, repr(msg)
    assert not msg.startswith("[Errno") and not re.search(r"0x[0-9a-f]{6,}", msg), repr(msg)


def test_generate_fuzz(pipe, media):
    model = pipe.model.denoiser
    processors = get_processors(model)
    temporal = {n: m for n, m in model.attention_layers().items() if m.kind == "temporal"}
    gates = {n: m.gate.detach().clone() for n, m in temporal.items()}
    lim = pipe.limits()
    stats = collections.Counter()
    t_start = time.perf_counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(prompt=prompts, image=images, audio=audios, kw=knobs, use_call=st.booleans())
    def run(prompt, image, audio, kw, use_call):
        t0 = time.perf_counter()
        kw = dict(kw)
        if image is not None:
            kw["image"] = _materialize(image, media)
        if audio is not None:
            kw["audio"] = _materialize(audio, media)
        try:
            gen = pipe.stream(prompt, **kw)  # validates every raw value before the first step
        except (ValueError, FileNotFoundError) as e:
            _one_line(e)
            stats["refused"] += 1
            stats[f"refused:{type(e).__name__}"] += 1
        else:
            gen.close()  # never started: no compute spent on the raw (possibly costly) knobs
            cheap = dict(kw, num_inference_steps=1, num_frames=min(kw.get("num_frames") or 2, 2),
                         height=lim["height"][0], width=lim["width"][0])
            if use_call:
                result = pipe(prompt, **cheap)
            else:
                events = list(pipe.stream(prompt, **cheap))
                assert len(events) == 1
                result = events[-1].result
            assert result.frames.dtype == np.uint8 and result.frames.shape[1:] == (16, 16, 3)
            assert np.isfinite(result.video.numpy()).all()
            if result.audio is not None:
                assert np.isfinite(result.audio).all() and np.abs(result.audio).max() <= 1.0
            stats["ok"] += 1
            stats["ok:image"] += "image" in kw
            stats["ok:audio"] += "audio" in kw
        # the pipeline keeps serving: nothing of this example is left on the shared model
        assert all(get_processors(model)[n] is p for n, p in processors.items())
        assert all(torch.equal(m.gate, gates[n]) for n, m in temporal.items())
        slowest[0] = max(slowest[0], time.perf_counter() - t0)
        assert slowest[0] < 20, "one example took over 20 s: a hang in the making"

    slowest = [0.0]
    run()
    elapsed = time.perf_counter() - t_start
    print(f"\nfuzz: {sum(stats[k] for k in ('ok', 'refused'))} examples in {elapsed:.1f} s "
          f"(slowest {slowest[0]:.2f} s): {dict(stats)}")
    assert stats["ok"] + stats["refused"] >= EXAMPLES
    assert stats["ok"] >= 20 and stats["refused"] >= 20, stats  # both paths really exercised
    # and a normal request afterwards is served as before
    result = pipe(PROMPT, num_frames=2, num_inference_steps=2, seed=0, height=16, width=16)
    again = pipe(PROMPT, num_frames=2, num_inference_steps=2, seed=0, height=16, width=16)
    np.testing.assert_array_equal(result.frames, again.frames)
    assert not result.warnings
