"""AttentionRecorder: exact outputs, documented map layouts, selection, and processor restoration."""

import pytest
import torch

from support import make_inputs, randomize, tiny_config
from vidgen.attention import EagerProcessor, SDPAProcessor, attention_modules
from vidgen.checkpoint import VideoModel
from vidgen.recording import AttentionRecorder, unfold_probs

B, FR, S = 2, 3, 16  # batch, frames, pixels
GRID = S // 8
N = GRID * GRID


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return randomize(VideoModel(tiny_config(**overrides)).eval(), seed)


@pytest.fixture(scope="module")
def model():
    return tiny_model(depth=2)


@pytest.fixture(scope="module")
def inp(model):
    return make_inputs(model, batch=B, frames=FR, size=S)


def run(model, inp):
    x, t, cond = inp
    with torch.no_grad():
        return model(x, t, cond)


def all_sdpa(model):
    return all(isinstance(p, SDPAProcessor) for p in model.denoiser.attn_processors.values())


def test_no_recorder_means_sdpa_everywhere():
    assert all_sdpa(VideoModel(tiny_config()))
    assert all_sdpa(VideoModel(tiny_config(variant="joint")))


def test_recorder_does_not_change_outputs(model, inp):
    ref = run(model, inp)
    with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal", "cross")) as rec:
        out = run(model, inp)
    assert len(rec.maps) == 6
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert all_sdpa(model)  # restored on exit


def test_keys_shapes_and_rows_sum_to_one(model, inp):
    L = inp[2].context.shape[1]
    with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal", "cross")) as rec:
        rec.step = 0
        run(model, inp)
        rec.step = 1
        run(model, inp)
    layers = [f"blocks.{i}.{k}" for i in range(2) for k in ("spatial", "temporal", "cross")]
    assert set(rec.maps) == {(s, name, name.split(".")[-1]) for s in (0, 1) for name in layers}
    expected = {"spatial": (B, FR, N, N), "temporal": (B, N, FR, FR), "cross": (B, FR, N, L)}
    for (step, name, kind), m in rec.maps.items():
        assert m.shape == expected[kind], (name, m.shape)
        assert m.dtype == torch.float32 and m.device.type == "cpu"
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]), rtol=0, atol=1e-5)
        assert (m >= 0).all()
    # Same input at both steps: same maps.
    for (step, name, kind), m in rec.maps.items():
        if step == 1:
            torch.testing.assert_close(m, rec.maps[(0, name, kind)], rtol=0, atol=1e-6)
    # Padding after EOT gets no cross-attention.
    mask = inp[2].context_mask
    cross = rec.maps[(0, "blocks.0.cross", "cross")]
    assert torch.all(cross[~mask[:, None, None, :].expand_as(cross)] == 0)
    # pop_step removes exactly one step's maps.
    popped = rec.pop_step(0)
    assert len(popped) == 6 and all(k[0] == 0 for k in popped) and all(k[0] == 1 for k in rec.maps)


def test_per_head_and_batch_index(model, inp):
    H, L = model.cfg.heads, inp[2].context.shape[1]
    with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal", "cross")) as full:
        run(model, inp)
    with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal", "cross"), per_head=True) as heads:
        run(model, inp)
    with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal", "cross"), per_head=True, batch_index=1) as one:
        run(model, inp)
    expected = {"spatial": (B, H, FR, N, N), "temporal": (B, H, N, FR, FR), "cross": (B, H, FR, N, L)}
    for key, m in heads.maps.items():
        assert m.shape == expected[key[2]]
        torch.testing.assert_close(m.mean(1), full.maps[key], rtol=0, atol=1e-6)  # heads average to the default
        assert one.maps[key].shape == (1, *expected[key[2]][1:])
        torch.testing.assert_close(one.maps[key], m[1:2], rtol=0, atol=1e-6)
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]), rtol=0, atol=1e-5)


def test_joint_maps():
    model = tiny_model(variant="joint")
    inp = make_inputs(model, batch=B, frames=FR, size=S)
    ref = run(model, inp)
    with AttentionRecorder(model.denoiser, kinds=("joint",)) as rec:
        out = run(model, inp)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert set(rec.maps) == {(0, "blocks.0.joint", "joint")}
    m = rec.maps[(0, "blocks.0.joint", "joint")]
    assert m.shape == (B, FR * N, FR * N)
    torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]), rtol=0, atol=1e-5)


def test_selecting_kinds_and_layers(model, inp):
    with AttentionRecorder(model.denoiser, kinds=("cross",)) as rec:
        procs = model.denoiser.attn_processors
        assert isinstance(procs["blocks.0.cross"], EagerProcessor)
        assert isinstance(procs["blocks.0.spatial"], SDPAProcessor)  # unselected layers keep the fast path
        run(model, inp)
    assert {k[1] for k in rec.maps} == {"blocks.0.cross", "blocks.1.cross"}
    assert {k[2] for k in rec.maps} == {"cross"}

    with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal"), layers=("blocks.1",)) as rec:
        run(model, inp)
    assert set(rec.maps) == {(0, "blocks.1.spatial", "spatial"), (0, "blocks.1.temporal", "temporal")}
    assert all_sdpa(model)


def test_processors_restored_after_exception(model, inp):
    zero_layer = "blocks.0.temporal"
    custom = EagerProcessor()
    model.denoiser.set_attn_processor({zero_layer: custom})
    try:
        before = dict(model.denoiser.attn_processors)
        with pytest.raises(RuntimeError, match="boom"):
            with AttentionRecorder(model.denoiser, kinds=("spatial", "temporal", "cross")):
                assert all(model.denoiser.attn_processors[n] is not p for n, p in before.items())
                run(model, inp)
                raise RuntimeError("boom")
        after = model.denoiser.attn_processors
        assert after.keys() == before.keys()
        assert all(after[n] is p for n, p in before.items())
    finally:
        model.denoiser.set_attn_processor(SDPAProcessor())


def test_restored_when_a_generator_is_closed(model, inp):
    """Streaming callers keep the recorder open inside a generator and may abandon it."""
    before = dict(model.denoiser.attn_processors)

    def stream():
        with AttentionRecorder(model.denoiser) as rec:
            for step in range(3):
                rec.step = step
                run(model, inp)
                yield rec.pop_step(step)

    g = stream()
    maps = next(g)
    assert len(maps) == 6 and not all_sdpa(model)
    g.close()
    assert all(model.denoiser.attn_processors[n] is p for n, p in before.items())


def test_unknown_kind():
    with pytest.raises(ValueError, match="diagonal"):
        AttentionRecorder(torch.nn.Linear(1, 1), kinds=("diagonal",))


def test_unfold_probs_layouts():
    """Each raw row lands where the docstring says: code every probability with its source index."""
    Bb, Fr, Nn, H, L = 2, 3, 4, 2, 5

    def coded(bprime, nq, nk):
        return torch.arange(bprime * H * nq * nk, dtype=torch.float32).reshape(bprime, H, nq, nk)

    sp = coded(Bb * Fr, Nn, Nn)
    out = unfold_probs("spatial", sp, (Bb, Fr, Nn))
    assert out.shape == (Bb, H, Fr, Nn, Nn)
    assert torch.equal(out[1, 0, 2], sp[1 * Fr + 2, 0])  # B' = b * F + f

    tp = coded(Bb * Nn, Fr, Fr)
    out = unfold_probs("temporal", tp, (Bb, Fr, Nn))
    assert out.shape == (Bb, H, Nn, Fr, Fr)
    assert torch.equal(out[1, 1, 3], tp[1 * Nn + 3, 1])  # B' = b * N + n

    cp = coded(Bb, Fr * Nn, L)
    out = unfold_probs("cross", cp, (Bb, Fr, Nn))
    assert out.shape == (Bb, H, Fr, Nn, L)
    assert torch.equal(out[1, 0, 2, 3], cp[1, 0, 2 * Nn + 3])  # query = f * N + n

    jp = coded(Bb, Fr * Nn, Fr * Nn)
    assert torch.equal(unfold_probs("joint", jp, (Bb, Fr, Nn)), jp)


def test_temporal_map_matches_raw_probabilities(model, inp):
    """The recorded temporal map of one grid location equals the raw probabilities of that row."""
    raw = {}
    layer = model.denoiser.attention_layers()["blocks.0.temporal"]
    layer.processor = EagerProcessor(lambda a, p, lay: raw.setdefault("p", p.clone()))
    try:
        run(model, inp)
    finally:
        layer.processor = SDPAProcessor()
    with AttentionRecorder(model.denoiser, kinds=("temporal",), layers=("blocks.0.",), per_head=True) as rec:
        run(model, inp)
    m = rec.maps[(0, "blocks.0.temporal", "temporal")]
    for b in range(B):
        for n in range(N):
            torch.testing.assert_close(m[b, :, n], raw["p"][b * N + n], rtol=0, atol=1e-6)
    assert attention_modules(model)["denoiser.blocks.0.temporal"] is layer
