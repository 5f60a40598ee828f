"""Progressive distillation (the target identity, a tiny run, resume, the "fast" sampler) and the
temporal-consistency loss (zero on true motion, positive on shuffled frames, trains)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from support import randomize
from test_train import TINY_MODEL, tiny_train_config
from vidgen.checkpoint import VideoModel
from vidgen.config import ModelConfig
from vidgen.distill import (DistillConfig, cli, ddim_step, distill, distillation_target, grids, stages_schedule)
from vidgen.samplers import ddim_steps
from vidgen.schedules import NoiseSchedule
from vidgen.train import consistency_loss, train, warp
from vidgen.world import ShapesWorld, motion_targets, render, synthesize_audio

SCHEDULE = NoiseSchedule("cosine", 1000)
PROMPT = "a red circle moving left"


def teacher_fn(x: torch.Tensor, t: int) -> torch.Tensor:
    """An arbitrary nonlinear "teacher" x0 prediction that depends on x and t."""
    return torch.tanh(0.8 * x + 0.3 * torch.sin(x * (t + 2) / 97.0)) * 0.9


# ------------------------------------------------------------------------------ the target
def test_schedule_of_stages():
    assert stages_schedule(32, 4) == [32, 16, 8, 4]
    assert stages_schedule(2, 1) == [2, 1]
    for bad in [(4, 4), (24, 4), (4, 8), (8, 0)]:
        with pytest.raises(ValueError, match="power of 2"):
            stages_schedule(*bad)
    student, teacher = grids(SCHEDULE, 4)
    assert student == [999, 749, 499, 249, -1] and teacher[::2] == student and len(teacher) == 9


@pytest.mark.parametrize("student_steps", [1, 4, 16])
def test_one_student_step_with_the_target_reproduces_two_teacher_ddim_steps(student_steps):
    """The paper's x~ makes one DDIM step land where two teacher DDIM steps do, at every point of the
    grid; chained, an exact student reproduces the teacher's 2N-step sample in N steps."""
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 3, 2, 4, 4, generator=g, dtype=torch.float64)
    student_grid, teacher_grid = grids(SCHEDULE, student_steps)
    # the teacher's own DDIM run (the sampler the pipeline uses), every intermediate kept
    teacher_run = list(ddim_steps(teacher_fn, x_T, teacher_grid[:-1], schedule=SCHEDULE))
    z = [x_T] + [info.x_prev for info in teacher_run]  # z[k] at teacher_grid[k]

    def exact_student(x: torch.Tensor, t: int) -> torch.Tensor:
        i = student_grid.index(t)
        tt = torch.full((x.shape[0],), t)
        t_mid, t_end = torch.full_like(tt, teacher_grid[2 * i + 1]), torch.full_like(tt, student_grid[i + 1])
        z_mid = ddim_step(x, teacher_fn(x, t), tt, t_mid, SCHEDULE)  # the batched step used in training
        z_end = ddim_step(z_mid, teacher_fn(z_mid, int(t_mid[0])), t_mid, t_end, SCHEDULE)
        return distillation_target(x, z_end, tt, t_end, SCHEDULE)

    student_run = list(ddim_steps(exact_student, x_T, student_grid[:-1], schedule=SCHEDULE))
    assert len(student_run) == student_steps and len(teacher_run) == 2 * student_steps
    for i, info in enumerate(student_run):
        torch.testing.assert_close(info.x_t, z[2 * i], rtol=0, atol=1e-9)
        torch.testing.assert_close(info.x_prev, z[2 * i + 2], rtol=0, atol=1e-9)


def test_target_as_v_and_batched_ddim_step_match_the_sampler():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 3, 2, 4, 4, generator=g, dtype=torch.float64)
    t, s = torch.tensor([999, 499, 61]), torch.tensor([874, 249, -1])
    x0 = teacher_fn(z, 0)
    batched = ddim_step(z, x0, t, s, SCHEDULE)
    for b in range(3):
        ref = next(ddim_steps(lambda x, _t: x0[b:b + 1], z[b:b + 1], [int(t[b])] + ([int(s[b])] if s[b] >= 0 else []),
                              schedule=SCHEDULE)).x_prev
        torch.testing.assert_close(batched[b:b + 1], ref, rtol=0, atol=1e-12)
    # the v target the student regresses to decodes back to x~
    x_tilde = distillation_target(z, batched, t, s, SCHEDULE)
    v = SCHEDULE.target(x_tilde, SCHEDULE.to_eps(x_tilde, z, t, "x0"), t, "v")
    torch.testing.assert_close(SCHEDULE.to_x0(v, z, t, "v"), x_tilde, rtol=0, atol=1e-10)
    torch.testing.assert_close(x_tilde, x0, rtol=0, atol=1e-9)  # a DDIM step's own x0 is its target


# ------------------------------------------------------------------------------ runs
def tiny_teacher(folder: Path) -> Path:
    torch.manual_seed(0)
    model = randomize(VideoModel(ModelConfig(**TINY_MODEL)), seed=0, std=0.02)
    return model.save_pretrained(folder)


def tiny_distill_config(tmp_path: Path, **overrides) -> DistillConfig:
    cfg = dict(teacher=str(tiny_teacher(tmp_path / "teacher")), run=str(tmp_path / "run"), start_steps=8, steps=2,
               iters_per_stage=2, batch_size=2, num_frames=2, warmup_steps=1, log_every=1, save_every=1000)
    cfg.update(overrides)
    return DistillConfig(**cfg)


def test_distill_cli_exports_a_student_the_pipeline_samples_fast(tmp_path, capsys, monkeypatch):
    from vidgen.pipeline import VideoPipeline

    teacher = tiny_teacher(tmp_path / "teacher")
    out, run = tmp_path / "student", tmp_path / "run"
    argv = ["--teacher", str(teacher), "--steps", "2", "--start-steps", "8", "--iters-per-stage", "2", "--batch-size", "2",
            "--frames", "2", "--out", str(out), "--run", str(run), "--no-progress"]
    assert cli(argv) == 0
    state = json.loads((run / "train_state.json").read_text())
    assert state["step"] == 4 and state["stage"] == 1 and state["schedule"] == [8, 4, 2]
    assert json.loads((out / "config.json").read_text())["distilled_steps"] == 2
    card = (out / "card.md").read_text()
    assert "| 1 | 8 | 4 | 2 | 3 |" in card and "| 2 | 4 | 2 | 2 | 1 |" in card  # stages, guidance baked in stage 1
    assert f"a teacher that predicts {VideoModel.from_pretrained(teacher).cfg.prediction_type}:" in card
    assert "exported" in capsys.readouterr().out
    # under torchrun only rank 0 reports: another rank must not tell the user to resume a finished run
    monkeypatch.setenv("RANK", "1")
    assert cli(["--resume", "--run", str(run), "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    assert capsys.readouterr().out == "" and not (tmp_path / "again").exists()
    monkeypatch.delenv("RANK")

    # distilling the 2-step student further must not apply guidance a second time
    with pytest.raises(ValueError, match="guidance 1"):
        distill(DistillConfig(teacher=str(out), run=str(tmp_path / "run2"), start_steps=2, steps=1), progress=False)

    pipe = VideoPipeline(VideoModel.from_pretrained(out), device="cpu")
    events = list(pipe.stream(PROMPT, sampler="fast", num_frames=2, seed=0))
    assert len(events) == 2 and {e.num_steps for e in events} == {2}
    s = events[-1].result.settings
    assert (s.sampler, s.num_inference_steps, s.guidance_scale) == ("fast", 2, 1.0)
    assert events[-1].result.frames.shape == (2, 32, 32, 3)
    # the teacher is not distilled: "fast" is refused with a clear message
    with pytest.raises(ValueError, match="distilled"):
        VideoPipeline(VideoModel.from_pretrained(teacher), device="cpu")(PROMPT, sampler="fast", num_frames=2)


def test_distill_resume_carries_stage_step_and_optimizer(tmp_path):
    cfg = tiny_distill_config(tmp_path, start_steps=4, steps=1)  # stages 4 -> 2 -> 1, 2 iterations each
    run = Path(cfg.run)
    state = lambda: json.loads((run / "train_state.json").read_text())  # noqa: E731

    distill(cfg, max_iters=1, progress=False)
    assert (state()["step"], state()["stage"], state()["student_steps"]) == (1, 0, 2)
    assert float(load_file(run / "optimizer.safetensors")["0.step"]) == 1
    teacher0 = load_file(run / "teacher.safetensors")

    distill(cfg, resume=True, max_iters=1, progress=False)  # finishes stage 1
    assert (state()["step"], state()["stage"]) == (2, 0)
    assert float(load_file(run / "optimizer.safetensors")["0.step"]) == 2  # carried over, not restarted
    ema_end_of_stage0 = load_file(run / "ema.safetensors")
    assert all(torch.equal(teacher0[k], v) for k, v in load_file(run / "teacher.safetensors").items())

    student, ema = distill(cfg, resume=True, max_iters=1, progress=False)  # enters stage 2
    assert (state()["step"], state()["stage"], state()["student_steps"], state()["teacher_steps"]) == (3, 1, 1, 2)
    assert json.loads((run / "config.json").read_text())["distilled_steps"] == 1
    assert float(load_file(run / "optimizer.safetensors")["0.step"]) == 1  # a fresh optimizer per stage
    teacher1 = load_file(run / "teacher.safetensors")  # the new teacher is stage 1's EMA student
    assert all(torch.equal(ema_end_of_stage0[k], v) for k, v in teacher1.items())
    assert state()["guidance_scale"] == 1.0  # only the first teacher is guided
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


@pytest.mark.parametrize("prediction_type", ["v", "x0"])  # presets/shapes.json trains an x0 model
def test_distill_trains_v_and_x0_students(tmp_path, prediction_type):
    torch.manual_seed(0)
    model = randomize(VideoModel(ModelConfig(**{**TINY_MODEL, "prediction_type": prediction_type})), std=0.02)
    folder = model.save_pretrained(tmp_path / "teacher")
    cfg = DistillConfig(teacher=str(folder), run=str(tmp_path / "run"), start_steps=2, steps=1, iters_per_stage=2,
                        batch_size=2, num_frames=2, warmup_steps=1, log_every=1, guidance_scale=1.0)
    student, _ = distill(cfg, progress=False)
    losses = [json.loads(x)["loss"] for x in (Path(cfg.run) / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] > 0
    assert student.cfg.prediction_type == prediction_type and student.cfg.distilled_steps == 1
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in student.state_dict().items())


def test_distill_refuses_an_eps_teacher_and_a_bad_schedule(tmp_path):
    torch.manual_seed(0)
    folder = VideoModel(ModelConfig(**{**TINY_MODEL, "prediction_type": "eps"})).save_pretrained(tmp_path / "eps")
    with pytest.raises(ValueError, match="v- or x0-prediction"):
        distill(DistillConfig(teacher=str(folder), run=str(tmp_path / "run"), start_steps=4, steps=2), progress=False)
    with pytest.raises(ValueError, match="power of 2"):
        DistillConfig(start_steps=12, steps=4)
    assert cli(["--teacher", str(folder), "--steps", "3", "--start-steps", "8", "--out", str(tmp_path / "o"),
                "--run", str(tmp_path / "r"), "--no-progress"]) == 2


# ------------------------------------------------------------------------------ consistency loss
CAPTIONS = ["a red circle moving left", "a big blue square moving up quickly",
            "a small green triangle moving right slowly and a white square moving down"]


@pytest.mark.parametrize("caption", CAPTIONS + ["audio"])
def test_consistency_loss_is_zero_on_true_motion_and_positive_on_shuffled_frames(caption):
    audio = synthesize_audio(3, num_frames=8) if caption == "audio" else None  # the object pulses too
    r = render("a red circle moving down" if audio is not None else caption, seed=1, num_frames=8, height=32,
               width=32, audio=audio)
    m = motion_targets(r)
    assert m["shift"].shape == (7, 2) and m["object_mask"].shape == m["static_mask"].shape == (8, 32, 32)
    assert m["object_mask"].any() and m["static_mask"].any()
    args = (m["shift"][None], m["object_mask"][None], m["static_mask"][None])
    assert float(consistency_loss(r.video[None], *args)) < 1e-10  # sub-pixel shifts included
    shuffled = r.video[:, [3, 0, 6, 1, 7, 2, 5, 4]][None]
    assert float(consistency_loss(shuffled, *args)) > 1e-2


def test_consistency_loss_on_textured_content_with_integer_shifts():
    """Away from flat colours, the warp itself: content rolled by an integer shift per frame."""
    g = torch.Generator().manual_seed(0)
    frame = torch.randn(3, 24, 24, generator=g)
    shifts = [(1, -2), (0, 1), (-2, 0)]
    frames = [frame]
    for dy, dx in shifts:
        frames.append(torch.roll(frames[-1], shifts=(dy, dx), dims=(1, 2)))
    video = torch.stack(frames, dim=1)[None]  # (1, 3, 4, 24, 24)
    inside = torch.zeros(4, 24, 24, dtype=torch.bool)
    inside[:, 4:-4, 4:-4] = True  # away from the wrap-around
    none = torch.zeros_like(inside)
    shift = torch.tensor(shifts, dtype=torch.float32)[None]
    assert float(consistency_loss(video, shift, inside[None], none[None])) < 1e-10
    assert float(consistency_loss(video, shift + 0.5, inside[None], none[None])) > 0.1  # wrong motion
    # rows without known motion (MP4 folders) contribute nothing
    assert float(consistency_loss(video, shift + 0.5, inside[None], inside[None], torch.tensor([False]))) == 0
    torch.testing.assert_close(warp(frame[None], torch.tensor([[1.0, -2.0]]))[0, :, 4:-4, 4:-4],
                               frames[1][:, 4:-4, 4:-4])


def test_world_items_carry_their_motion_and_collate():
    ds = ShapesWorld(num_frames=4, height=32, width=32, p_two=0.5, p_audio=0.5, seed=2)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["shift"].shape == (3, 3, 2) and batch["object_mask"].shape == (3, 4, 32, 32)
    assert batch["static_mask"].dtype == torch.bool and batch["has_motion"].all()
    loss = consistency_loss(batch["video"], batch["shift"], batch["object_mask"], batch["static_mask"], batch["has_motion"])
    assert float(loss) < 1e-10


def test_training_with_the_consistency_loss(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(out, consistency_weight=0.5), max_steps=2, progress=False)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert all(np.isfinite(r["consistency"]) and r["consistency"] >= 0 and np.isfinite(r["loss"]) for r in lines)
    assert json.loads((out / "train_config.json").read_text())["consistency_weight"] == 0.5
    with pytest.raises(ValueError, match="consistency_weight"):
        tiny_train_config(out, consistency_weight=-1.0)
