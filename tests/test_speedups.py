"""The denoiser's fast paths compute what the plain formulation computes.

- the stem: one p x p stride-p conv instead of concat + pixel-unshuffle + 1x1 conv_in;
- shared rows: x_t / t / image of batch 1 with a context of batch B (a CFG pair) equals the
  inputs expanded to B, maps included, and only the rows before the first cross-attention are shared.
"""

import pytest
import torch
import torch.nn.functional as F

from support import make_inputs, randomize, tiny_config
from vidgen.checkpoint import VideoModel
from vidgen.recording import AttentionRecorder


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return randomize(VideoModel(tiny_config(**overrides)).eval(), seed)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def reference_stem(den, x_t, image=None, image_mask=None):
    """The plain formulation: condition channels concatenated, pixel-unshuffled, 1x1 conv."""
    B, C, Fr, H, W = x_t.shape
    cond = x_t.new_zeros(B, C + 1, Fr, H, W)
    if image is not None:
        keep = (image_mask if image_mask is not None else x_t.new_ones(B, dtype=torch.bool)).to(x_t.dtype)
        cond[:, :C, 0] = image * keep[:, None, None, None]
        cond[:, C, 0] = keep[:, None, None]
    h = torch.cat([x_t, cond], dim=1).transpose(1, 2).reshape(B * Fr, 2 * C + 1, H, W)
    return den.conv_in(F.pixel_unshuffle(h, den.cfg.patch_size))


@pytest.mark.parametrize("with_image", [False, True])
def test_stem_equals_unshuffle_and_1x1_conv(model, with_image):
    den = model.denoiser
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 3, 16, 24, generator=g)
    kw = {}
    if with_image:
        kw = {"image": torch.rand(2, 3, 16, 24, generator=g) * 2 - 1, "image_mask": torch.tensor([True, False])}
    with torch.no_grad():
        fast = den.stem(x, kw.get("image"), kw.get("image_mask"))
        ref = reference_stem(den, x, kw.get("image"), kw.get("image_mask"))
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)


def test_tokens_stay_contiguous(model):
    """The transformer gets contiguous tokens (no hidden copy in every LayerNorm)."""
    seen = []
    hook = model.denoiser.blocks[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].is_contiguous()))
    try:
        x, t, cond = make_inputs(model, batch=2, frames=3)
        with torch.no_grad():
            model(x, t, cond)
    finally:
        hook.remove()
    assert seen == [True]


@pytest.mark.parametrize("variant, words", [("factorized", False), ("joint", False), ("factorized", True)])
@pytest.mark.parametrize("with_image", [False, True])
@pytest.mark.parametrize("audio", [False, True])
def test_shared_rows_equal_expanded_inputs(variant, words, with_image, audio):
    model = tiny_model(variant=variant, word_embedding=words)
    _, _, cond = make_inputs(model, batch=2, frames=4, audio=audio)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 4, 16, 16, generator=g)
    t = torch.tensor([600])
    image = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1 if with_image else None
    with torch.no_grad():
        shared = model(x, t, cond, image=image)
        expanded = model(x.expand(2, -1, -1, -1, -1), t.expand(2), cond,
                         image=None if image is None else image.expand(2, -1, -1, -1))
    assert shared.shape == expanded.shape == (2, 3, 4, 16, 16)
    torch.testing.assert_close(shared, expanded, rtol=0, atol=1e-5)
    assert (shared[0] - shared[1]).abs().max() > 1e-4  # the two contexts still give two videos


def test_shared_rows_record_the_same_maps(model):
    _, _, cond = make_inputs(model, batch=2, frames=4)
    x, t = torch.randn(1, 3, 4, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([300])
    with torch.no_grad():
        with AttentionRecorder(model.denoiser, batch_index=1) as shared:
            model(x, t, cond)
        with AttentionRecorder(model.denoiser, batch_index=1) as expanded:
            model(x.expand(2, -1, -1, -1, -1), t.expand(2), cond)
    assert set(shared.maps) == set(expanded.maps)
    for key, m in expanded.maps.items():
        assert shared.maps[key].shape == m.shape
        torch.testing.assert_close(shared.maps[key], m, rtol=0, atol=1e-6)


def test_shared_rows_batch_mismatch(model):
    _, _, cond = make_inputs(model, batch=2, frames=2)
    with pytest.raises(ValueError, match="must each be 1 or"):
        with torch.no_grad():
            model(torch.randn(3, 3, 2, 16, 16), torch.tensor([1, 2, 3]), cond)
