"""vidgen.evaluate: report structure on a tiny random model, wiring checked with an oracle, the CLI."""

import json
import types

import huggingface_hub.constants
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidgen import cli, world
from vidgen.checkpoint import VideoModel
from vidgen.config import ModelConfig
from vidgen.evaluate import OPPOSITE, direction_sensitivity, evaluate, pure_noise_drift, report_markdown
from vidgen.judge import ATTRIBUTES
from vidgen.maps import MapContext
from vidgen.pipeline import VideoPipeline

TINY = dict(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
            context_length=16, vocabulary=world.VOCABULARY, num_frames=4, sample_size=32)
TOP_KEYS = {"settings", "counts", "seeds", "overall", "categories", "timing", "prompts"}
OVERALL_KEYS = {"single_attribute_accuracy", "single_all_correct", "two_object_both_correct",
                "two_object_attribute_accuracy", "held_out_all_correct", "held_out_color_shape",
                "held_out_attribute_accuracy", "count_accuracy", "temporal_stability", "stable_rate",
                "audio_size_corr_median", "first_frame_psnr_mean", "attention_pointing", "attention_iou",
                "n_attention"}


def tiny_model(**overrides) -> VideoModel:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VideoModel(ModelConfig(**{**TINY, **overrides}))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def check_structure(report, n, *, num_frames, size):
    assert set(report) - {"diagnostics"} == TOP_KEYS
    assert set(report["overall"]) == OVERALL_KEYS
    assert set(report["categories"]) == set(world.EVAL_CATEGORIES)
    assert report["counts"] == {"total": n * len(world.EVAL_CATEGORIES), **{c: n for c in world.EVAL_CATEGORIES}}
    # exactly the evaluation set's prompts and seeds, in order
    expected = world.evaluation_prompts(n, report["settings"]["seed"], num_frames=num_frames, height=size, width=size)
    assert [(r["category"], r["caption"], r["seed"]) for r in report["prompts"]] == [
        (p.category, p.caption, p.seed) for p in expected]
    assert report["seeds"] == {c: [p.seed for p in expected if p.category == c] for c in world.EVAL_CATEGORIES}
    for c in world.EVAL_CATEGORIES:
        assert report["categories"][c]["n"] == n
    for key in ("single_attribute_accuracy", "two_object_attribute_accuracy", "held_out_attribute_accuracy"):
        assert set(report["overall"][key]) == set(ATTRIBUTES)
    t = report["timing"]
    assert t["mean_seconds_per_video"] > 0 and t["median_seconds_per_video"] > 0 and t["total_seconds"] > 0
    s = report["settings"]
    assert s["n_per_category"] == n and s["num_frames"] == num_frames and s["height"] == s["width"] == size
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN, no numpy types


def test_tiny_model_report_is_well_formed():
    pipe = VideoPipeline(tiny_model(), device="cpu")
    report = evaluate(pipe, n_per_category=1, num_inference_steps=2, progress=False)
    check_structure(report, 1, num_frames=4, size=32)
    s = report["settings"]
    assert s["num_inference_steps"] == 2 and s["sampler"] == "ddim" and s["guidance_scale"] == 3.0  # pipeline default
    for row in report["prompts"]:
        assert set(row) == {"category", "caption", "seed", "seconds", "warnings", "judge"}
        assert row["judge"]["caption"] == row["caption"]
    assert report["categories"]["image"]["n_image"] == 1  # the first frame was judged
    assert report["overall"]["first_frame_psnr_mean"] is not None
    sens = report["diagnostics"]["direction_sensitivity"]
    assert [r["t"] for r in sens["timesteps"]] == [999, 980, 960, 900] and sens["n"] == 24
    md = report_markdown(report)
    assert md.startswith("# vidgen evaluation")
    for text in ("## Headline", "## Per category", "two objects: both fully correct", *world.EVAL_CATEGORIES,
                 str(report["seeds"]["audio"][0]), "does the model read the direction word",
                 "does the first step move the object the right way"):
        assert text in md


def test_direction_sensitivity_against_a_reference_and_a_model_blind_to_direction():
    model = tiny_model().eval()
    sens = direction_sensitivity(model, n=3, seed=5, timesteps=(900,), batch_size=2)
    row = sens["timesteps"][0]
    # reference: the same renders, noise and formula, written out for the true captions
    rng = np.random.default_rng(5)
    scenes = []
    for _ in range(3):
        scene = world.random_scene(rng, p_two=0.0)
        scenes.append((scene, world.render(scene, int(rng.integers(2**31)), num_frames=4, height=32, width=32).video))
    x0 = torch.stack([v for _, v in scenes])
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5))
    x_t = model.schedule.add_noise(x0, noise, 900)
    with torch.no_grad():
        cond = model.encode(model.text.tokenize([s.caption for s, _ in scenes])[0], 4)
        pred = model.schedule.to_x0(model(x_t, torch.full((3,), 900), cond), x_t, 900, model.cfg.prediction_type)
    assert row["mse"]["true"] == pytest.approx(((pred - x0) ** 2).mean().item(), rel=1e-5)
    assert abs(row["opposite_vs_true"]) > 1e-6  # this random model does tell "left" from "right"
    # A vocabulary without direction words maps them all to the one unknown row: blind to direction.
    blind = tiny_model(vocabulary=tuple(w for w in world.VOCABULARY if w not in world.DIRECTIONS))
    blind_row = direction_sensitivity(blind, n=3, seed=5, timesteps=(900,))["timesteps"][0]
    assert blind_row["opposite_vs_true"] == 0.0 and blind_row["empty_vs_true"] != 0.0


class _Captions(list):
    def to(self, device):
        return self


class DriftStub(torch.nn.Module):
    """A stand-in model (x0 prediction) whose pure-noise prediction is the mean of the caption's renders,
    of the caption with the opposite direction (mode "flip"), or that mean averaged over frames ("static")."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode, self.anchor = mode, torch.nn.Parameter(torch.zeros(()))
        self.cfg = ModelConfig(**{**TINY, "prediction_type": "x0"})
        self.schedule = tiny_model(prediction_type="x0").schedule
        self.text = types.SimpleNamespace(tokenize=lambda captions: (_Captions(captions),))

    def encode(self, captions, num_frames):
        return captions

    def forward(self, x_t, t, captions):
        out = []
        for cap in captions:
            if self.mode == "flip":
                cap = " ".join(OPPOSITE.get(w, w) for w in cap.split())
            mean = torch.stack([world.render(cap, 1000 + i, num_frames=4, height=32, width=32).video
                                for i in range(16)]).mean(0)
            out.append(mean.mean(1, keepdim=True).expand_as(mean) if self.mode == "static" else mean)
        return torch.stack(out)


@pytest.mark.parametrize("mode, ratio", [("follow", 1.0), ("flip", -1.0), ("static", 0.0)])
def test_pure_noise_drift_measures_travel_along_the_direction(mode, ratio):
    drift = pure_noise_drift(DriftStub(mode), n_noise=2, n_renders=16)
    assert drift["t"] == 999 and [r["caption"].split()[5] for r in drift["rows"]] == list(world.DIRECTIONS)
    for r in drift["rows"]:  # every render travels the full step, so their mean does: 0.5 of 32 px
        assert r["data_travel"] == pytest.approx(world.SPEED_TRAVEL["quickly"] * 32, abs=0.2)
    assert drift["ratio"] == pytest.approx(ratio, abs=0.02)


def test_pure_noise_drift_of_a_real_model_restores_its_mode():
    model = tiny_model().train()
    drift = pure_noise_drift(model, n_noise=2, n_renders=4)
    assert model.training and len(drift["rows"]) == 4 and np.isfinite(drift["ratio"])


class OraclePipeline:
    """Stands in for VideoPipeline and returns the ground-truth render of each prompt, with cross-attention
    that puts every word on the objects: a perfect model, so the wiring (seeds, audio, image, maps) shows."""

    def __init__(self):
        self.cfg = ModelConfig(**{**TINY, "num_frames": 8, "sample_size": 64})
        self.device, self.source, self.calls = "cpu", "oracle", []

    def __call__(self, prompt, *, seed, image=None, audio=None, num_frames, height, width, record_attention, **kw):
        self.calls.append(dict(prompt=prompt, seed=seed, image=image, audio=audio, **kw))
        samples = None if audio is None else audio[1]
        r = world.render(prompt, seed, num_frames=num_frames, height=height, width=width, audio=samples)
        frames = np.round((r.video.numpy() + 1) * 127.5).astype(np.uint8).transpose(1, 2, 3, 0)
        k = self.cfg.downsample
        cover = F.avg_pool2d(torch.from_numpy(r.masks).float(), k).flatten(2)  # (objects, F, N) on the grid
        words = prompt.split()
        cross = torch.full((1, num_frames, cover.shape[2], len(words) + 2), 1e-3)
        obj = 0
        for i, w in enumerate(words):  # each word attends to the object its phrase describes
            obj += w == "and"
            cross[0, :, :, i + 1] += cover[obj]
        ctx = MapContext(grid=(height // k, width // k), num_frames=num_frames,
                         words=[(w, [i + 1]) for i, w in enumerate(words)])
        settings = types.SimpleNamespace(guidance_scale=kw.get("guidance_scale", 3.0))
        return types.SimpleNamespace(frames=frames, fps=8, settings=settings, warnings=[],
                                     maps={(0, "blocks.0.cross", "cross"): cross} if record_attention else None,
                                     map_context=ctx)


def test_oracle_scores_high_so_the_wiring_is_right():
    pipe = OraclePipeline()
    report = evaluate(pipe, n_per_category=2, num_inference_steps=3, guidance_scale=5.0, progress=False)
    check_structure(report, 2, num_frames=8, size=64)
    by_category = {}
    for call, row in zip(pipe.calls, report["prompts"]):
        by_category.setdefault(row["category"], []).append(call)
        assert call["seed"] == row["seed"] and call["guidance_scale"] == 5.0 and call["num_inference_steps"] == 3
    assert all(c["audio"] is not None and c["audio"][0] == 16000 for c in by_category["audio"])
    assert all(c["image"] is not None and c["image"].shape == (64, 64, 3) and c["image"].dtype == np.uint8
               for c in by_category["image"])
    assert all(c["audio"] is None and c["image"] is None for c in by_category["single"] + by_category["two"])
    o = report["overall"]
    assert o["single_all_correct"] == 1.0 and o["two_object_both_correct"] == 1.0
    assert o["held_out_all_correct"] == 1.0
    assert o["first_frame_psnr_mean"] > 40  # the image is the render's first frame
    assert o["audio_size_corr_median"] > 0.5  # the render pulses with the audio
    assert o["attention_pointing"] == 1.0 and o["attention_iou"] > 0.5
    assert report["settings"]["guidance_scale"] == 5.0


def test_cli_writes_markdown_and_json(tmp_path, capsys):
    folder = tiny_model().save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "reports" / "tiny.md"
    rc = cli.main(["evaluate", "--checkpoint", str(folder), "--n", "1", "--steps", "2", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "reports" / "tiny.json").read_text())
    check_structure(report, 1, num_frames=4, size=32)
    assert out.read_text() == report_markdown(report)
    assert str(out) in capsys.readouterr().out


def test_cli_missing_checkpoint_exits_2(tmp_path, capsys):
    rc = cli.main(["evaluate", "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "r.md")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "r.md").exists()


def test_bad_n_is_refused():
    with pytest.raises(ValueError, match="n_per_category"):
        evaluate(OraclePipeline(), n_per_category=0, progress=False)
