"""VideoPipeline on a tiny random model: determinism, streaming, cancel, maps, ablations, export, loading."""

import math
import threading
import time

import numpy as np
import pytest
import torch

from vidgen import maps, video_io, world
from vidgen.attention import ZeroProcessor, get_processors
from vidgen.checkpoint import VideoModel
from vidgen.config import ModelConfig
from vidgen.pipeline import VideoPipeline, pick_device

PROMPT = "a red circle moving left"
KW = dict(num_frames=4, num_inference_steps=2, seed=0)  # 32x32: the tiny model's sample_size
TINY = dict(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
            context_length=16, vocabulary=world.VOCABULARY, num_frames=4, sample_size=32)


def tiny_model(seed: int = 0) -> VideoModel:
    """A tiny model whose zero-initialized layers (adaLN gates, output conv) are perturbed, so every
    branch, temporal attention included, changes the output."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = VideoModel(ModelConfig(**TINY))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def pipe():
    return VideoPipeline(tiny_model(), device="cpu")


def temporal_layers(pipe):
    return {n: m for n, m in pipe.model.denoiser.attention_layers().items() if m.kind == "temporal"}


def gates(pipe):
    return {n: m.gate.detach().clone() for n, m in temporal_layers(pipe).items()}


# ----------------------------------------------------------------------------------- determinism

def test_same_seed_same_frames_whatever_ran_before(pipe):
    first = pipe(PROMPT, **KW).frames
    # Disturb everything a run could leak: global RNGs, other seeds and samplers, recording,
    # ablations, audio and image conditioning.
    torch.manual_seed(12345)
    np.random.seed(12345)
    pipe("a big blue square moving up quickly", num_frames=4, num_inference_steps=3, seed=99, sampler="ddpm",
         record_attention=True, temporal_attention=False, guidance_scale=7.0)
    pipe(PROMPT, num_frames=4, num_inference_steps=2, seed=5, temporal_gate=0.0,
         audio=(16000, world.synthesize_audio(0, num_frames=4)), image=np.zeros((32, 32, 3), np.uint8))
    torch.rand(100)
    again = pipe(PROMPT, **KW).frames
    assert first.dtype == np.uint8 and first.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(first, again)
    other = pipe(PROMPT, **{**KW, "seed": 1}).frames
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp"])
def test_stochastic_and_multistep_samplers_are_seeded(pipe, sampler):
    a = pipe(PROMPT, **KW, sampler=sampler).frames
    b = pipe(PROMPT, **KW, sampler=sampler).frames
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("audio", [False, True])
def test_bfloat16_pipeline_matches_float32(pipe, audio):
    """dtype=torch.bfloat16 (a GPU option) runs every path, audio and maps included, and stays
    close to the float32 result."""
    pipe16 = VideoPipeline(tiny_model(), device="cpu", dtype=torch.bfloat16)
    wave = (16000, 0.3 * np.sin(np.linspace(0, 200, 8000)).astype(np.float32)) if audio else None
    a = pipe(PROMPT, audio=wave, **KW)
    b = pipe16(PROMPT, audio=wave, record_attention=True, **KW)
    assert b.video.dtype == torch.float32 and torch.isfinite(b.video).all()
    other_seed = pipe(PROMPT, audio=wave, **{**KW, "seed": 1})
    # bf16 rounding moves pixels by a few hundredths; another seed moves them by tenths
    assert (a.video - b.video).abs().mean() < 0.2 * (a.video - other_seed.video).abs().mean()
    assert b.maps and all(torch.isfinite(m.float()).all() for m in b.maps.values())


def test_result_reports_the_seed_used_and_timings(pipe):
    r = pipe(PROMPT, num_frames=4, num_inference_steps=2)  # seed=None: a fresh random seed
    assert isinstance(r.seed, int) and 0 <= r.seed < 2**31 and r.settings.seed == r.seed
    np.testing.assert_array_equal(pipe(PROMPT, num_frames=4, num_inference_steps=2, seed=r.seed).frames, r.frames)
    assert pipe(PROMPT, **KW).seed == 0

    assert set(r.timings) == {"encode", "first_step", "total", "per_step"}
    assert all(math.isfinite(v) and v >= 0 for v in r.timings.values()), r.timings
    t = r.timings  # seconds since the call began, except per_step (denoising time / steps)
    assert t["encode"] <= t["first_step"] <= t["total"]
    assert t["per_step"] == pytest.approx((t["total"] - t["encode"]) / 2)


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device() == torch.device(expected)


# ------------------------------------------------------------------------------------- streaming

def test_stream_one_event_per_step_and_last_result_equals_call(pipe):
    events = list(pipe.stream(PROMPT, num_frames=4, num_inference_steps=3, seed=3, record_attention=True))
    assert len(events) == 3
    assert [e.step for e in events] == [0, 1, 2] and all(e.num_steps == 3 for e in events)
    assert [e.result is None for e in events] == [True, True, False]
    for e in events:
        assert e.preview.shape == e.preview_xt.shape == (4, 32, 32, 3) and e.preview.dtype == np.uint8
        assert e.maps and {k[0] for k in e.maps} == {e.step}  # each event carries its own step's maps
    called = pipe(PROMPT, num_frames=4, num_inference_steps=3, seed=3, record_attention=True)
    np.testing.assert_array_equal(events[-1].result.frames, called.frames)
    assert sorted(events[-1].result.maps) == sorted(called.maps)
    assert {k[0] for k in called.maps} == {0, 1, 2}


def test_cancel_mid_stream_restores_processors_and_gates(pipe):
    reference = pipe(PROMPT, **KW).frames
    before_procs, before_gates = get_processors(pipe.model.denoiser), gates(pipe)
    gen = pipe.stream(PROMPT, num_frames=4, num_inference_steps=5, seed=0, record_attention=True,
                      temporal_gate=0.25)
    next(gen)
    assert next(gen).maps  # recording processors were in place for the model call
    # Between steps (where a cancel lands) the shared model carries nothing of this generation,
    # and the consumer's code does not run in the pipeline's grad mode.
    assert all(get_processors(pipe.model.denoiser)[n] is p for n, p in before_procs.items())
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    gen.close()  # a cancel
    after = get_processors(pipe.model.denoiser)
    assert after.keys() == before_procs.keys()
    assert all(after[n] is p for n, p in before_procs.items())
    for n, g in gates(pipe).items():
        assert torch.equal(g, before_gates[n])
    np.testing.assert_array_equal(pipe(PROMPT, **KW).frames, reference)  # the next call still works


def test_interleaved_and_concurrent_streams_do_not_interfere(pipe):
    """Two generations on one pipeline (a UI that starts a new run before the old generator is
    closed, or two users): each sees only its own recorder and ablations, whatever the order."""
    before_procs, before_gates = get_processors(pipe.model.denoiser), gates(pipe)
    runs = [dict(record_attention=True, temporal_gate=-5.0), dict(temporal_attention=False), dict()]
    expected = [pipe(PROMPT, **KW, **r).frames for r in runs]
    streams = [pipe.stream(PROMPT, **KW, **r) for r in runs]
    events = [[], [], []]
    for step in zip(*streams):  # lock-step interleaving
        for i, e in enumerate(step):
            events[i].append(e)
    for ev, want in zip(events, expected):
        np.testing.assert_array_equal(ev[-1].result.frames, want)
    a, b = (pipe.stream(PROMPT, **{**KW, "num_inference_steps": 4}, **r) for r in runs[:2])
    next(a), next(b), next(a)
    a.close(), b.close()  # closed in the "wrong" order
    assert all(get_processors(pipe.model.denoiser)[n] is p for n, p in before_procs.items())
    assert all(torch.equal(g, before_gates[n]) for n, g in gates(pipe).items())

    results, errors = [None] * 3, []

    def work(i):
        try:
            results[i] = pipe(PROMPT, **KW, **runs[i]).frames
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_ablation_and_error_mid_stream_are_undone(pipe):
    before = get_processors(pipe.model.denoiser)
    reference = pipe(PROMPT, **KW).frames
    gen = pipe.stream(PROMPT, **KW, temporal_attention=False, record_attention=True)
    next(gen)
    with pytest.raises(RuntimeError, match="boom"):
        gen.throw(RuntimeError("boom"))
    assert all(get_processors(pipe.model.denoiser)[n] is p for n, p in before.items())
    assert not any(isinstance(m.processor, ZeroProcessor) for m in temporal_layers(pipe).values())
    np.testing.assert_array_equal(pipe(PROMPT, **KW).frames, reference)


# ------------------------------------------------------------------------------------------ maps

def test_map_shapes_normalization_and_bpe_words(pipe):
    # "cyan" is two BPE pieces (cy + an</w>) and not in the tiny vocabulary: one word, and a warning
    r = pipe("a cyan circle moving left", **KW, record_attention=True)
    ctx, store = r.map_context, r.maps
    grid = (32 // pipe.cfg.downsample,) * 2
    n, f, length = grid[0] * grid[1], 4, pipe.cfg.context_length
    assert ctx.grid == grid and ctx.num_frames == f and ctx.audio_tokens is None
    assert [w for w, _ in ctx.words] == ["a", "cyan", "circle", "moving", "left"]
    assert dict(ctx.words)["cyan"] == [2, 3]  # positions after SOT
    assert any("cyan" in w for w in r.warnings)
    assert {k[0] for k in store} == {0, 1} and {k[2] for k in store} == {"spatial", "temporal", "cross"}
    shapes = {"spatial": (1, f, n, n), "temporal": (1, n, f, f), "cross": (1, f, n, length)}
    for (_, _, kind), m in store.items():
        assert tuple(m.shape) == shapes[kind]
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]), atol=1e-4, rtol=0)  # softmax rows
    heat = maps.word_heatmaps(store, ctx)
    assert list(heat) == ["a", "cyan", "circle", "moving", "left"]
    for h in heat.values():
        assert h.shape == (f, *grid) and h.dtype == np.float32
        assert h.min() == 0.0 and h.max() == pytest.approx(1.0)
    np.testing.assert_allclose(maps.temporal_matrix(store, ctx).sum(-1), 1.0, atol=1e-5)


def test_audio_tokens_extend_the_cross_attention_context(pipe):
    audio = (16000, world.synthesize_audio(1, num_frames=4))
    r = pipe(PROMPT, **KW, audio=audio, record_attention=["cross"])
    L = pipe.cfg.context_length
    assert r.map_context.audio_tokens == slice(L, L + 4)
    assert {k[2] for k in r.maps} == {"cross"}
    assert all(m.shape[-1] == L + 4 for m in r.maps.values())
    a = maps.audio_heatmap(r.maps, r.map_context)
    assert a.shape == (4, 4, 4) and 0 <= a.min() and a.max() <= 1


def test_temporal_ablation_changes_output_and_is_restored(pipe):
    base = pipe(PROMPT, **KW).frames
    off = pipe(PROMPT, **KW, temporal_attention=False).frames
    gated = pipe(PROMPT, **KW, temporal_gate=-5.0).frames
    assert not np.array_equal(base, off)
    assert not np.array_equal(base, gated)
    np.testing.assert_array_equal(pipe(PROMPT, **KW).frames, base)


# ---------------------------------------------------------------------------------------- export

@pytest.mark.parametrize("with_audio", [True, False])
def test_mp4_round_trip(pipe, tmp_path, with_audio):
    audio = (22050, world.synthesize_audio(2, num_frames=4, sample_rate=22050)) if with_audio else None
    r = pipe(PROMPT, **KW, audio=audio)
    assert (r.audio is not None) == with_audio
    if with_audio:  # resampled to the model's rate, trimmed to the video
        assert r.sample_rate == pipe.cfg.audio_sample_rate and len(r.audio) == 4 * r.sample_rate // r.fps
    path = video_io.write_mp4(r.frames, tmp_path / "v.mp4", fps=r.fps, audio=r.audio, sample_rate=r.sample_rate)
    frames, fps, has_audio = video_io.read_video(path)
    assert has_audio == with_audio
    assert fps == pytest.approx(r.fps) and frames.shape == (4, 256, 256, 3)  # nearest-upscaled 8x
    centers = frames[:, 4::8, 4::8].astype(int)  # one pixel per source pixel, away from block edges
    assert np.abs(centers - r.frames.astype(int)).mean() < 12  # lossy, but the same video


# --------------------------------------------------------------------------------------- loading

def test_from_pretrained_local_folder(tmp_path, offline):
    model = tiny_model(seed=1)
    folder = model.save_pretrained(tmp_path / "ckpt")
    pipe = VideoPipeline.from_pretrained(folder, device="cpu")
    assert pipe.source == str(folder.resolve())
    assert VideoPipeline.from_pretrained(str(folder), device="cpu") is pipe  # cached
    for (k, a), b in zip(model.state_dict().items(), pipe.model.state_dict().values()):
        assert torch.equal(a, b), k
    reference = VideoPipeline(model, device="cpu")
    np.testing.assert_array_equal(pipe(PROMPT, **KW).frames, reference(PROMPT, **KW).frames)


def test_from_pretrained_hub_id_from_offline_cache(offline):
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = offline / "models--org--vidgen-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    tiny_model(seed=2).save_pretrained(repo / "snapshots" / sha)
    pipe = VideoPipeline.from_pretrained("org/vidgen-tiny", device="cpu")
    assert pipe.source == str((repo / "snapshots" / sha).resolve())
    assert pipe(PROMPT, **KW).frames.shape == (4, 32, 32, 3)


def test_missing_checkpoints_fail_clearly(tmp_path, offline):
    with pytest.raises(ValueError, match="not found"):
        VideoPipeline.from_pretrained(tmp_path / "no-such-folder", device="cpu")
    with pytest.raises(ValueError, match="org/missing.*not in the local cache"):
        VideoPipeline.from_pretrained("org/missing", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="model.safetensors"):
        VideoPipeline.from_pretrained(tmp_path / "empty", device="cpu")


def test_cached_loader_is_thread_safe(tmp_path, offline, monkeypatch):
    folder = tiny_model().save_pretrained(tmp_path / "ckpt")
    calls = []
    original = VideoModel.from_pretrained.__func__

    def counting(cls, directory, **kwargs):
        calls.append(directory)
        time.sleep(0.2)  # widen the race window
        return original(cls, directory, **kwargs)

    monkeypatch.setattr(VideoModel, "from_pretrained", classmethod(counting))
    barrier, results, errors = threading.Barrier(8), [None] * 8, []

    def load(i):
        try:
            barrier.wait()
            results[i] = VideoPipeline.from_pretrained(folder, device="cpu")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert results[0] is not None and all(r is results[0] for r in results)
    assert len(calls) == 1


# ------------------------------------------------------------------------------------ validation

@pytest.mark.parametrize("kwargs, message", [
    (dict(num_frames=0), r"num_frames must be an integer in \[1, 32\]"),
    (dict(num_frames=1e4), r"num_frames must be an integer in \[1, 32\]"),
    (dict(num_frames=10_000), r"num_frames must be an integer in \[1, 32\]"),
    (dict(num_inference_steps=0), r"num_inference_steps must be an integer in \[1, 250\]"),
    (dict(num_inference_steps=10**6), r"num_inference_steps must be an integer in \[1, 250\]"),
    (dict(guidance_scale=math.nan), r"guidance_scale must be a number in \[0.0, 20.0\]"),
    (dict(guidance_scale=-1.0), r"guidance_scale must be a number in \[0.0, 20.0\]"),
    (dict(sampler="euler"), r"ddim.*ddpm.*dpmpp"),
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="  \n\t "), "prompt is empty"),
    (dict(prompt="xyzzy plugh"), "none of the prompt's words"),
    (dict(seed=-1), r"seed must be an integer in \[0, 2\*\*63 - 1\]"),
    (dict(seed=2**64), r"seed must be an integer in \[0, 2\*\*63 - 1\]"),
    (dict(height=36), "height must be a multiple of 8"),
    (dict(height=8), r"height must be an integer in \[32, 128\]"),
])
def test_bad_knobs_raise_before_any_work(pipe, kwargs, message):
    kwargs = {**KW, **kwargs}
    prompt = kwargs.pop("prompt", PROMPT)
    before = get_processors(pipe.model.denoiser)
    with pytest.raises(ValueError, match=message):
        pipe.stream(prompt, **kwargs)  # raises on the call, before the first step
    assert all(get_processors(pipe.model.denoiser)[n] is p for n, p in before.items())


def test_record_per_head_keeps_a_heads_axis_for_the_kinds_asked(tmp_path):
    from vidgen.checkpoint import VideoModel
    from vidgen.config import ModelConfig
    from vidgen.pipeline import VideoPipeline
    from vidgen.world import VOCABULARY

    torch.manual_seed(0)
    cfg = ModelConfig(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
                      context_length=16, vocabulary=VOCABULARY)
    pipe = VideoPipeline(VideoModel(cfg), device="cpu")
    kw = dict(num_frames=2, height=32, width=32, num_inference_steps=1, seed=0, record_attention=True)
    averaged = pipe("a red circle moving left", **kw).maps
    mixed = pipe("a red circle moving left", record_per_head=("cross", "temporal"), **kw).maps
    for key, t in mixed.items():
        if key[2] == "spatial":
            assert t.shape == averaged[key].shape
        else:  # (B, H, ...) whose mean over heads is the averaged map
            assert t.shape[1] == 2 and t.shape[0] == 1
            torch.testing.assert_close(t.mean(1), averaged[key])
    every = pipe("a red circle moving left", record_per_head=True, **kw).maps
    assert all(t.shape[1] == 2 for t in every.values())
    with pytest.raises(ValueError, match="kinds must be among"):
        pipe("a red circle moving left", record_per_head=("pixels",), **kw)
