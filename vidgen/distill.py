"""Progressive distillation (Salimans & Ho, 2022): a few-step student for the "fast" sampler.

    python -m vidgen distill --teacher checkpoints/vidgen-shapes --steps 4 --out checkpoints/vidgen-shapes-4step
    python -m vidgen distill ... --resume                  # continue the run folder (--run)
    torchrun --nproc_per_node=2 -m vidgen distill ...      # DDP, like training

Stages halve the step count: with --start-steps 32 and --steps 4 the stages are 32 -> 16, 16 -> 8
and 8 -> 4. In each stage the student starts as a copy of its teacher and learns to do in one DDIM
step what the teacher does in two. Per iteration: x0 from the training data (`train.make_dataset` /
`train.prepare_batch`, conditioning dropout included), a student timestep t drawn uniformly from
the student's grid `schedule.timesteps(N)` (which is every other point of the teacher's grid
`schedule.timesteps(2N)`: t -> t' -> t'', t'' = -1 at the last step), z_t = alpha_t x0 + sigma_t eps,
two deterministic teacher DDIM steps z_t -> z_t' -> z_t'', and the target

    x~ = (z_t'' - (sigma_t''/sigma_t) z_t) / (alpha_t'' - (sigma_t''/sigma_t) alpha_t)

the x0 with which ONE DDIM step from z_t lands exactly on z_t'' (DDIM: z_s = alpha_s x0 +
sigma_s (z_t - alpha_t x0) / sigma_t; solve for x0). For a v-prediction student it becomes
v~ = alpha_t eps~ - sigma_t x~ with eps~ = (z_t - alpha_t x~) / sigma_t, and the loss is the
paper's truncated-SNR weighting max(snr, 1) ||x^ - x~||^2, which in v is
max(snr, 1) / (snr + 1) ||v^ - v~||^2 (x^ - x~ = -sigma_t (v^ - v~), sigma_t^2 = 1 / (1 + snr)).
An x0-prediction student (what presets/shapes.json trains) regresses x~ itself with weight
max(snr, 1). eps-prediction is refused: its x0 = (z - sigma eps) / alpha blows up at the noisiest
step, which few-step sampling relies on most (Salimans & Ho, sec. 4).
The teacher's x0 predictions are clamped to [-1, 1], as the pipeline does when sampling.

Guidance: the first stage's teacher is the original model WITH classifier-free guidance at a fixed
scale (--guidance, default 3.0 = the pipeline's default), in the pipeline's form (unconditional row:
empty text, no audio, same image). The student is a single unguided model, so the guidance is baked
in (as in Meng et al., 2023, "On distillation of guided diffusion models", with w fixed) and every
later stage distills an unguided teacher. This is what makes "fast" fast twice over: N/25 of the
steps and one model row per step instead of two. The student samples with guidance 1.0.

Each stage's teacher is the previous stage's EMA student; the student restarts from it with a fresh
optimizer and a learning rate that warms up and then decays linearly to 0 over the stage.

The run folder has the training run's layout (`train.save_run`: config.json with the student's
`distilled_steps`, train_config.json (data and optimizer settings as a TrainConfig),
model/ema/optimizer .safetensors, train_state.json with the step and the stage, metrics.jsonl), plus
distill_config.json and teacher.safetensors (the current stage's teacher). At the end the EMA
student is exported (`train.export_checkpoint`) with a card.md recording the schedule.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import VideoModel
from .config import ModelConfig, from_dict, to_dict
from .schedules import NoiseSchedule
from .train import (DistInfo, TrainConfig, _load_optimizer, export_checkpoint, init_distributed,
                    make_dataset, make_optimizer, optimizer_step, prepare_batch, save_run)

DISTILL_CONFIG_NAME = "distill_config.json"
TEACHER_NAME = "teacher.safetensors"


@dataclasses.dataclass
class DistillConfig:
    """A progressive-distillation run. Data fields mean what they mean in TrainConfig."""

    teacher: str = "checkpoints/vidgen-shapes"  # checkpoint folder or Hub id
    run: str = "runs/distill"  # run folder (resume state)
    export: str = ""  # pipeline checkpoint written at the end ("" = none)
    start_steps: int = 32  # the first teacher's DDIM steps
    steps: int = 4  # the final student's steps; start_steps / steps must be a power of 2 (>= 2)
    iters_per_stage: int = 2000
    guidance_scale: float = 3.0  # CFG of the first teacher, baked into the student (1.0 = unguided)
    batch_size: int = 8
    num_frames: int = 0  # 0 = the teacher's num_frames
    lr: float = 2e-4
    warmup_steps: int = 100  # per stage
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    data: str = "world"
    p_drop_text: float = 0.1
    p_drop_image: float = 0.1
    p_drop_audio: float = 0.1
    p_two: float = 0.3
    p_image: float = 0.25
    p_audio: float = 0.25
    seed: int = 0
    num_workers: int = 0
    log_every: int = 25
    save_every: int = 500
    threads: int = 0

    def __post_init__(self) -> None:
        stages_schedule(self.start_steps, self.steps)  # ValueError for a bad pair
        if self.iters_per_stage < 1 or self.batch_size < 1:
            raise ValueError("iters_per_stage and batch_size must be at least 1")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a number >= 0, got {self.guidance_scale!r}")

    @property
    def schedule(self) -> list[int]:
        """Step counts, teacher first: e.g. [32, 16, 8, 4]."""
        return stages_schedule(self.start_steps, self.steps)

    @property
    def num_stages(self) -> int:
        return len(self.schedule) - 1

    @property
    def total_iters(self) -> int:
        return self.num_stages * self.iters_per_stage

    def train_config(self, model: ModelConfig) -> TrainConfig:
        """The TrainConfig view used by the shared data pipeline and the run-folder writer."""
        return TrainConfig(
            model=model, out=self.run, data=self.data, num_frames=self.num_frames or model.num_frames,
            batch_size=self.batch_size, total_steps=self.total_iters, lr=self.lr, warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay, grad_clip=self.grad_clip, ema_decay=self.ema_decay,
            p_drop_text=self.p_drop_text, p_drop_image=self.p_drop_image, p_drop_audio=self.p_drop_audio,
            p_two=self.p_two, p_image=self.p_image, p_audio=self.p_audio, seed=self.seed,
            num_workers=self.num_workers, log_every=self.log_every, eval_every=0, sample_every=0,
            save_every=self.save_every, threads=self.threads,
        )


def stages_schedule(start_steps: int, steps: int) -> list[int]:
    """[start, start/2, ..., steps]; ValueError unless start = steps * 2^k with k >= 1."""
    if isinstance(start_steps, bool) or isinstance(steps, bool) or not (isinstance(start_steps, int) and isinstance(steps, int)):
        raise ValueError(f"start_steps and steps must be integers, got {start_steps!r} and {steps!r}")
    if steps < 1 or start_steps <= steps or start_steps % steps or (start_steps // steps) & (start_steps // steps - 1):
        raise ValueError(f"start_steps / steps must be a power of 2 >= 2 (e.g. 32 -> 4), got {start_steps} -> {steps}")
    out = [start_steps]
    while out[-1] > steps:
        out.append(out[-1] // 2)
    return out


# ------------------------------------------------------------------------------ the math
def grids(schedule: NoiseSchedule, student_steps: int) -> tuple[list[int], list[int]]:
    """(student grid, teacher grid) with -1 (clean data) appended; the student's is every other
    point of the teacher's. ValueError when the two trailing grids do not nest."""
    student = schedule.timesteps(student_steps) + [-1]
    teacher = schedule.timesteps(2 * student_steps) + [-1]
    if teacher[::2] != student:
        raise ValueError(f"the {student_steps}-step grid is not every other point of the {2 * student_steps}-step "
                         f"grid for T = {schedule.num_timesteps}; choose step counts that divide it evenly")
    return student, teacher


def ddim_step(z: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, s: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """One deterministic DDIM step z_t -> z_s for per-sample timesteps t, s (B,) (s = -1: clean data);
    the same update as `samplers.ddim_steps` with eta = 0."""
    a_t, sig_t = schedule.alpha_sigma(t, z)
    a_s, sig_s = schedule.alpha_sigma(s, z)
    return a_s * x0 + sig_s * (z - a_t * x0) / sig_t


def distillation_target(z_t: torch.Tensor, z_s: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                        schedule: NoiseSchedule) -> torch.Tensor:
    """x~ such that one DDIM step z_t -> z_s with x0 = x~ lands exactly on z_s (Salimans & Ho, eq. 8):
    x~ = (z_s - (sigma_s/sigma_t) z_t) / (alpha_s - (sigma_s/sigma_t) alpha_t). Computed in float64."""
    a_t, sig_t = schedule.alpha_sigma(t, z_t.double())
    a_s, sig_s = schedule.alpha_sigma(s, z_t.double())
    ratio = sig_s / sig_t
    return ((z_s.double() - ratio * z_t.double()) / (a_s - ratio * a_t)).to(z_t.dtype)


class DistillLoss(nn.Module):
    """One forward = sample t, two teacher DDIM steps, the student's loss (what DDP syncs).

    The teacher is held outside the module tree (not a parameter DDP syncs or a state_dict entry);
    `guidance_scale` applies to the teacher (1.0 = unguided)."""

    def __init__(self, student: VideoModel, teacher: VideoModel, student_steps: int, guidance_scale: float = 1.0):
        super().__init__()
        self.model = student
        self._teacher = (teacher,)
        self.set_stage(student_steps, guidance_scale)

    @property
    def teacher(self) -> VideoModel:
        return self._teacher[0]

    def set_stage(self, student_steps: int, guidance_scale: float) -> None:
        self.student_steps, self.guidance_scale = student_steps, guidance_scale
        self.student_grid, self.teacher_grid = grids(self.model.schedule, student_steps)

    @torch.no_grad()
    def teacher_x0(self, z: torch.Tensor, t: torch.Tensor, batch: dict[str, Any], empty_ids: torch.Tensor) -> torch.Tensor:
        """The teacher's clamped x0 prediction, guided like the pipeline when guidance_scale != 1."""
        teacher, Fr = self.teacher, z.shape[2]
        cfg = teacher.cfg
        if self.guidance_scale == 1.0:
            cond = teacher.encode(batch["token_ids"], Fr, batch["audio"], batch["has_audio"])
            out = teacher(z, t, cond, batch["image"], batch["has_image"]).float()
        else:  # one call on [conditional; unconditional] rows: empty text, no audio, same image
            two = lambda x: torch.cat([x, x])  # noqa: E731
            ids = torch.cat([batch["token_ids"], empty_ids])
            has_audio = torch.cat([batch["has_audio"], torch.zeros_like(batch["has_audio"])])
            cond = teacher.encode(ids, Fr, two(batch["audio"]), has_audio)
            out = teacher(two(z), two(t), cond, two(batch["image"]), two(batch["has_image"])).float()
            c, u = out.chunk(2)
            out = u + self.guidance_scale * (c - u)
        return teacher.schedule.to_x0(out, z.float(), t, cfg.prediction_type).clamp(-1, 1)

    def forward(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        model, schedule = self.model, self.model.schedule
        x0 = batch["video"]
        B, _, Fr = x0.shape[:3]
        device = x0.device
        i = torch.randint(0, self.student_steps, (B,), generator=generator)
        t = torch.tensor(self.student_grid, dtype=torch.long)[i].to(device)
        t_mid = torch.tensor(self.teacher_grid, dtype=torch.long)[2 * i + 1].to(device)
        t_end = torch.tensor(self.student_grid, dtype=torch.long)[i + 1].to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        z_t = schedule.add_noise(x0.float(), noise, t)
        with torch.no_grad():
            empty_ids = self.teacher.text.tokenize([""] * B)[0].to(device) if self.guidance_scale != 1.0 else None
            z_mid = ddim_step(z_t, self.teacher_x0(z_t, t, batch, empty_ids), t, t_mid, schedule)
            z_end = ddim_step(z_mid, self.teacher_x0(z_mid, t_mid, batch, empty_ids), t_mid, t_end, schedule)
            x_target = distillation_target(z_t, z_end, t, t_end, schedule)
            target = schedule.convert(x_target, z_t, t, "x0", model.cfg.prediction_type)
        cond = model.encode(batch["token_ids"], Fr, batch["audio"], batch["has_audio"])
        out = model(z_t, t, cond, batch["image"], batch["has_image"])
        per_sample = (out.float() - target.float()).pow(2).mean(dim=(1, 2, 3, 4))
        ab = schedule.alpha_bar(t.cpu()).to(device)
        snr = ab / (1 - ab)
        # truncated SNR, max(snr, 1) on ||x^ - x~||^2, expressed for the prediction type (v: / (snr + 1))
        base = snr + 1 if model.cfg.prediction_type == "v" else torch.ones_like(snr)
        return (per_sample * (torch.clamp(snr, min=1.0) / base).float()).mean()


# ------------------------------------------------------------------------------ the loop
def load_distill_config(run: str | Path) -> DistillConfig:
    return from_dict(DistillConfig, json.loads((Path(run) / DISTILL_CONFIG_NAME).read_text()))


def _lr(cfg: DistillConfig, stage_step: int) -> float:
    """Per stage: linear warm-up, then linear decay to 0 at the stage's end."""
    warm = min(1.0, (stage_step + 1) / max(1, cfg.warmup_steps))
    return cfg.lr * warm * max(0.0, 1 - stage_step / cfg.iters_per_stage)


def _put_safetensors(path: Path, module: nn.Module) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()}, tmp)
    os.replace(tmp, path)


def distill(
    cfg: DistillConfig, *, resume: bool = False, device: str | None = None, max_iters: int | None = None,
    progress: bool = True,
) -> tuple[VideoModel, VideoModel]:
    """Run (or resume) a distillation; returns (student, ema_student). `max_iters` stops this call early."""
    from .hub import resolve_checkpoint

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    info: DistInfo = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    run = Path(cfg.run)
    schedule_steps = cfg.schedule
    if resume:
        state = json.loads((run / "train_state.json").read_text())
        teacher_cfg = from_dict(ModelConfig, {**json.loads((run / "config.json").read_text()), "distilled_steps": 0})
    else:
        teacher_model = VideoModel.from_pretrained(resolve_checkpoint(cfg.teacher))
        teacher_cfg = teacher_model.cfg
        if teacher_cfg.distilled_steps and teacher_cfg.distilled_steps != cfg.start_steps:
            raise ValueError(f"the teacher is a {teacher_cfg.distilled_steps}-step student; use --start-steps "
                             f"{teacher_cfg.distilled_steps} to distill it further")
        if teacher_cfg.distilled_steps and cfg.guidance_scale != 1.0:
            raise ValueError("the teacher is already distilled (its guidance is baked in); use --guidance 1")
    if teacher_cfg.prediction_type not in ("v", "x0"):
        raise ValueError(f"progressive distillation needs a v- or x0-prediction teacher (got "
                         f"{teacher_cfg.prediction_type!r}): eps-prediction is unstable at few steps (Salimans & Ho, 2022)")

    def student_cfg(stage: int) -> ModelConfig:
        return dataclasses.replace(teacher_cfg, distilled_steps=schedule_steps[stage + 1])

    model = VideoModel(student_cfg(0)).to(device)
    teacher = VideoModel(teacher_cfg).to(device).eval().requires_grad_(False)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    if resume:
        step, stage = int(state["step"]), int(state["stage"])
        model.cfg = student_cfg(stage)
        model.load_state_dict(load_file(run / "model.safetensors", device=str(device)))
        teacher.load_state_dict(load_file(run / TEACHER_NAME, device=str(device)))
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        ema.load_state_dict(load_file(run / "ema.safetensors", device=str(device)))
        _load_optimizer(opt, load_file(run / "optimizer.safetensors", device=str(device)), state["param_groups"])
        stage_losses = dict(state.get("stage_losses", {}))
    else:
        step, stage, stage_losses = 0, 0, {}
        teacher.load_state_dict(teacher_model.state_dict())
        model.load_state_dict(teacher_model.state_dict())  # the student starts as a copy of its teacher
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        del teacher_model
        if info.is_main:
            run.mkdir(parents=True, exist_ok=True)
            (run / DISTILL_CONFIG_NAME).write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
            _put_safetensors(run / TEACHER_NAME, teacher)

    def guidance(stage: int) -> float:
        return cfg.guidance_scale if stage == 0 else 1.0

    inner = DistillLoss(model, teacher, schedule_steps[stage + 1], guidance(stage))
    loss_fn: nn.Module = inner
    if info.world_size > 1:
        loss_fn = nn.parallel.DistributedDataParallel(inner, device_ids=[info.local_rank] if device.type == "cuda" else None)

    tcfg = cfg.train_config(model.cfg)
    rng = np.random.default_rng([cfg.seed, info.rank, step])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + info.rank * 7919 + step)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    data_iter = iter(DataLoader(make_dataset(tcfg, tcfg.num_frames, info, seed_offset=step), batch_size=cfg.batch_size,
                                num_workers=cfg.num_workers))
    end = cfg.total_iters if max_iters is None else min(cfg.total_iters, step + max_iters)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=step, desc="distill", dynamic_ncols=True, file=sys.stderr)
    metrics_file = run / "metrics.jsonl"
    t_last, seen, loss_sum, loss_n = time.perf_counter(), 0, 0.0, 0

    def save() -> None:
        tcfg.model = model.cfg
        extra = {"stage": stage, "student_steps": schedule_steps[stage + 1], "teacher_steps": schedule_steps[stage],
                 "schedule": schedule_steps, "guidance_scale": guidance(stage), "stage_losses": stage_losses}
        save_run(run, tcfg, model, ema, opt, step, extra)

    model.train()
    while step < end:
        if step // cfg.iters_per_stage != stage:  # stage boundary: the EMA student becomes the teacher
            stage = step // cfg.iters_per_stage
            with torch.no_grad():
                teacher.load_state_dict(ema.state_dict())
                model.load_state_dict(ema.state_dict())
            model.cfg = ema.cfg = student_cfg(stage)
            opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
            inner.set_stage(schedule_steps[stage + 1], guidance(stage))
            if info.is_main:
                _put_safetensors(run / TEACHER_NAME, teacher)
        stage_step = step - stage * cfg.iters_per_stage
        batch = prepare_batch(next(data_iter), model, tcfg, rng, device)
        lr = _lr(cfg, stage_step)
        loss, grad_norm = optimizer_step(loss_fn, batch, gen, model, ema, opt, lr=lr, grad_clip=cfg.grad_clip,
                                         ema_decay=cfg.ema_decay, ema_step=stage_step, autocast=autocast)
        step += 1
        seen += cfg.batch_size * info.world_size
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(stage=f"{schedule_steps[stage]}->{schedule_steps[stage + 1]}", loss=f"{loss.item():.4f}")
        if not info.is_main:
            continue
        stage_done = step % cfg.iters_per_stage == 0
        if step % cfg.log_every == 0 or step == end or stage_done:
            now = time.perf_counter()
            record = {"step": step, "time": time.time(), "stage": stage, "student_steps": schedule_steps[stage + 1],
                      "loss": loss_sum / loss_n, "grad_norm": float(grad_norm), "lr": lr, "videos_per_s": seen / (now - t_last)}
            with metrics_file.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if stage_done:
                stage_losses[str(schedule_steps[stage + 1])] = record["loss"]
            t_last, seen, loss_sum, loss_n = now, 0, 0.0, 0
        if step % cfg.save_every == 0 or step == end or stage_done:
            save()
    if bar is not None:
        bar.close()
    if info.world_size > 1:
        dist.barrier()
    return model, ema


# ------------------------------------------------------------------------------ card and CLI
def card_markdown(cfg: DistillConfig, run: str | Path, evaluation: dict | None = None) -> str:
    """card.md of a distilled checkpoint: where it came from, the schedule, and its evaluation."""
    state = json.loads((Path(run) / "train_state.json").read_text())
    losses = state.get("stage_losses", {})
    s = cfg.schedule
    frames = cfg.num_frames or "the teacher's"
    prediction = json.loads((Path(run) / "config.json").read_text()).get("prediction_type", "v")
    lines = [
        f"# {s[-1]}-step student of `{cfg.teacher}`",
        "",
        f"Progressive distillation (Salimans & Ho, 2022) of a teacher that predicts {prediction}: each stage trains a student "
        "to match two teacher DDIM steps with one, starting from its teacher's weights (`python -m vidgen distill`).",
        f"Sample it with `sampler=\"fast\"`: DDIM on `schedule.timesteps({s[-1]})`, guidance 1.0.",
        "",
        "## Distillation schedule",
        "",
        "| stage | teacher steps | student steps | iterations | teacher guidance | final loss |",
        "|---|---|---|---|---|---|",
    ]
    for k in range(len(s) - 1):
        g = cfg.guidance_scale if k == 0 else 1.0
        loss = losses.get(str(s[k + 1]))
        lines.append(f"| {k + 1} | {s[k]} | {s[k + 1]} | {cfg.iters_per_stage} | {g:g} | "
                     f"{'–' if loss is None else f'{loss:.4f}'} |")
    lines += [
        "",
        f"Guidance {cfg.guidance_scale:g} of the first teacher is baked into the student (the student runs unguided). "
        f"Batch {cfg.batch_size}, {frames} frames, AdamW lr {cfg.lr:g} (warm-up "
        f"{cfg.warmup_steps}, linear decay to 0 per stage), EMA {cfg.ema_decay}, data `{cfg.data}`, seed {cfg.seed}; "
        f"{state['step']} iterations in all. Loss: truncated-SNR weighted, max(snr, 1) in x0 space.",
        "",
        "## Evaluation",
        "",
    ]
    if evaluation:
        lines += ["Same prompts and seeds (`python -m vidgen evaluate`) for the student and its teacher.", "",
                  "| metric | teacher | student |", "|---|---|---|"]
        for key, (t_val, s_val) in evaluation.items():
            fmt = lambda v: "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
            lines.append(f"| {key} | {fmt(t_val)} | {fmt(s_val)} |")
    else:
        lines.append("Not evaluated yet: `python -m vidgen evaluate --checkpoint <this folder> --sampler fast` and "
                     "the teacher with its defaults, on the same prompts and seeds.")
    return "\n".join(lines) + "\n"


def compare(teacher: str | Path, student: str | Path, n_per_category: int, device: str | None = None) -> dict:
    """Evaluate teacher (pipeline defaults) and student (sampler "fast") on the same prompts and seeds."""
    from .evaluate import evaluate
    from .pipeline import VideoPipeline

    reports = []
    for path, sampler in ((teacher, "ddim"), (student, "fast")):
        pipe = VideoPipeline.from_pretrained(path, device=device)
        reports.append(evaluate(pipe, n_per_category=n_per_category, sampler=sampler, record_attention=False, progress=False))
    keys = ("single_all_correct", "two_object_both_correct", "held_out_all_correct", "count_accuracy", "temporal_stability")
    out = {k: (reports[0]["overall"][k], reports[1]["overall"][k]) for k in keys}
    out["steps"] = tuple(r["settings"]["num_inference_steps"] for r in reports)
    out["seconds per video"] = tuple(r["timing"]["mean_seconds_per_video"] for r in reports)
    return out


def _is_distilled(teacher: str) -> bool:
    from .hub import resolve_checkpoint

    config = resolve_checkpoint(teacher) / "config.json"
    return bool(config.is_file() and json.loads(config.read_text()).get("distilled_steps", 0))


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vidgen distill", description="Distill a model into a few-step student.")
    p.add_argument("--teacher", help="teacher checkpoint folder or Hub id")
    p.add_argument("--steps", type=int, default=4, help="the student's step count (default 4)")
    p.add_argument("--out", help="the distilled pipeline checkpoint to write at the end")
    p.add_argument("--start-steps", type=int, default=32, help="the first teacher's DDIM steps (default 32)")
    p.add_argument("--iters-per-stage", type=int, default=None, help=f"(default {DistillConfig.iters_per_stage})")
    p.add_argument("--batch-size", type=int, default=None, help=f"(default {DistillConfig.batch_size})")
    p.add_argument("--guidance", type=float, default=None,
                   help="the first teacher's guidance, baked in (default 3.0; 1.0 for an already distilled teacher)")
    p.add_argument("--lr", type=float, default=None, help=f"(default {DistillConfig.lr})")
    p.add_argument("--frames", type=int, default=None, help="frames per training video (default: the teacher's)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--run", default=None, help="run folder (default runs/<name of --out>-distill)")
    p.add_argument("--resume", action="store_true", help="continue the run folder")
    p.add_argument("--max-iters", type=int, default=None, help="stop after this many iterations in this invocation")
    p.add_argument("--eval", type=int, default=0, metavar="N",
                   help="after exporting, evaluate student and teacher on N prompts per category into card.md")
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not args.out and not args.run:
        print("error: --out (the distilled checkpoint) is required", file=sys.stderr)
        return 2
    run = args.run or f"runs/{Path(args.out).name}-distill"
    overrides = {"iters_per_stage": args.iters_per_stage, "batch_size": args.batch_size, "guidance_scale": args.guidance,
                 "lr": args.lr, "num_frames": args.frames, "seed": args.seed, "threads": args.threads}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        if args.resume:
            if not (Path(run) / "train_state.json").is_file():
                print(f"error: nothing to resume in {run!r} (no train_state.json)", file=sys.stderr)
                return 2
            data = {**to_dict(load_distill_config(run)), **overrides}
            if args.out:
                data["export"] = args.out
            cfg = from_dict(DistillConfig, data)
        else:
            if not args.teacher:
                print("error: --teacher is required", file=sys.stderr)
                return 2
            if args.guidance is None and _is_distilled(args.teacher):
                overrides["guidance_scale"] = 1.0  # its guidance is already baked in
            cfg = DistillConfig(teacher=args.teacher, run=run, export=args.out or "", start_steps=args.start_steps,
                                steps=args.steps, **overrides)
        distill(cfg, resume=args.resume, device=args.device, max_iters=args.max_iters, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    state = json.loads((Path(run) / "train_state.json").read_text())
    report = cfg.export and int(os.environ.get("RANK", "0")) == 0  # rank 0 alone exports and reports
    if report and state["step"] >= cfg.total_iters:
        out = export_checkpoint(run, cfg.export, card=card_markdown(cfg, run))
        if args.eval:
            evaluation = compare(cfg.teacher, out, args.eval, device=args.device)
            (out / "card.md").write_text(card_markdown(cfg, run, evaluation))
        print(f"exported {out} ({cfg.steps} steps; sample with sampler='fast')")
    elif report:
        print(f"stopped at iteration {state['step']} of {cfg.total_iters}; continue with --resume --run {run}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
