"""The app's helpers (vidgen/ui) and build_demo, without a server. Tiny random model, a few steps."""

from __future__ import annotations

import ast
import json
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image
import pytest
import torch

from vidgen.ui import gpu, text, views
from vidgen.ui.engine import Defaults, Engine, OutputDir, make_request, progress_bar
from vidgen.ui.explorer import ExplorerData, Selection, content_words, render_all
from vidgen.video_io import read_npz, read_video

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py lives at the repository root
    sys.path.insert(0, str(ROOT))

TINY_APP = dict(width=32, heads=2, depth=2, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
                context_length=16, sample_size=32, num_frames=4, max_frames=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from vidgen.checkpoint import VideoModel
    from vidgen.config import ModelConfig
    from vidgen.world import VOCABULARY

    torch.manual_seed(0)
    model = VideoModel(ModelConfig(**TINY_APP, vocabulary=VOCABULARY))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = model.save_pretrained(tmp_path_factory.mktemp("ckpt"))
    (folder / "card.md").write_text("# tiny\ntrained on nothing\n")
    return folder


@pytest.fixture(scope="module")
def engine(checkpoint) -> Engine:
    return Engine(str(checkpoint))


@pytest.fixture(scope="module")
def run(engine):
    """All updates of one generation with image and audio (3 steps)."""
    req = make_request("a red circle moving left", image=str(text.ASSETS / "example_first_frame.png"),
                       audio=str(text.ASSETS / "example_beats.wav"), seed=5, random_seed=False, steps=3)
    return list(engine.generate(req))


# ------------------------------------------------------------------------------------------ views

def test_frame_grid_is_crisp_and_clicks_map_back():
    frames = np.random.default_rng(0).integers(0, 256, (10, 6, 5, 3), dtype=np.uint8)
    img, layout = views.frame_grid(frames, scale=3, pad=2)
    assert layout.columns == 5 and img.shape == (2 * 18 + 2, 5 * 15 + 4 * 2, 3)
    y, x = layout.origin(7)
    np.testing.assert_array_equal(img[y: y + 18: 3, x: x + 15: 3], frames[7])  # nearest, no blur
    np.testing.assert_array_equal(img[y + 1: y + 18: 3, x + 2: x + 15: 3], frames[7])
    assert layout.locate(x + 3 * 4 + 1, y + 3 * 2) == (7, 2.0, 4 + 1 / 3)
    assert layout.locate(15, 0) is None  # the padding between frames
    assert layout.locate(0, 1000) is None
    assert views.default_columns(16) == 8 and views.default_columns(9) == 5 and views.default_columns(3) == 3


def test_view_pictures_are_uint8_images():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    heat = {"red": rng.random((4, 2, 2)), "circle": rng.random((4, 2, 2))}
    live = views.live_attention_image(frames, heat)
    assert live.dtype == np.uint8 and live.ndim == 3
    assert views.live_attention_image(frames, {}) is None
    mat = rng.random((4, 4))
    both = views.temporal_image(mat / mat.sum(1, keepdims=True), -np.abs(np.subtract.outer(range(4), range(4))), 0.5)
    assert both.shape[1] > 3 * 4 * 20
    assert views.temporal_image(None, None, None) is None
    sound = views.sound_image(mat, np.array([0.1, 0.5, 1.0, 0.0]))
    assert sound.shape[0] > views.sound_image(mat, None).shape[0]  # the loudness bars
    img, layout = views.spatial_image(frames, rng.random((4, 2, 2)), frame=1, cell=(0, 1), grid=(2, 2))
    y, x = layout.origin(1)
    assert tuple(img[y - 1, x]) == views.HIGHLIGHT  # the clicked frame is framed


def test_streamed_pictures_round_trip(tmp_path):
    """The per-step pictures are written with fast encoder settings: PNG stays lossless, WebP and JPEG
    decode to the same size (they are lossy; JPEG stays close on a smooth picture), and all are real
    files of their format."""
    from PIL import Image

    img = np.random.default_rng(2).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    png = views.write_image(img, tmp_path / "preview.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im.convert("RGB")), img)
    webp = views.write_image(img, tmp_path / "attention.webp")
    with Image.open(webp) as im:
        assert im.format == "WEBP" and im.size == (72, 40)
    smooth = np.zeros((40, 72, 3), dtype=np.uint8)
    smooth[8:24, 10:30] = (220, 40, 40)  # a red square on black, like a preview frame
    jpg = views.write_image(smooth, tmp_path / "preview.jpg")
    with Image.open(jpg) as im:
        assert im.format == "JPEG" and im.size == (72, 40)
        decoded = np.asarray(im.convert("RGB")).astype(int)
    # 4:4:4: the square's colour is exact to a few levels right up to its edge pixels
    assert np.abs(decoded[8:24, 10:30] - smooth[8:24, 10:30]).max() <= 12


def test_text_helpers():
    assert text.unknown_words_markdown([]) == ""
    assert "**dog**" in text.unknown_words_markdown(["dog"]) and "**cat**" in text.unknown_words_markdown(["dog", "cat"])
    assert "`red`" in text.vocabulary_markdown(("red", "circle"))
    assert "No model loaded" in text.vocabulary_markdown((), error="missing")
    assert content_words(["a", "red", "circle", "moving", "left", "a (2)"]) == ["red", "circle", "left"]
    assert content_words(["a", "and"]) == ["a", "and"]
    assert progress_bar(1, 4, width=8) == "▰▰▱▱▱▱▱▱"
    rows, labels = text.example_rows()
    assert labels == ["text only", "two objects", "image → video", "audio → video"]
    for _, image, audio in rows:
        assert all(Path(p).is_file() for p in (image, audio) if p)
    ET.fromstring((text.ASSETS / "how-it-works.svg").read_text())  # well-formed
    assert "$" not in text.diagram_html()  # gr.HTML templates treat ${...} specially


# ---------------------------------------------------------------------------------------- requests

def test_make_request_maps_ui_inputs():
    r = make_request("a red circle", seed=7.0, random_seed=False, steps=4.0, frames=3, preview="noisy sample x_t")
    assert (r.seed, r.steps, r.frames, r.preview, r.gamma) == (7, 4, 3, "xt", None)
    assert 0 <= make_request("x", random_seed=True).seed < 2**31
    assert make_request("x", override_gamma=True, gamma=0.25).gamma == 0.25
    kw = make_request("x", image="", audio=None, negative_prompt=None).pipeline_kwargs()
    assert kw["image"] is None and kw["negative_prompt"] is None and kw["record_attention"] is True
    for bad in (dict(seed=None, random_seed=False), dict(seed=1.5, random_seed=False), dict(seed=-1, random_seed=False),
                dict(steps=2.5), dict(preview="sideways"), dict(override_gamma=True, gamma="big")):
        with pytest.raises(ValueError):
            make_request("x", **bad)


def test_output_dir_sweeps_old_runs(tmp_path):
    out = OutputDir(max_age=60)
    a, b = out.new_run(), out.new_run()
    old = time.time() - 3600
    os.utime(a, (old, old))
    assert out.sweep() == 1 and not a.exists() and b.exists()


def test_gpu_is_optional():
    assert gpu.spaces is None or hasattr(gpu.spaces, "GPU")
    if gpu.spaces is None:
        fn = lambda: 1  # noqa: E731
        assert gpu.on_gpu(30)(fn) is fn and not gpu.zero_gpu()
    assert gpu.estimate_seconds(16, 25) <= gpu.estimate_seconds(16, 100) <= gpu.MAX_SECONDS
    assert gpu.estimate_seconds(1, 1) == gpu.MIN_SECONDS


def test_on_zero_gpu_the_denoiser_asks_for_seconds_from_frames_and_steps(monkeypatch):
    """With a `spaces` package present, on_gpu hands the function to spaces.GPU with a duration
    computed from the call's frames x steps (what ZeroGPU reads before lending a GPU)."""
    calls = []

    class FakeSpaces:
        @staticmethod
        def GPU(duration):  # noqa: N802 - spaces' own name
            def wrap(fn):
                def run(*args, **kwargs):
                    calls.append(duration(*args, **kwargs) if callable(duration) else duration)
                    return fn(*args, **kwargs)
                return run
            return wrap

    monkeypatch.setattr(gpu, "spaces", FakeSpaces)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert gpu.zero_gpu()
    from vidgen.ui import engine as engine_module

    wrapped = gpu.on_gpu(duration=engine_module._gpu_seconds)(lambda source, kwargs: "ran")
    assert wrapped("ckpt", {"num_frames": 16, "num_inference_steps": 25}) == "ran"
    assert wrapped("ckpt", {"num_frames": 32, "num_inference_steps": 100}) == "ran"
    assert calls == [gpu.estimate_seconds(16, 25), gpu.estimate_seconds(32, 100)]
    assert gpu.MIN_SECONDS <= calls[0] < calls[1] <= gpu.MAX_SECONDS


# ----------------------------------------------------------------------------------------- engine

def test_engine_reads_the_checkpoint_without_loading(checkpoint):
    e = Engine(str(checkpoint))
    info = e.info()
    assert info.error is None and info.config.num_frames == 4 and "tiny" in info.card
    assert e._pipe is None  # nothing loaded yet
    assert e.unknown_words("a red dog moving left, dog and cat!") == ["dog", "cat"]
    assert e.unknown_words("a red circle") == []
    assert e.fingerprint() == Engine(str(checkpoint)).fingerprint() != Engine(str(checkpoint / "nope")).fingerprint()
    missing = Engine(str(checkpoint / "nope")).info()
    assert missing.config is None and "not found" in missing.error


def test_generate_streams_steps_then_video_files_and_explorer(run, tmp_path):
    steps = [u for u in run if u.preview is not None and u.video is None]
    assert [u.step for u in steps] == [1, 2, 3] and all(u.seed == 5 for u in run)
    first_preview = np.asarray(Image.open(steps[0].preview))
    assert first_preview.dtype == np.uint8 and first_preview.shape[-1] == 3 and steps[0].attention.endswith(".jpg")
    # the 4 frames at their own 32x32 size in one row, 2 px apart (the page upscales them)
    assert first_preview.shape == (32, 4 * 32 + 3 * 2, 3) and steps[0].preview.endswith(".jpg")
    assert len({u.preview for u in steps}) == 3, "one file per step: a file is never rewritten while served"
    assert "Step 1 / 3" in steps[0].status
    video_update, done = run[-2], run[-1]
    assert video_update.video and video_update.files is None
    frames, fps, has_audio = read_video(done.video)
    assert len(frames) == 4 and fps == 8 and has_audio
    assert [Path(f).name for f in done.files] == ["vidgen.mp4", "vidgen.gif", "vidgen-maps.npz"]
    npz_frames, maps, meta = read_npz(done.files[2])
    assert npz_frames.shape == (4, 32, 32, 3) and meta["seed"] == 5 and meta["settings"]["num_inference_steps"] == 3
    assert maps["step_word/circle"].shape == (3, 4, 4, 4) and maps["step_temporal"].shape == (3, 4, 4)
    assert {"word/red", "temporal", "audio"} <= set(maps)
    assert done.preview == steps[-1].preview  # the final result is complete on its own (API users)


def test_explorer_views_for_every_selection(run):
    data: ExplorerData = run[-1].explorer
    assert data.blocks == ["blocks.0", "blocks.1"] and data.num_steps == 3 and data.heads == 2  # cross and temporal maps are recorded per head
    assert "circle" in data.words and data.default_word() == "circle" and data.loudness.shape == (4,)
    assert set(data.gates) == {"blocks.0.temporal", "blocks.1.temporal"} and data.gates == data.trained_gates
    assert all(t.dtype == torch.float16 for t in data.store.values())
    for sel in (Selection(), Selection(1, 0, 1), Selection(2, 1, 3)):
        out = render_all(data, "red", sel, (3, 1, 2))
        assert all(isinstance(img, np.ndarray) and img.dtype == np.uint8 for img in out[0::2])
        assert all(isinstance(md, str) and md for md in out[1::2])
    assert "layer 2 of 2" in render_all(data, "red", Selection(2, 0, 0), None)[1]
    assert "head 1 of 2" in data.words_view("red", Selection(head=1))[1] and "average of heads" in data.words_view("red", Selection())[1]
    assert "Gate gamma" in data.frames_view(Selection())[1]
    img, caption, layout = data.pixels_view(Selection(), None)
    y, x = layout.origin(2)
    assert data.locate_click(x + 1, y + layout.scale * 31) == (2, 3, 0)
    assert data.locate_click(-5, 0) is None
    assert render_all(None, None, Selection(), None)[1].startswith("Generate a video first")


def test_explorer_with_heads_gate_override_and_no_temporal(engine):
    """Per-head maps (faked from a real run: the pipeline averages heads), a gate override, and a run
    with temporal attention switched off."""
    base = engine.pipeline()("a red circle moving left", num_inference_steps=2, seed=1, record_attention=True,
                             temporal_gate=0.0)
    per_head = {k: torch.stack([t, t.flip(-1)], 1) for k, t in base.maps.items()}  # (B, H=2, ...)
    fake = SimpleNamespace(maps=per_head, map_context=base.map_context, settings=base.settings, frames=base.frames,
                           audio=None, fps=base.fps, sample_rate=base.sample_rate)
    data = ExplorerData.from_result(fake, engine.pipeline())
    assert data.heads == 2
    assert all(t.ndim == 4 for k, t in data.store.items() if k[2] == "spatial")  # heads averaged to save memory
    one, two = data.words_view("red", Selection(head=1)), data.words_view("red", Selection(head=2))
    assert "head 1 of 2" in one[1] and not np.array_equal(one[0], two[0])
    assert "overridden" in data.frames_view(Selection(head=2))[1] and set(data.gates.values()) == {0.0}
    assert "No audio" in data.sound_view(Selection())[1]
    off = engine.pipeline()("a red circle", num_inference_steps=1, seed=1, record_attention=True,
                            temporal_attention=False)
    no_temporal = ExplorerData.from_result(off, engine.pipeline())
    img, caption = no_temporal.frames_view(Selection())
    assert img is None and "switched off" in caption


def test_bad_input_raises_a_readable_valueerror(engine, tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"not an image")
    cases = [(dict(prompt=""), "prompt is empty"), (dict(prompt="hello world"), "none of the prompt's words"),
             (dict(prompt="a red circle", image=str(bad)), "not a readable image"),
             (dict(prompt="a red circle", sampler="euler"), "unknown sampler")]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            list(engine.generate(make_request(**kwargs, steps=1)))
    assert engine.active == 0 and not engine._run_lock.locked()


def test_closing_midway_stops_and_frees_the_model(engine):
    gen = engine.generate(make_request("a blue square moving up", steps=50, seed=0, random_seed=False))
    next(gen)
    assert engine.active == 1 and engine._run_lock.locked()
    done = engine.steps_done
    gen.close()  # what Gradio does on Stop or a dropped connection
    assert engine.active == 0 and not engine._run_lock.locked() and engine.steps_done == done
    processors = {type(p).__name__ for p in engine.pipeline().model.denoiser.attn_processors.values()}
    assert processors == {"SDPAProcessor"}  # the recorder put the fast processors back
    assert len(list(engine.generate(make_request("a red circle", steps=2)))) == 4


def test_a_stream_can_be_resumed_from_other_threads(engine):
    """Gradio runs every step of a generator on whichever worker thread is free, so the pipeline must
    not hold grad/inference mode (thread-local) across its yields; it once did."""
    gen = engine.generate(make_request("a red circle moving left", steps=3))
    updates = []

    def step():
        updates.append(next(gen, None))

    for _ in range(6):
        t = threading.Thread(target=step)
        t.start()
        t.join()
    updates = [u for u in updates if u is not None]
    assert [u.step for u in updates][:3] == [1, 2, 3] and updates[-1].files and len(updates) == 5


# ------------------------------------------------------------------------------------------- app

def test_build_demo_builds_without_launching(checkpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path))
    import app

    demo = app.build_demo(str(checkpoint), defaults=Defaults(steps=7))
    assert not demo.is_running and demo.engine._pipe is None
    assert not (ROOT / "app.pyi").exists(), "a gr component subclass in app.py makes Gradio write app.pyi"
    config = demo.get_config_file()
    deps = config["dependencies"]
    gen = next(d for d in deps if d["api_name"] == "generate")
    comps = {c["id"]: c for c in config["components"]}
    first = comps[gen["inputs"][0]]
    assert first["props"]["label"] == "Prompt" and len(gen["inputs"]) == 14
    steps = next(c for c in config["components"] if c["props"].get("label") == "Denoising steps")
    assert steps["props"]["value"] == 7
    assert any(gen["id"] in d.get("cancels", []) for d in deps), "Stop must cancel the generate event"
    page = " ".join(str(c["props"].get("value", "")) for c in config["components"])
    assert "Words this model knows" in page and "`triangle`" in page and "tiny" in page  # vocabulary, card
    public = [d["api_name"] for d in deps if d.get("api_visibility", "public") == "public" and d.get("api_name")]
    assert public == ["generate"]
    # without any checkpoint the page still builds and says what is missing
    empty = app.build_demo(str(tmp_path / "missing"))
    texts = " ".join(str(c["props"].get("value", "")) for c in empty.get_config_file()["components"])
    assert "No model loaded" in texts


def test_a_distilled_checkpoint_defaults_to_the_fast_sampler(checkpoint, monkeypatch, tmp_path):
    """In the page, for API calls that leave the sampler out, and so for the cached examples."""
    import shutil

    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "cache"))
    import app

    student = Path(shutil.copytree(checkpoint, tmp_path / "student"))
    config = json.loads((student / "config.json").read_text())
    (student / "config.json").write_text(json.dumps({**config, "distilled_steps": 2}))
    demo = app.build_demo(str(student))
    dropdown = next(c for c in demo.get_config_file()["components"] if c["props"].get("label") == "Sampler")
    assert dropdown["props"]["value"] == "fast" and ("fast", "fast") in map(tuple, dropdown["props"]["choices"])
    generate = next(f.fn for f in demo.fns.values() if f.api_name == "generate")
    *_, last = generate("a red circle moving left", random_seed=False)
    assert "2 fast steps" in last[2]  # the status line of the finished run
    plain = app.build_demo(str(checkpoint))
    dropdown = next(c for c in plain.get_config_file()["components"] if c["props"].get("label") == "Sampler")
    assert dropdown["props"]["value"] == "ddim" and ("fast", "fast") not in map(tuple, dropdown["props"]["choices"])


def test_examples_are_cached_lazily_and_outputs_expire(checkpoint, monkeypatch, tmp_path):
    """Nothing heavy at start-up: examples run on first click (lazy cache), and served files are
    deleted after 30 minutes, swept every 10 (delete_cache)."""
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path))
    import gradio as gr

    import app

    created = []

    make_examples = gr.Examples

    def recorded(*args, **kwargs):
        created.append(make_examples(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(gr, "Examples", recorded)
    demo = app.build_demo(str(checkpoint), defaults=Defaults(steps=2))
    assert demo.delete_cache == (600, 1800)
    assert len(created) == 1 and len(created[0].examples) >= 4
    assert created[0].cache_examples == "lazy"  # what Gradio stores for cache_examples=True, cache_mode="lazy"
    assert not created[0].cached_folder.exists(), "no example runs while the page is built"
    assert demo.engine._pipe is None, "nor is the model loaded"


def test_outputs_that_take_values_never_get_updates(checkpoint, monkeypatch, tmp_path):
    """In Gradio 6 every update (gr.skip() included) to an output that also takes values leaves a
    copy of the component in the session, and the files of later values are recorded on that copy,
    out of delete_cache's reach (app.py, "Updates leak"). So generate and pick send values to those
    outputs: unchanged ones get their current value again; only gr.State gets gr.skip()."""
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path))
    import gradio as gr

    import app

    def is_update(value) -> bool:  # gr.skip(), gr.update(...) and component instances are updates
        return isinstance(value, gr.components.Component) or (isinstance(value, dict) and "__type__" in value)

    demo = app.build_demo(str(checkpoint), defaults=Defaults(steps=2))
    fns = {f.name: f for f in demo.fns.values()}
    gen, pick = fns["generate"], fns["pick"]
    out = list(gen.fn("a red circle moving left", seed=3, random_seed=False, steps=2))
    for values in out:
        sent = [v for c, v in zip(gen.outputs, values, strict=True) if not isinstance(c, gr.State)]
        assert not any(is_update(v) for v in sent), values
    preview, live, status, video, files, seed, data = out[-1]
    assert "Done" in status and seed == 3 and len(files) == 3 and video == files[0] and isinstance(data, ExplorerData)
    assert out[0][3] is None and out[0][4] is None, "a new run clears the last one's video and files"
    assert [o[3] for o in out[:-1]] == [None, None, video], "the video, once there, is re-sent, not skipped"
    assert out[-2][0] == out[1][0] == preview and out[-2][1] == live, "the last step's pictures stay"

    hit = pick.fn(data, 0, 0, 0, None, SimpleNamespace(index=(1, 1)))
    assert hit[2] == (0, 0, 0) and hit[0].dtype == np.uint8 and "row 0, column 0" in hit[1]
    miss = pick.fn(data, 0, 0, 0, hit[2], SimpleNamespace(index=(-1, -1)))  # between frames: keep the cell
    assert miss[2] == hit[2] and miss[1] == hit[1] and np.array_equal(miss[0], hit[0])
    assert pick.fn(None, 0, 0, 0, None, SimpleNamespace(index=(1, 1)))[::2] == (None, None)


def test_examples_cache_is_per_checkpoint(monkeypatch):
    import app

    monkeypatch.delenv("GRADIO_EXAMPLES_CACHE", raising=False)
    with app.examples_cache("abc123"):
        assert os.environ["GRADIO_EXAMPLES_CACHE"].endswith(os.path.join("cached_examples", "abc123"))
    assert "GRADIO_EXAMPLES_CACHE" not in os.environ
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", "/tmp/x")
    with app.examples_cache("k"):
        assert os.environ["GRADIO_EXAMPLES_CACHE"] == os.path.join("/tmp/x", "k")
    assert os.environ["GRADIO_EXAMPLES_CACHE"] == "/tmp/x"


def test_launch_options_are_safe():
    import app

    opts = app.launch_options()
    assert opts["show_error"] is False and opts["enable_monitoring"] is False and opts["max_file_size"]
    assert "allowed_paths" not in opts and "server_name" not in opts and "server_port" not in opts
    assert "share" not in opts and app.QUEUE["max_size"] and app.QUEUE["default_concurrency_limit"] == 1


def test_only_app_py_imports_gradio():
    for path in sorted((ROOT / "vidgen").rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"gradio", "gradio_client"}, f"{path.relative_to(ROOT)} imports gradio"


def test_checkpoint_named_by_env_var_must_lie_under_the_allowed_root(tmp_path, monkeypatch):
    """$VIDGEN_CHECKPOINT is outside input: a folder outside $VIDGEN_CHECKPOINT_ROOT is refused,
    the same folder inside the root loads."""
    from vidgen.checkpoint import VideoModel
    from vidgen.config import ModelConfig
    from vidgen.ui.engine import Engine

    folder = tmp_path / "outside" / "ckpt"
    VideoModel(ModelConfig(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1,
                           text_heads=2, context_length=16, vocabulary=("a", "red", "circle"))).save_pretrained(folder)
    monkeypatch.setenv("VIDGEN_CHECKPOINT", str(folder))
    monkeypatch.setenv("VIDGEN_CHECKPOINT_ROOT", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    info = Engine().info()
    assert info.config is None and "outside the allowed root" in info.error
    monkeypatch.setenv("VIDGEN_CHECKPOINT_ROOT", str(tmp_path / "outside"))
    assert Engine().info().config.width == 32
