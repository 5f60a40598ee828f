"""The shapes world: caption grammar, renderer, audio, held-out combinations, dataset, eval set, CLI."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from vidgen import world
from vidgen.world import (COLORS, DIRECTIONS, HELD_OUT, SHAPES, SIZE_RADIUS, SIZES, SPEED_TRAVEL, SPEEDS,
                          VOCABULARY, ObjectSpec, Scene, ShapesWorld, audio_envelope, evaluation_prompts,
                          first_frame, is_held_out, parse_caption, random_scene, render, synthesize_audio)

objects = st.builds(ObjectSpec, st.sampled_from(list(COLORS)), st.sampled_from(SHAPES),
                    st.sampled_from(DIRECTIONS), st.sampled_from(SIZES), st.sampled_from(SPEEDS))
scenes = st.builds(Scene, st.lists(objects, min_size=1, max_size=3).map(tuple))


# ----------------------------------------------------------------------------- captions


@settings(max_examples=100, deadline=None)
@given(scenes, st.sampled_from([" ", "  ", "\t", " \n "]), st.booleans())
def test_caption_round_trip(scene, space, upper):
    assert parse_caption(scene.caption) == scene
    messy = space + space.join(scene.caption.split()) + space
    assert parse_caption(messy.upper() if upper else messy) == scene
    assert all(word in VOCABULARY for word in scene.caption.split())


def test_canonical_caption_omits_defaults():
    scene = parse_caption("A  Big RED circle moving LEFT quickly. and a blue square moving up")
    assert scene == Scene((ObjectSpec("red", "circle", "left", "big", "quickly"), ObjectSpec("blue", "square", "up")))
    assert scene.caption == "a big red circle moving left quickly and a blue square moving up"
    assert "medium" not in VOCABULARY and "normal" not in VOCABULARY
    assert len(set(VOCABULARY)) == len(VOCABULARY)


@pytest.mark.parametrize("caption, named", [
    ("a pink circle moving left", "pink"),
    ("a red hexagon moving left and a blue star moving up", "hexagon"),
    ("a red circle moving", "ended"),
    ("a red circle left", "left"),
    ("red circle moving left", "red"),
    ("a red circle moving left quickly slowly", "slowly"),
    ("a red circle moving left and", "and"),
    ("a circle red moving left", "circle"),
    ("   ", "empty"),
])
def test_bad_captions_raise_naming_the_words(caption, named):
    with pytest.raises(ValueError, match=named):
        parse_caption(caption)


def test_object_spec_validates():
    with pytest.raises(ValueError, match="pink"):
        ObjectSpec("pink", "circle", "left")
    with pytest.raises(ValueError):
        Scene(())


# ----------------------------------------------------------------------------- rendering


def test_render_contract():
    r = render("a big red circle moving left and a small blue triangle moving up slowly", 3)
    assert r.video.shape == (3, 16, 64, 64) and r.video.dtype == torch.float32
    assert -1 <= r.video.min() and r.video.max() <= 1
    assert r.masks.shape == (2, 16, 64, 64) and r.masks.dtype == bool
    assert r.centers.shape == (2, 16, 2) and r.areas.shape == (2, 16)
    assert r.masks.any((2, 3)).all() and (r.areas > 0).all()
    assert r.scene == parse_caption(r.scene.caption)
    # the big circle's pixels carry its colour
    red = (r.video[:, 0].numpy().transpose(1, 2, 0) + 1) * 127.5
    assert np.allclose(red[r.masks[0, 0] & (r.areas[0, 0] > 0)].mean(0), COLORS["red"], atol=25)
    assert torch.equal(first_frame(r), r.video[:, 0])


def test_render_is_deterministic_per_seed():
    a, b, c = (render("a red square moving right and a green circle moving down", s) for s in (7, 7, 8))
    assert torch.equal(a.video, b.video) and np.array_equal(a.masks, b.masks)
    assert not torch.equal(a.video, c.video)


@pytest.mark.parametrize("frames, height, width",
                         [(1, 32, 32), (32, 128, 128), (5, 32, 128), (16, 48, 64), (2, 64, 64)])
def test_render_sizes_and_lengths(frames, height, width):
    r = render("a big yellow square moving down quickly and a white circle moving left", 1,
               num_frames=frames, height=height, width=width, audio=synthesize_audio(1, num_frames=frames))
    assert r.video.shape == (3, frames, height, width) and r.masks.shape == (2, frames, height, width)
    assert r.masks.any((2, 3)).all()  # both objects visible in every frame


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_motion_is_constant_velocity_inside_the_frame(direction):
    dy, dx = world.DIRECTION_VECTORS[direction]
    travels = {}
    for speed in SPEEDS:
        for seed in range(4):
            r = render(ObjectSpec("red", "square", direction, "big", speed).phrase, seed)
            step = np.diff(r.centers[0], axis=0)  # (F-1, 2)
            assert np.allclose(step, step[0], atol=1e-3)  # constant velocity
            assert np.sign(step[0, 0]) == dy and np.sign(step[0, 1]) == dx
            radius = SIZE_RADIUS["big"] * 64
            assert (r.centers[0] + 0.5 - radius >= -1e-3).all() and (r.centers[0] + 0.5 + radius <= 64 + 1e-3).all()
            assert np.allclose(r.areas[0], (2 * radius) ** 2, rtol=1e-3)  # whole object in every frame
        travels[speed] = np.abs(r.centers[0, -1] - r.centers[0, 0]).sum() / 64
    assert travels == pytest.approx(SPEED_TRAVEL, abs=1e-3)
    assert travels["quickly"] > 1.5 * travels["normal"] > 1.5 * travels["slowly"]


def test_sizes_are_ordered():
    area = {s: render(ObjectSpec("green", "circle", "up", s).phrase, 0).areas[0].mean() for s in SIZES}
    assert area["small"] * 1.5 < area["medium"] and area["medium"] * 1.5 < area["big"]


# ----------------------------------------------------------------------------- audio


def test_synthesized_audio():
    a = synthesize_audio(3)
    assert a.shape == (32000,) and a.dtype == np.float32 and np.abs(a).max() <= 1
    assert np.array_equal(a, synthesize_audio(3)) and not np.array_equal(a, synthesize_audio(4))
    env = audio_envelope(a, 16)
    assert env.shape == (16,) and env.dtype == np.float32
    assert env.max() > 3 * env.min()  # clearly varying loudness
    assert synthesize_audio(0, num_frames=24, fps=12, sample_rate=8000).shape == (16000,)


def test_audio_envelope_pads_and_trims():
    a = synthesize_audio(5)
    env = audio_envelope(a, 16)
    assert np.allclose(audio_envelope(a[:16000], 16)[:8], env[:8]) and (audio_envelope(a[:16000], 16)[8:] == 0).all()
    assert np.allclose(audio_envelope(np.concatenate([a, a]), 16), env)
    assert np.allclose(audio_envelope(np.stack([a, a], 1), 16), env, atol=1e-6)  # stereo (S, 2)
    assert audio_envelope(np.zeros(0), 4).shape == (4,)


def test_audio_drives_size():
    audio = synthesize_audio(11)
    env = audio_envelope(audio, 16)
    pulsing = render("a big blue circle moving right slowly", 2, audio=audio)
    steady = render("a big blue circle moving right slowly", 2)
    assert np.corrcoef(env, pulsing.areas[0])[0, 1] > 0.99
    assert steady.areas[0].std() < 1e-3 * steady.areas[0].mean()
    assert pulsing.areas[0].max() > 1.5 * pulsing.areas[0].min()
    assert pulsing.areas[0].mean() == pytest.approx(steady.areas[0].mean(), rel=0.1)  # sizes stay comparable


# ----------------------------------------------------------------------------- held-out and sampling


def test_held_out_set_is_well_formed():
    assert any(len(c) == 2 for c in HELD_OUT) and any(len(c) == 3 for c in HELD_OUT)
    for combo in HELD_OUT:
        assert combo[0] in COLORS and combo[1] in SHAPES and combo[2:] in ((), *((d,) for d in DIRECTIONS))
    assert is_held_out("a big yellow triangle moving up") and is_held_out("a purple square moving up")
    assert not is_held_out("a purple square moving down") and not is_held_out("a yellow circle moving up")
    assert is_held_out("a red circle moving left and a green circle moving left")


def test_training_never_sees_held_out():
    rng = np.random.default_rng(0)
    sampled = [random_scene(rng) for _ in range(2000)]
    assert not any(is_held_out(s) for s in sampled)
    assert {len(s.objects) for s in sampled} == {1, 2}
    assert all(len({o.color for o in s.objects}) == len(s.objects) for s in sampled)
    unfiltered = [random_scene(rng, exclude_held_out=False) for _ in range(2000)]
    assert sum(map(is_held_out, unfiltered)) > 50  # the filter is doing something
    items = itertools.islice(iter(ShapesWorld(num_frames=2, height=32, width=32, seed=5)), 300)
    assert not any(is_held_out(item["caption"]) for item in items)


# ----------------------------------------------------------------------------- dataset


def _foreground(video: torch.Tensor) -> np.ndarray:
    """(F,) total difference from the background: proportional to the objects' (anti-aliased) area."""
    bg = torch.tensor(world.BACKGROUND).float().div(127.5).sub(1)[:, None, None, None]
    return (video - bg).abs().sum((0, 2, 3)).numpy()


def test_dataset_items_and_collate():
    ds = ShapesWorld(num_frames=8, height=32, width=32, p_audio=0.5, p_image=0.5, seed=1)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["video"].shape == (4, 3, 8, 32, 32) and batch["audio"].shape == (4, 16000)
    assert batch["image"].shape == (4, 3, 32, 32) and batch["has_audio"].dtype == torch.bool
    assert len(batch["caption"]) == 4 and batch["has_image"].shape == (4,)
    for item in itertools.islice(iter(ds), 24):
        area = _foreground(item["video"])
        if item["has_audio"]:
            assert item["audio"].abs().max() > 0.1 and area.max() > 1.3 * area.min()
        else:
            assert (item["audio"] == 0).all() and area.max() < 1.05 * area.min()
        if item["has_image"]:
            assert torch.equal(item["image"], item["video"][:, 0])
        else:
            assert (item["image"] == 0).all()


def _captions(loader, n=6):
    return [b["caption"] for b in itertools.islice(iter(loader), n)]


def test_dataset_streams_are_seeded_and_worker_safe():
    make = lambda seed, **kw: ShapesWorld(num_frames=2, height=32, width=32, seed=seed, **kw)  # noqa: E731
    loader = lambda ds: DataLoader(ds, batch_size=None, num_workers=2)  # noqa: E731
    a, b = _captions(loader(make(3))), _captions(loader(make(3)))
    assert a == b  # same seed -> same stream
    workers = [a[0::2], a[1::2]]  # the loader alternates between the two workers
    assert workers[0] != workers[1]
    assert workers[0] == _captions(make(3), 3)  # worker 0 continues the single-process stream
    ranks = [_captions(make(3, rank=r, world_size=2)) for r in (0, 1)]
    assert ranks[0] != ranks[1] and _captions(make(4)) != _captions(make(3))
    with pytest.raises(ValueError):
        make(0, rank=2, world_size=2)


# ----------------------------------------------------------------------------- evaluation set


def test_evaluation_prompts_are_fixed_and_categorised():
    a, b = evaluation_prompts(6), evaluation_prompts(6)
    assert [(p.category, p.caption, p.seed) for p in a] == [(p.category, p.caption, p.seed) for p in b]
    assert [p.category for p in a] == [c for c in world.EVAL_CATEGORIES for _ in range(6)]
    for p in a:
        scene = parse_caption(p.caption)
        assert is_held_out(scene) == (p.category == "held_out")
        assert (len(scene.objects) == 2) if p.category == "two" else p.category == "image" or len(scene.objects) == 1
        assert (p.audio is not None) == (p.category == "audio") and (p.image is not None) == (p.category == "image")
        if p.audio is not None:
            assert np.array_equal(p.audio, synthesize_audio(p.seed))
        if p.image is not None:
            assert torch.equal(p.image, first_frame(render(p.caption, p.seed)))
    assert len({p.caption for p in evaluation_prompts(40)}) > 150


# ----------------------------------------------------------------------------- CLI


def test_cli_writes_a_png_grid(tmp_path, capsys):
    out = tmp_path / "world.png"
    assert world.cli(["--n", "3", "--out", str(out), "--frames", "4", "--size", "32", "--seed", "2"]) == 0
    assert Image.open(out).size == (4 * 32 + 3 * 2, 3 * 32 + 2 * 2)  # rows = videos, columns = frames
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln[:3].strip().isdigit()]
    assert len(lines) == 3
    for line in lines:
        parse_caption(line.split(":", 1)[1].split("[")[0])


def test_cli_tiles_videos_for_gif(tmp_path, monkeypatch):
    from vidgen import video_io

    written = {}
    monkeypatch.setattr(video_io, "write_gif", lambda frames, path, fps: written.update(frames=frames, fps=fps))
    assert world.cli(["--n", "4", "--out", str(tmp_path / "w.gif"), "--frames", "3", "--size", "32"]) == 0
    assert written["frames"].shape == (3, 66, 66, 3) and written["frames"].dtype == np.uint8 and written["fps"] == 8
