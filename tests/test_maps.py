"""Attention-map products on synthetic stores whose answers are planted."""

import numpy as np
import pytest
import torch

from vidgen import maps
from vidgen.maps import MapContext

H, W, F, L = 4, 4, 3, 6  # grid, frames, context tokens: [sot, yel, low, triangle, audio0, audio1]
N = H * W
WORDS = maps.merge_bpe_pieces(["yel", "low</w>", "triangle</w>"])
CTX = MapContext(grid=(H, W), num_frames=F, words=[(w, [p + 1 for p in pos]) for w, pos in WORDS],
                 audio_tokens=slice(4, 6), batch_index=1)


def idx(y, x):
    return y * W + x


def cross(peak_yellow, peak_triangle, heads=None, seed=0):
    """(B=2, [heads,] F, N, L) softmax rows; in the cond row, pixel ``peak_yellow`` attends to the
    "yellow" tokens and ``peak_triangle`` to "triangle"; the uncond row has the peaks swapped."""
    g = torch.Generator().manual_seed(seed)
    shape = (2, *([heads] if heads else []), F, N, L)
    logits = torch.randn(shape, generator=g) * 0.1
    logits[1, ..., idx(*peak_yellow), 1:3] += 6
    logits[1, ..., idx(*peak_triangle), 3] += 6
    logits[0, ..., idx(*peak_triangle), 1:3] += 6
    return logits.softmax(-1)


def peak(a):
    return tuple(int(i) for i in np.unravel_index(np.argmax(a), a.shape))


def test_merge_bpe_pieces():
    assert WORDS == [("yellow", [0, 1]), ("triangle", [2])]
    assert maps.merge_bpe_pieces(["a</w>", "red</w>", ",</w>", "cir", "cle</w>", ".</w>"]) == [
        ("a", [0]), ("red", [1]), (",", [2]), ("circle", [3, 4]), (".", [5])]
    assert maps.merge_bpe_pieces(["tri", "ang"]) == [("triang", [0, 1])]  # truncated mid-word
    assert maps.merge_bpe_pieces([]) == []


def test_word_heatmaps_peak_at_planted_pixels():
    store = {(0, "blocks.0.cross", "cross"): cross((1, 2), (3, 0))}
    heat = maps.word_heatmaps(store, CTX)
    assert list(heat) == ["yellow", "triangle"]
    for word, where in [("yellow", (1, 2)), ("triangle", (3, 0))]:
        h = heat[word]
        assert h.shape == (F, H, W) and h.dtype == np.float32
        assert h.min() == 0 and h.max() == pytest.approx(1)
        for f in range(F):
            assert peak(h[f]) == where
    # batch_index picks the conditional row: the uncond row has "yellow" at the triangle's place
    uncond = maps.word_heatmaps(store, MapContext(**{**CTX.__dict__, "batch_index": 0}))
    assert peak(uncond["yellow"][0]) == (3, 0)


def test_word_heatmaps_repeated_word_and_bad_positions():
    store = {(0, "blocks.0.cross", "cross"): cross((1, 2), (3, 0))}
    ctx = MapContext(grid=(H, W), num_frames=F, words=[("a", [1]), ("a", [3])], batch_index=1)
    assert list(maps.word_heatmaps(store, ctx)) == ["a", "a (2)"]
    with pytest.raises(ValueError, match="outside"):
        maps.word_heatmaps(store, MapContext(grid=(H, W), num_frames=F, words=[("x", [L])]))


def test_filters_layers_steps_heads():
    store = {
        (0, "blocks.0.cross", "cross"): cross((0, 0), (3, 3)),
        (0, "blocks.1.cross", "cross"): cross((2, 2), (3, 3)),
        (5, "blocks.0.cross", "cross"): cross((2, 2), (3, 3)),
        (0, "blocks.0.spatial", "spatial"): torch.zeros(2, F, N, N),  # other kinds are ignored
    }
    y = lambda **kw: peak(maps.word_heatmaps(store, CTX, **kw)["yellow"][0])
    assert y(layers=["blocks.0"], steps=(0, 0)) == (0, 0)
    assert y(layers=["blocks.1.cross"]) == (2, 2)
    assert y(layers="blocks.0", steps=(1, 9)) == (2, 2)
    assert len(maps.select(store, kind="cross")) == 3
    assert len(maps.select(store, kind="cross", steps=5)) == 1
    assert len(maps.select(store, kind="cross", layers="cross")) == 3
    assert maps.select({(0, "blocks.10.cross", "cross"): 1}, kind="cross", layers="blocks.1") == []
    with pytest.raises(ValueError, match="no 'cross' attention"):
        maps.word_heatmaps(store, CTX, layers=["blocks.7"])
    with pytest.raises(ValueError, match="heads averaged"):
        maps.word_heatmaps(store, CTX, head=0)

    per_head = cross((1, 1), (3, 3), heads=2)
    per_head[1, 1] = cross((2, 3), (3, 3))[1]  # head 1 looks elsewhere
    hstore = {(0, "blocks.0.cross", "cross"): per_head}
    assert peak(maps.word_heatmaps(hstore, CTX, head=0)["yellow"][0]) == (1, 1)
    assert peak(maps.word_heatmaps(hstore, CTX, head=1)["yellow"][0]) == (2, 3)
    both = maps.word_heatmaps(hstore, CTX)["yellow"][0]
    assert both[1, 1] > 0.5 and both[2, 3] > 0.5  # averaged over heads
    with pytest.raises(ValueError, match="out of range"):
        maps.word_heatmaps(hstore, CTX, head=2)


def temporal_store(loc=(2, 3)):
    t = torch.randn(2, N, F, F, generator=torch.Generator().manual_seed(1))
    t[1, idx(*loc), 0, 2] += 8  # at loc, frame 0 looks at frame 2
    return {(s, f"blocks.{b}.temporal", "temporal"): t.softmax(-1) for s in (0, 1) for b in (0, 1)}


def test_temporal_matrix_rows_sum_to_one():
    store = temporal_store()
    m = maps.temporal_matrix(store, CTX)
    assert m.shape == (F, F) and m.dtype == np.float32
    np.testing.assert_allclose(m.sum(1), 1, atol=1e-5)
    at = maps.temporal_matrix(store, CTX, location=(2, 3))
    np.testing.assert_allclose(at.sum(1), 1, atol=1e-5)
    assert at[0].argmax() == 2 and at[0, 2] > 0.9
    mats = maps.temporal_matrices(store, CTX, layers=["blocks.1"])
    assert mats.shape == (N, F, F)
    np.testing.assert_allclose(mats[idx(2, 3)], at, atol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        maps.temporal_matrix(store, CTX, location=(H, 0))


def test_spatial_map_peak_and_pixel_to_grid():
    s = torch.randn(2, F, N, N, generator=torch.Generator().manual_seed(2))
    s[1, 1, idx(0, 1), idx(3, 2)] += 8
    store = {(0, "blocks.0.spatial", "spatial"): s.softmax(-1)}
    m = maps.spatial_map(store, CTX, frame=1, query=(0, 1))
    assert m.shape == (H, W) and peak(m) == (3, 2)
    assert m.sum() == pytest.approx(1, abs=1e-5)
    assert maps.pixel_to_grid(0, 0, 64, 64, (H, W)) == (0, 0)
    assert maps.pixel_to_grid(63.9, 16, 64, 64, (H, W)) == (3, 1)
    assert maps.pixel_to_grid(64, 200, 64, 64, (H, W)) == (3, 3)  # clamped


def test_audio_attention():
    c = cross((1, 2), (3, 0))
    for f in range(F):  # frame f leans on audio token f % 2
        c[1, f, :, 4 + f % 2] += 0.5
    store = {(0, "blocks.0.cross", "cross"): c}
    a = maps.audio_attention(store, CTX)
    assert a.shape == (F, 2)
    np.testing.assert_allclose(a.sum(1), 1, atol=1e-5)
    assert list(a.argmax(1)) == [f % 2 for f in range(F)]
    assert maps.audio_heatmap(store, CTX).shape == (F, H, W)
    with pytest.raises(ValueError, match="no audio"):
        maps.audio_attention(store, MapContext(grid=(H, W), num_frames=F, words=CTX.words))


def test_joint_to_temporal():
    j = torch.randn(2, F * N, F * N, generator=torch.Generator().manual_seed(3)).view(2, F, N, F, N)
    for f in range(F):  # every token of frame f looks at frame (f + 1) % F
        j[1, f, :, (f + 1) % F] += 6
    store = {(0, "blocks.0.joint", "joint"): j.reshape(2, F * N, F * N).softmax(-1)}
    m = maps.joint_to_temporal(store, CTX)
    assert m.shape == (F, F)
    np.testing.assert_allclose(m.sum(1), 1, atol=1e-5)
    assert list(m.argmax(1)) == [(f + 1) % F for f in range(F)]


def test_colormap_endpoints_and_monotone_lightness():
    assert maps.colormap(np.float32(0)).tolist() == [0, 0, 4]
    assert maps.colormap(np.array([1.0])).tolist() == [[252, 255, 164]]
    assert maps.colormap(np.array([0.0, 1.0]), "viridis").tolist() == [[68, 1, 84], [253, 231, 37]]
    assert maps.colormap(np.array([np.nan, 2.0, -1.0])).tolist() == [[0, 0, 4], [252, 255, 164], [0, 0, 4]]
    for name in maps.COLORMAPS:
        c = maps.colormap(np.linspace(0, 1, 256), name).astype(float)
        assert c.shape == (256, 3)
        luma = c @ [0.299, 0.587, 0.114]
        assert np.all(np.diff(luma) > -1.5), name  # both maps get lighter from 0 to 1
    with pytest.raises(ValueError, match="unknown colormap"):
        maps.colormap(np.zeros(2), "jet")


def test_overlay_heat_to_image_strip():
    frames = np.full((F, 32, 48, 3), 100, np.uint8)
    heat = np.zeros((F, H, W), np.float32)
    heat[:, 0, 0] = 1
    out = maps.overlay(frames, heat, alpha=0.5)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert out[0, 0, 0].sum() > out[0, -1, -1].sum()  # hot corner is brighter (inferno top is light)
    np.testing.assert_array_equal(maps.overlay(frames, heat, alpha=0.0), frames)
    full = maps.overlay(frames, np.ones((H, W)), alpha=1.0)  # (h, w) heat broadcasts over frames
    assert (full == [252, 255, 164]).all()

    img = maps.heat_to_image(np.arange(6).reshape(2, 3), scale=4)
    assert img.shape == (8, 12, 3) and img.dtype == np.uint8
    assert (img[:4, :4] == img[0, 0]).all() and img[0, 0].tolist() == [0, 0, 4]
    assert img[-1, -1].tolist() == [252, 255, 164]
    assert (maps.heat_to_image(np.ones((2, 2)), scale=1) == [0, 0, 4]).all()  # constant -> lowest color

    tiles = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 8, 8, 3), np.uint8)
    s = maps.strip(tiles, columns=2, pad=2)
    assert s.shape == (3 * 8 + 2 * 2, 2 * 8 + 2, 3)
    assert s[10, 10, 0] == 3 and s[20, 0, 0] == 4 and s[20, 10, 0] == 255 and s[8, 0, 0] == 255
    assert maps.strip(tiles, pad=0).shape == (8, 40, 3)
