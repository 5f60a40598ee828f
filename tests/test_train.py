"""Training: resume carries state over, DDP ranks agree, MP4-folder data trains."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vidgen.checkpoint import VideoModel
from vidgen.config import ModelConfig
from vidgen.train import TrainConfig, describe_hardware, export_checkpoint, lr_at, train

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = dict(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
                  context_length=24, sample_size=32, vocabulary=("a", "red", "circle", "moving", "left"))


def tiny_train_config(out: Path, **overrides) -> TrainConfig:
    cfg = dict(model=ModelConfig(**TINY_MODEL), out=str(out), num_frames=4, batch_size=2, total_steps=100,
               warmup_steps=2, eval_every=0, sample_every=0, save_every=1000, log_every=1)
    cfg.update(overrides)
    return TrainConfig(**cfg)


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(cfg, 110) == pytest.approx(1e-4)


def test_frames_curriculum():
    cfg = TrainConfig(num_frames=16, frames_schedule=[[100, 4], [200, 8]])
    assert [cfg.frames_at(s) for s in (0, 99, 100, 199, 200)] == [4, 4, 8, 8, 16]


def test_train_save_resume_carries_step_and_optimizer(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_train_config(out)
    train(cfg, max_steps=3, progress=False)
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == 3
    opt3 = load_file(out / "optimizer.safetensors")
    assert opt3 and all(torch.isfinite(v).all() for v in opt3.values())
    assert float(opt3["0.step"]) == 3  # AdamW's own step counter

    model, _ = train(cfg, resume=True, max_steps=2, progress=False)
    state = json.loads((out / "train_state.json").read_text())
    assert state["step"] == 5
    opt5 = load_file(out / "optimizer.safetensors")
    assert float(opt5["0.step"]) == 5  # continued, not restarted
    assert set(opt5) == set(opt3)
    # the saved raw weights are the returned model's
    saved = load_file(out / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(saved[k], v), k
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5]


def test_export_checkpoint_loads_in_pipeline(tmp_path):
    from vidgen.pipeline import VideoPipeline

    out = tmp_path / "run"
    train(tiny_train_config(out), max_steps=1, progress=False)
    ckpt = export_checkpoint(out, tmp_path / "ckpt", card="# card\n")
    assert (ckpt / "card.md").read_text() == "# card\n"
    pipe = VideoPipeline(VideoModel.from_pretrained(ckpt), device="cpu")
    result = pipe("a red circle moving left", num_frames=2, num_inference_steps=2, seed=0)
    assert result.frames.shape == (2, 32, 32, 3)


def test_exported_card_is_written_from_the_run(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(out, eval_every=2, eval_prompts=1, eval_steps=1), max_steps=2, progress=False)
    card = (export_checkpoint(out, tmp_path / "ckpt", evaluation_md="| metric | value |") / "card.md").read_text()
    n_params = VideoModel(ModelConfig(**TINY_MODEL)).num_parameters()
    assert f"{n_params:,} parameters" in card
    assert "Steps: 2 of a 100-step schedule, batch 2" in card
    assert "| 2 |" in card  # the judged evaluation logged at step 2 is in the training curve
    evals = [json.loads(line)["eval"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert len(evals) == 1 and {"direction_sensitivity_t990", "pure_noise_drift"} <= evals[0].keys()
    assert math.isfinite(evals[0]["pure_noise_drift"])
    assert card.rstrip().endswith("| metric | value |")
    # the run records what it trained on; the card says so instead of the caller's fallback
    hardware = json.loads((out / "train_state.json").read_text())["hardware"]
    assert hardware == [describe_hardware(torch.device("cpu"))]
    assert hardware[0].startswith("1 process x ") and f"({os.cpu_count()} CPUs)" in hardware[0]
    assert f"logged on {hardware[0]}." in card
    train(tiny_train_config(out), resume=True, max_steps=1, progress=False)  # same machine: listed once
    assert json.loads((out / "train_state.json").read_text())["hardware"] == hardware


def test_card_of_a_warm_started_run_lists_its_base_run_first(tmp_path):
    base, ft = tmp_path / "base", tmp_path / "ft"
    train(tiny_train_config(base), max_steps=3, progress=False)
    train(tiny_train_config(ft, init_from=str(base), loss_weighting="clamped_snr",
                            model=ModelConfig(**TINY_MODEL, snr_shift=0.25)), max_steps=2, progress=False)
    card = (export_checkpoint(ft, tmp_path / "ckpt", notes="Switched to 2 DDP ranks.") / "card.md").read_text()
    stage1, stage2 = card.index("### Stage 1: `base`, from scratch"), card.index("### Stage 2: `ft`, warm-started")
    assert stage1 < card.index("Steps: 3 of a 100-step schedule") < stage2 < card.index("Steps: 2 of a 100-step schedule")
    assert "loss weighting clamped_snr" in card[stage2:] and "schedule SNR shift 0.25" in card[stage2:]
    assert "SNR shift 0.25)" in card  # the architecture line describes the exported model's schedule
    assert card.index("Switched to 2 DDP ranks.") < card.index("## Evaluation")


def test_cli_preset_and_bad_config(tmp_path):
    from vidgen.train import cli

    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"model": TINY_MODEL, "out": str(tmp_path / "run"), "num_frames": 2, "batch_size": 1,
                                  "total_steps": 2, "eval_every": 0, "sample_every": 0}))
    assert cli(["--preset", str(preset)]) == 0
    assert json.loads((tmp_path / "run" / "train_state.json").read_text())["step"] == 2
    assert cli(["--resume", "--out", str(tmp_path / "nothing")]) == 2
    preset.write_text(json.dumps({"model": {"width": 33, "heads": 2}}))
    assert cli(["--preset", str(preset)]) == 2  # width not divisible by heads -> clear error, exit 2


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from safetensors.torch import save_file
        from test_train import tiny_train_config
        from vidgen.train import train
        torch.set_num_threads(1)
        cfg = tiny_train_config({str(tmp_path / "run")!r})
        model, ema = train(cfg, max_steps=3, progress=False)
        rank = int(os.environ["RANK"])
        save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, {str(tmp_path)!r} + f"/rank{{rank}}.safetensors")
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with socket.socket() as s:  # a free loopback port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={port}", str(script)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert set(w0) == set(w1)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    # and training moved the weights away from the shared initialisation
    torch.manual_seed(0)
    init = VideoModel(ModelConfig(**TINY_MODEL)).state_dict()
    assert any(not torch.equal(init[k], w0[k]) for k in w0)
    # only rank 0 wrote the run folder's metrics
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_train_two_steps_on_a_folder_of_mp4_clips(tmp_path):
    from vidgen.video_io import write_mp4
    from vidgen.world import render, synthesize_audio, video_to_uint8

    data = tmp_path / "clips"
    data.mkdir()
    for i, caption in enumerate(["a red circle moving left", "a red circle moving left"]):
        audio = synthesize_audio(i, num_frames=8) if i == 0 else None
        frames = video_to_uint8(render(caption, seed=i, num_frames=8, height=48, width=48, audio=audio).video)
        write_mp4(frames, data / f"clip{i}.mp4", fps=8, audio=audio, sample_rate=16000, upscale_to=None)
        (data / f"clip{i}.txt").write_text(caption + "\n")

    from vidgen.datasets import VideoFolder

    ds = VideoFolder(data, num_frames=4, height=32, width=32, seed=0)
    items = [ds.sample(np.random.default_rng(s)) for s in range(6)]
    assert all(it["video"].shape == (3, 4, 32, 32) for it in items)
    assert all(-1 <= it["video"].min() and it["video"].max() <= 1 for it in items)
    assert {bool(it["has_audio"]) for it in items} == {True, False}  # clip0 has a track, clip1 none

    out = tmp_path / "run"
    train(tiny_train_config(out, data=str(data)), max_steps=2, progress=False)
    assert json.loads((out / "train_state.json").read_text())["step"] == 2


@pytest.mark.parametrize("prediction_type,weighting", [("x0", "min_snr"), ("x0", "clamped_snr"), ("v", "clamped_snr"),
                                                      ("eps", "min_snr"), ("v", "none")])
def test_loss_weighting_matches_the_x0_space_reference(prediction_type, weighting):
    """Each weighting is defined in x0 space (weight w(snr) on ||x0 - x0_pred||^2); the loss must
    equal that for every prediction type, whatever the model outputs."""
    from vidgen.train import DiffusionLoss

    torch.manual_seed(0)
    model = VideoModel(ModelConfig(**TINY_MODEL, prediction_type=prediction_type, snr_shift=0.25)).eval()
    batch_size, video = 4, torch.rand(4, 3, 2, 32, 32) * 2 - 1
    token_ids, _ = model.text.tokenize(["a red circle"] * batch_size)
    batch = {"video": video, "token_ids": token_ids, "audio": None, "has_audio": None, "image": None, "has_image": None}
    loss_fn = DiffusionLoss(model, weighting)
    with torch.no_grad():
        loss = loss_fn(batch, torch.Generator().manual_seed(3))
        # replay the same draws and compute the reference in x0 space
        g = torch.Generator().manual_seed(3)
        t = torch.randint(0, 1000, (batch_size,), generator=g)
        noise = torch.randn(video.shape, generator=g)
        x_t = model.schedule.add_noise(video, noise, t)
        out = model(x_t, t, model.encode(token_ids, 2))
        x0_err = ((model.schedule.to_x0(out, x_t, t, prediction_type) - video) ** 2).mean(dim=(1, 2, 3, 4))
    ab = model.schedule.alpha_bar(t).float()
    snr = ab / (1 - ab)
    w = {"none": torch.ones_like(snr) if prediction_type == "x0" else None, "min_snr": snr.clamp(max=5),
         "clamped_snr": snr.clamp(min=1, max=5)}[weighting]
    if w is None:  # unweighted v loss: (1 + snr) times the x0 error
        w = 1 + snr
    torch.testing.assert_close(loss, (w * x0_err).mean(), rtol=2e-3, atol=1e-6)


def test_clamped_snr_refuses_eps_prediction():
    with pytest.raises(ValueError, match="clamped_snr"):
        TrainConfig(model=ModelConfig(**TINY_MODEL, prediction_type="eps"), loss_weighting="clamped_snr")
    with pytest.raises(ValueError, match="loss_weighting must be one of"):
        TrainConfig(loss_weighting="snr")


def test_init_from_warm_starts_from_a_run_or_a_checkpoint(tmp_path):
    source = tmp_path / "source"
    _, ema = train(tiny_train_config(source), max_steps=2, progress=False)
    source_ema = load_file(source / "ema.safetensors")
    # a fine-tune may change the schedule; zero steps: the weights are exactly the source's EMA
    cfg = tiny_train_config(tmp_path / "ft", init_from=str(source), model=ModelConfig(**TINY_MODEL, snr_shift=0.5))
    model, ema_ft = train(cfg, max_steps=0, progress=False)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, source_ema[name], rtol=0, atol=0)
        torch.testing.assert_close(ema_ft.state_dict()[name], source_ema[name], rtol=0, atol=0)
    assert model.schedule.snr_shift == 0.5

    export_checkpoint(source, tmp_path / "ckpt")  # an exported checkpoint works as well (model.safetensors)
    model, _ = train(tiny_train_config(tmp_path / "ft2", init_from=str(tmp_path / "ckpt")), max_steps=0, progress=False)
    exported = load_file(tmp_path / "ckpt" / "model.safetensors")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, exported[name].to(value.dtype), rtol=0, atol=0)

    with pytest.raises(ValueError, match="has no ema.safetensors or model.safetensors"):
        train(tiny_train_config(tmp_path / "ft3", init_from=str(tmp_path)), max_steps=0, progress=False)
    wider = tiny_train_config(tmp_path / "ft4", init_from=str(source), model=ModelConfig(**{**TINY_MODEL, "width": 64}))
    with pytest.raises(ValueError, match="does not fit this model's architecture"):
        train(wider, max_steps=0, progress=False)


def test_card_wall_clock_leaves_out_pauses_between_resumes():
    from vidgen.card import PAUSE_SECONDS, logged_hours

    day = 24 * 3600
    metrics = [{"time": t} for t in (0, 600, 1200, 1200 + 3 * day, 1200 + 3 * day + 900)]
    assert logged_hours(metrics) == (600 + 600 + 900) / 3600  # the 3-day stop is not training time
    assert logged_hours([{"time": 0}, {"time": PAUSE_SECONDS - 1}]) == (PAUSE_SECONDS - 1) / 3600
    assert logged_hours([{"time": 5}]) == 0.0 and logged_hours([]) == 0.0


@pytest.mark.parametrize("flag, name", [("frame_embedding", "denoiser.frame_pos"),
                                        ("text_token_skip", "text.token_skip.weight"),
                                        ("word_embedding", "denoiser.word_emb.out.weight")])
def test_zero_init_addition_warm_starts_from_a_run_without_it(tmp_path, flag, name):
    """A run without an optional zero-initialised part warm-starts a model with it: the new tensor
    starts at zero, so the fine-tune begins computing exactly what the source did; training moves it."""
    source = tmp_path / "source"
    train(tiny_train_config(source), max_steps=2, progress=False)
    base = VideoModel(ModelConfig(**TINY_MODEL)).eval()
    base.load_state_dict(load_file(source / "ema.safetensors"))
    model_cfg = ModelConfig(**TINY_MODEL, **{flag: True})
    model, _ = train(tiny_train_config(tmp_path / "ft", init_from=str(source), model=model_cfg), max_steps=0, progress=False)
    model.eval()
    added = model.get_parameter(name)
    assert torch.count_nonzero(added) == 0
    torch.manual_seed(0)
    x_t = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    t = torch.tensor([10, 900])
    ids = base.text.tokenize(["a red circle moving left", ""])[0]
    with torch.no_grad():
        expected = base(x_t, t, base.encode(ids, 4))
        torch.testing.assert_close(model(x_t, t, model.encode(ids, 4)), expected, rtol=0, atol=0)
        added[1].fill_(0.5)  # a non-zero row (frame 1 / output channel 1) changes the prediction
        assert not torch.equal(model(x_t, t, model.encode(ids, 4)), expected)

    trained, _ = train(tiny_train_config(tmp_path / "ft2", init_from=str(source), lr=1e-2, model=model_cfg),
                       max_steps=3, progress=False)
    assert torch.count_nonzero(trained.get_parameter(name)) > 0  # it receives gradient
    if flag == "frame_embedding":
        assert torch.count_nonzero(trained.denoiser.frame_pos[4:]) == 0  # rows past num_frames are unused


def test_max_seconds_stops_saves_and_resumes(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_train_config(out, save_every=1000)
    train(cfg, max_seconds=0.0, progress=False)  # out of time after the first step: saved there
    assert json.loads((out / "train_state.json").read_text())["step"] == 1
    train(cfg, resume=True, max_steps=2, progress=False)
    assert json.loads((out / "train_state.json").read_text())["step"] == 3


def test_cli_refuses_a_non_positive_time_budget(tmp_path, capsys):
    from vidgen.train import cli

    assert cli(["--out", str(tmp_path / "run"), "--max-minutes", "0"]) == 2
    assert "--max-minutes must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ low-variance (reference) targets
class ZeroModel(torch.nn.Module):
    """Stands in for VideoModel in DiffusionLoss: predicts x0 = 0 (so the loss is |target|^2) and
    records the timesteps it was called with."""

    def __init__(self, seen: list | None = None):
        super().__init__()
        tiny = VideoModel(ModelConfig(**TINY_MODEL))
        self.cfg, self.schedule, self.seen = tiny.cfg, tiny.schedule, seen if seen is not None else []

    def encode(self, *args):
        return None

    def forward(self, x_t, t, cond, image=None, has_image=None):
        self.seen.append(t.clone())
        return torch.zeros_like(x_t)


def test_posterior_mean_x0_matches_the_reference_formula():
    """Weights are softmax_k(-||x_t - alpha x0_k||^2 / (2 sigma^2)) over the valid renders."""
    from vidgen.schedules import NoiseSchedule
    from vidgen.train import posterior_mean_x0

    schedule = NoiseSchedule(snr_shift=0.25)
    g = torch.Generator().manual_seed(0)
    reference = torch.rand(3, 4, 3, 2, 4, 4, generator=g) * 2 - 1
    t = torch.tensor([999, 500, 5])
    x_t = schedule.add_noise(reference[:, 0], torch.randn(reference[:, 0].shape, generator=g), t)
    valid = torch.tensor([[True, True, True, True], [True, False, True, True], [True, True, True, True]])
    x0_hat, ess = posterior_mean_x0(schedule, x_t, t, reference, valid)
    ab = schedule.alpha_bar(t)
    for b in range(3):
        logp = torch.stack([-((x_t[b].double() - ab[b].sqrt() * reference[b, k].double()) ** 2).sum() / (2 * (1 - ab[b]))
                            for k in range(4)])
        logp[~valid[b]] = -math.inf
        w = torch.softmax(logp, 0)
        torch.testing.assert_close(x0_hat[b], torch.einsum("k,k...->...", w, reference[b].double()).float(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ess[b], (1 / (w ** 2).sum()).float(), rtol=1e-4, atol=1e-5)
    # pure noise: the plain mean of the renders; almost clean: the item itself
    torch.testing.assert_close(x0_hat[0], reference[0].mean(0), rtol=0, atol=1e-3)
    assert ess[0] > 3.99
    torch.testing.assert_close(x0_hat[2], reference[2, 0])
    assert ess[2] == pytest.approx(1.0)


@pytest.mark.parametrize("prediction_type", ["x0", "v", "eps"])
def test_reference_renders_equal_to_the_item_give_the_usual_loss(prediction_type):
    """K copies of the item itself: the posterior mean is the item, so the loss is the plain one,
    for every prediction type (the implied noise is the drawn noise)."""
    from vidgen.train import DiffusionLoss

    torch.manual_seed(0)
    model = VideoModel(ModelConfig(**TINY_MODEL, prediction_type=prediction_type)).eval()
    video = torch.rand(3, 3, 2, 32, 32) * 2 - 1
    token_ids, _ = model.text.tokenize(["a red circle"] * 3)
    batch = {"video": video, "token_ids": token_ids, "audio": None, "has_audio": None, "image": None,
             "has_image": torch.tensor([False, True, False])}
    loss_fn = DiffusionLoss(model, "min_snr")
    with torch.no_grad():
        plain = loss_fn(batch, torch.Generator().manual_seed(3))
        with_reference = loss_fn({**batch, "reference": video[:, None].expand(3, 5, *video.shape[1:])},
                                 torch.Generator().manual_seed(3))
    torch.testing.assert_close(with_reference, plain, rtol=1e-4, atol=1e-7)
    assert loss_fn.last["reference_ess"] == pytest.approx(1 + 4 * 2 / 3, rel=1e-4)  # 5, 1 (image item), 5


def test_reference_targets_at_pure_noise_are_the_mean_render_except_for_image_items(monkeypatch):
    from vidgen.train import DiffusionLoss

    reference = torch.stack([torch.full((2, 3, 2, 8, 8), v) for v in (1.0, -1.0)], dim=1)  # (B=2, K=2, ...)
    batch = {"video": reference[:, 0], "token_ids": None, "audio": None, "has_audio": None, "image": None,
             "has_image": torch.tensor([False, True]), "reference": reference}
    monkeypatch.setattr(torch, "randint", lambda low, high, size, **kw: torch.full(size, 999, dtype=torch.long))
    loss = DiffusionLoss(ZeroModel(), "none")(batch, torch.Generator().manual_seed(0))
    # text item: target = mean of +1 and -1 = 0, error 0; image item (image kept): target = +1, error 1
    assert loss.item() == pytest.approx(0.5, abs=1e-3)


def test_shapes_world_reference_renders_share_the_caption_and_audio():
    from vidgen.world import ShapesWorld

    ds = ShapesWorld(num_frames=4, height=32, width=32, p_audio=1.0, reference_renders=3)
    item = ds.sample(np.random.default_rng(0))
    assert item["reference"].shape == (3, 3, 4, 32, 32)
    torch.testing.assert_close(item["reference"][0], item["video"])
    assert not torch.equal(item["reference"][1], item["video"])  # new start positions
    # the same stream of items as without references
    plain = ShapesWorld(num_frames=4, height=32, width=32, p_audio=1.0).sample(np.random.default_rng(0))
    assert plain["caption"] == item["caption"] and torch.equal(plain["video"], item["video"])
    with pytest.raises(ValueError, match="reference_renders"):
        ShapesWorld(reference_renders=0)


def test_train_with_reference_renders_logs_their_effective_size(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(out, reference_renders=3), max_steps=2, progress=False)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(1.0 <= r["reference_ess"] <= 3.0 for r in records)
    with pytest.raises(ValueError, match="needs data 'world'"):
        tiny_train_config(out, reference_renders=3, data=str(tmp_path))
    with pytest.raises(ValueError, match="reference_renders must be >= 1"):
        tiny_train_config(out, reference_renders=0)


def test_high_noise_focus_draws_that_fraction_from_the_noisiest_steps(monkeypatch):
    from vidgen.train import DiffusionLoss

    seen = []
    batch = {"video": torch.zeros(4000, 3, 1, 1, 1), "token_ids": None, "audio": None, "has_audio": None,
             "image": None, "has_image": None}
    DiffusionLoss(ZeroModel(seen), "none", p_high_noise=0.5, high_noise_steps=40)(batch, torch.Generator().manual_seed(0))
    t = seen[0]
    assert t.min() >= 0 and t.max() <= 999
    # half from [960, 999], plus the uniform half's own 4% there
    assert (t >= 960).float().mean().item() == pytest.approx(0.5 + 0.5 * 0.04, abs=0.03)
    assert (t < 960).float().mean().item() == pytest.approx(0.5 * 0.96, abs=0.03)
    # off: the same draws as before the option existed
    seen.clear()
    DiffusionLoss(ZeroModel(seen), "none")(batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(seen[0], torch.randint(0, 1000, (4000,), generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="p_high_noise"):
        TrainConfig(p_high_noise=1.5)
    with pytest.raises(ValueError, match="high_noise_steps"):
        TrainConfig(high_noise_steps=0)
