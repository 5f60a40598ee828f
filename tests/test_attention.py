"""Attention processors: SDPA vs eager vs a hand-written reference, the TGS gate, key masks, ZeroProcessor."""

import math

import pytest
import torch

from support import make_inputs, randomize, tiny_config
from vidgen.attention import (
    KINDS,
    Attention,
    EagerProcessor,
    SDPAProcessor,
    ZeroProcessor,
    attention_modules,
    get_processors,
    set_processors,
)
from vidgen.checkpoint import VideoModel

DIM, HEADS, MAX_FRAMES = 32, 2, 8


def make_attention(kind, seed=0):
    attn = Attention(DIM, HEADS, kind, context_dim=24 if kind == "cross" else None, max_frames=MAX_FRAMES)
    randomize(attn, seed, std=0.2)
    if kind == "temporal":
        with torch.no_grad():
            attn.gate.fill_(0.8)
            attn.rel_bias.copy_(torch.randn(attn.rel_bias.shape, generator=torch.Generator().manual_seed(seed + 1)))
    return attn


def inputs(kind, seed=0):
    """(x, context, key_mask, layout) for one call of an attention of `kind`."""
    g = torch.Generator().manual_seed(seed)
    B, F, N = 2, 5, 6
    if kind == "spatial":
        return torch.randn(B * F, N, DIM, generator=g), None, None, (B, F, N)
    if kind == "temporal":
        return torch.randn(B * N, F, DIM, generator=g), None, None, (B, F, N)
    if kind == "joint":
        return torch.randn(B, F * N, DIM, generator=g), None, None, (B, F, N)
    context = torch.randn(B, 7, 24, generator=g)
    key_mask = torch.tensor([[True, True, True, False, False, True, False], [True, False, True, True, True, True, True]])
    return torch.randn(B, F * N, DIM, generator=g), context, key_mask, (B, F, N)


def manual_attention(attn, x, context=None, key_mask=None, use_bias=True):
    """softmax(Q K^T / sqrt(d) + gamma * B + mask) V, written independently of the processors.
    Returns (output, probabilities)."""
    d = attn.head_dim
    if attn.kind == "cross":
        q = x @ attn.to_q.weight.T + attn.to_q.bias
        kv = context @ attn.to_kv.weight.T + attn.to_kv.bias
        k, v = kv[..., :DIM], kv[..., DIM:]
    else:
        qkv = x @ attn.to_qkv.weight.T + attn.to_qkv.bias
        q, k, v = qkv[..., :DIM], qkv[..., DIM : 2 * DIM], qkv[..., 2 * DIM :]
    heads = lambda t: t.reshape(t.shape[0], t.shape[1], HEADS, d).permute(0, 2, 1, 3)  # noqa: E731
    q, k, v = heads(q), heads(k), heads(v)
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d)
    if attn.kind == "temporal" and use_bias:
        F = x.shape[1]
        bias = torch.empty(HEADS, F, F)
        for h in range(HEADS):
            for i in range(F):
                for j in range(F):
                    bias[h, i, j] = attn.rel_bias[h, j - i + attn.max_frames - 1]
        scores = scores + attn.gate * bias
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    probs = scores.softmax(-1)
    out = torch.einsum("bhqk,bhkd->bhqd", probs, v).permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], DIM)
    return out @ attn.to_out.weight.T + attn.to_out.bias, probs


@pytest.fixture
def two_threads():
    """SDPAProcessor writes short attention out only with more than one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


# cpu_explicit_max=0: always torch's fused kernel; the default: the written-out form for these sizes.
@pytest.mark.parametrize("cpu_explicit_max", [0, 64 * 64], ids=["fused", "explicit"])
@pytest.mark.parametrize("kind", KINDS)
def test_sdpa_eager_and_manual_agree(kind, cpu_explicit_max, two_threads):
    attn = make_attention(kind)
    x, context, key_mask, layout = inputs(kind)
    with torch.no_grad():
        attn.processor = SDPAProcessor(cpu_explicit_max)
        sdpa = attn(x, context, key_mask, layout)
        attn.processor = EagerProcessor()
        eager = attn(x, context, key_mask, layout)
        ref, _ = manual_attention(attn, x, context, key_mask)
    assert sdpa.shape == x.shape
    torch.testing.assert_close(sdpa, eager, rtol=0, atol=1e-5)
    torch.testing.assert_close(eager, ref, rtol=0, atol=1e-5)


def test_sdpa_processor_writes_out_only_small_attention_on_several_threads(monkeypatch, two_threads):
    fused_calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **kw: fused_calls.append(a[0].shape) or real(*a, **kw))
    attn = make_attention("spatial")
    x, *_ = inputs("spatial")  # Nq = Nk = 6: 36 scores per (batch, head)
    with torch.no_grad():
        for num_threads, bound, fused in ((2, 36, False), (2, 35, True), (2, 0, True), (1, 36, True)):
            torch.set_num_threads(num_threads)
            fused_calls.clear()
            attn.processor = SDPAProcessor(bound)
            attn(x)
            assert bool(fused_calls) == fused, (num_threads, bound)


def test_sdpa_processor_paths_have_the_same_gradients(two_threads):
    attn = make_attention("temporal")
    x, *_ = inputs("temporal")
    grads = []
    for bound in (0, 64 * 64):
        attn.zero_grad()
        attn.processor = SDPAProcessor(bound)
        attn(x).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in attn.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5)


def test_temporal_gate_zero_is_plain_attention(two_threads):
    attn = make_attention("temporal")
    x, *_ = inputs("temporal")
    with torch.no_grad():
        with_bias = attn(x)
        attn.gate.zero_()
        plain_ref, _ = manual_attention(attn, x, use_bias=False)
        for proc in (SDPAProcessor(0), SDPAProcessor(), EagerProcessor()):
            attn.processor = proc
            torch.testing.assert_close(attn(x), plain_ref, rtol=0, atol=1e-5)
    assert (with_bias - plain_ref).abs().max() > 1e-3  # the bias mattered before the gate was closed


def test_temporal_bias_matrix():
    attn = make_attention("temporal")
    B = attn.temporal_bias(5)
    assert B.shape == (HEADS, 5, 5)
    for i in range(5):
        for j in range(5):
            assert torch.equal(B[:, i, j], attn.rel_bias[:, j - i + MAX_FRAMES - 1])
    # ALiBi-like init: nearer frames get a larger (less negative) bias, slopes differ per head.
    fresh = Attention(DIM, HEADS, "temporal", max_frames=MAX_FRAMES).temporal_bias(4)
    assert torch.all(fresh[:, 0, 0] > fresh[:, 0, 1]) and torch.all(fresh[:, 0, 1] > fresh[:, 0, 3])
    assert fresh[0, 0, 1] != fresh[1, 0, 1]


def test_masked_keys_get_zero_probability():
    attn = make_attention("cross")
    x, context, key_mask, layout = inputs("cross")
    captured = []
    attn.processor = EagerProcessor(lambda a, probs, lay: captured.append((a, probs, lay)))
    with torch.no_grad():
        out = attn(x, context, key_mask, layout)
        # Changing the masked context tokens changes nothing.
        context2 = torch.where(key_mask[..., None], context, torch.randn_like(context) * 10)
        out2 = attn(x, context2, key_mask, layout)
    assert torch.equal(out, out2)
    a, probs, lay = captured[0]
    assert a is attn and lay == layout and probs.shape == (2, HEADS, x.shape[1], 7)
    masked = (~key_mask)[:, None, None, :].expand_as(probs)
    assert torch.all(probs[masked] == 0)
    assert torch.all(probs[~masked] > 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]), rtol=0, atol=1e-6)
    _, ref_probs = manual_attention(attn, x, context, key_mask)
    torch.testing.assert_close(probs, ref_probs, rtol=0, atol=1e-6)


def test_zero_processor_outputs_zeros():
    attn = make_attention("spatial")
    x, *_ = inputs("spatial")
    attn.processor = ZeroProcessor()
    out = attn(x)
    assert out.shape == x.shape and torch.all(out == 0)


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        Attention(DIM, HEADS, "global")


# ------------------------------------------------------------------------------ inside the model
def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return randomize(VideoModel(tiny_config(**overrides)).eval(), seed)


def run(model, inputs_):
    x, t, cond = inputs_
    with torch.no_grad():
        return model(x, t, cond)


def test_processor_registry():
    model = tiny_model(depth=2)
    layers = attention_modules(model)
    assert set(layers) == {f"denoiser.blocks.{i}.{k}" for i in range(2) for k in ("spatial", "temporal", "cross")}
    assert model.denoiser.attention_layers().keys() == {n.removeprefix("denoiser.") for n in layers}
    assert all(isinstance(p, SDPAProcessor) for p in get_processors(model).values())
    zero = ZeroProcessor()
    model.denoiser.set_attn_processor({"blocks.1.temporal": zero})
    procs = model.denoiser.attn_processors
    assert procs["blocks.1.temporal"] is zero and isinstance(procs["blocks.0.temporal"], SDPAProcessor)
    with pytest.raises(KeyError, match="blocks.9"):
        set_processors(model.denoiser, {"blocks.9.spatial": zero})


@pytest.mark.parametrize("variant", ["factorized", "joint"])
def test_model_sdpa_equals_eager(variant):
    model = tiny_model(variant=variant, depth=2)
    inp = make_inputs(model, batch=2, frames=3)
    sdpa = run(model, inp)
    model.denoiser.set_attn_processor(EagerProcessor())
    eager = run(model, inp)
    assert sdpa.abs().max() > 1e-2  # randomized weights: the output is not trivially zero
    torch.testing.assert_close(sdpa, eager, rtol=0, atol=1e-5)


def test_joint_and_factorized_variants_run_on_one_input():
    fact, joint = tiny_model(variant="factorized"), tiny_model(variant="joint")
    inp = make_inputs(fact, batch=2, frames=4)
    a, b = run(fact, inp), run(joint, inp)
    assert a.shape == b.shape == inp[0].shape
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    kinds_joint = {m.kind for m in attention_modules(joint).values()}
    kinds_fact = {m.kind for m in attention_modules(fact).values()}
    assert kinds_joint == {"joint", "cross"} and kinds_fact == {"spatial", "temporal", "cross"}


def test_zero_temporal_equals_model_without_temporal_attention():
    """Zeroing the temporal processors makes that branch the identity: the model then equals one built
    with temporal_attention=False carrying the same other weights."""
    with_t = tiny_model(depth=2)
    inp = make_inputs(with_t, batch=2, frames=4)
    base = run(with_t, inp)
    with_t.denoiser.set_attn_processor({n: ZeroProcessor() for n, m in with_t.denoiser.attention_layers().items()
                                        if m.kind == "temporal"})
    zeroed = run(with_t, inp)
    assert (base - zeroed).abs().max() > 1e-3  # the temporal branch did contribute

    without = VideoModel(tiny_config(depth=2, temporal_attention=False)).eval()
    D = with_t.cfg.width
    state = {}
    for k, v in with_t.state_dict().items():
        if ".temporal." in k:
            continue
        if k.endswith(".ada.weight") or k.endswith(".ada.bias"):
            # adaLN rows come in (spatial, temporal, mlp) x (shift, scale, gate) chunks of D: drop temporal's.
            v = torch.cat([v[: 3 * D], v[6 * D :]])
        state[k] = v
    without.load_state_dict(state, strict=True)
    assert not any(m.kind == "temporal" for m in attention_modules(without).values())
    torch.testing.assert_close(run(without, inp), zeroed, rtol=0, atol=1e-5)
