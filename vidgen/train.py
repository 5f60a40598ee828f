"""Training: single process, or DDP under `torchrun --nproc_per_node=K` (gloo on CPU, nccl on GPU).

    python -m vidgen train --preset presets/shapes.json --out runs/shapes
    python -m vidgen train --resume runs/shapes --total-steps 20000     # continue a run
    torchrun --nproc_per_node=2 -m vidgen train --preset ... --out ...

A run folder holds config.json (ModelConfig), train_config.json, model.safetensors (raw
weights), ema.safetensors (the EMA weights, what sampling uses), optimizer.safetensors,
train_state.json (step, data position), metrics.jsonl and samples/. `export_checkpoint` turns
a run into a pipeline checkpoint (config.json + the EMA weights as model.safetensors).
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
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import CONFIG_NAME, VideoModel
from .config import ModelConfig, from_dict, to_dict
from .world import VOCABULARY, ShapesWorld


LOSS_WEIGHTINGS = ("none", "min_snr", "clamped_snr")
# Parameters a warm start may lack because they start at zero (see load_init_weights).
ZERO_INIT_ADDITIONS = ("denoiser.frame_pos", "text.token_skip.weight", "denoiser.word_emb.")


@dataclasses.dataclass
class TrainConfig:
    """Everything about a training run (the model's own config is nested under `model`)."""

    model: ModelConfig = dataclasses.field(default_factory=lambda: ModelConfig(vocabulary=VOCABULARY))
    out: str = "runs/shapes"
    data: str = "world"  # "world" or a folder of .mp4 clips with sidecar .txt captions
    num_frames: int = 16
    # Frame-count curriculum: ((until_step, num_frames), ...); fewer frames early is cheaper.
    frames_schedule: tuple = ()
    batch_size: int = 8
    total_steps: int = 20000
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # Per-timestep loss weight, in x0 space: "none" (1), "min_snr" (min(snr, 5): Hang et al. 2023), or
    # "clamped_snr" (clamp(snr, 1, 5)): like min_snr but the noisiest timesteps, the only ones where
    # the prompt decides what appears, keep a weight of 1 instead of ~0.
    loss_weighting: str = "min_snr"
    # Temporal-consistency loss on the predicted clean video (see `consistency_loss`); 0 = off. Needs
    # data with known motion (the shapes world); skipped for items without it (MP4 folders).
    consistency_weight: float = 0.0
    # Low-variance regression targets (Xu et al. 2023, "Stable Target Field"): each shapes-world item
    # comes with this many renders of its caption (itself included), and the x0 target becomes their
    # posterior-weighted mean given x_t (`posterior_mean_x0`) instead of the one render. At high noise,
    # where the caption alone decides what appears (e.g. the motion direction), the one-render target is
    # mostly noise around that mean; at low noise the weights pick the item itself. 1 = off.
    reference_renders: int = 1
    # Timestep focus: this fraction of each batch draws t from the noisiest `high_noise_steps` steps,
    # the rest uniformly. In the shapes world the posterior over where the objects are resolves by
    # t ~ 940 (see the README): the caption's words that only motion tells apart (the direction) can
    # only be learnt above that, which uniform draws visit 6% of the time. The optimum at each t is
    # unchanged (regression to E[x0 | x_t, c] per t); only how often each t is trained changes.
    p_high_noise: float = 0.0
    high_noise_steps: int = 64
    # conditioning dropout, each drawn independently, so guidance works for every condition
    p_drop_text: float = 0.1
    p_drop_image: float = 0.1
    p_drop_audio: float = 0.1
    # task mix of the shapes world
    p_two: float = 0.3
    p_image: float = 0.25
    p_audio: float = 0.25
    seed: int = 0
    num_workers: int = 0
    log_every: int = 25
    eval_every: int = 1000
    eval_prompts: int = 12
    eval_steps: int = 20
    sample_every: int = 1000
    save_every: int = 500
    threads: int = 0  # torch intra-op threads (0 = torch's default)
    # Warm start (fine-tuning): a run folder (its EMA weights) or a checkpoint folder whose weights
    # initialise the model and its EMA. The architecture must match; the schedule and loss may differ.
    init_from: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = from_dict(ModelConfig, self.model)
        self.frames_schedule = tuple(tuple(x) for x in self.frames_schedule)
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {self.loss_weighting!r}")
        if self.loss_weighting == "clamped_snr" and self.model.prediction_type == "eps":
            # eps errors are weighted by w / snr, which explodes at the noisiest step (snr ~ 1e-9)
            raise ValueError("loss_weighting 'clamped_snr' needs prediction_type 'x0' or 'v', not 'eps'")
        if not (math.isfinite(self.consistency_weight) and self.consistency_weight >= 0):
            raise ValueError(f"consistency_weight must be a number >= 0, got {self.consistency_weight!r}")
        if not 0.0 <= self.p_high_noise <= 1.0:
            raise ValueError(f"p_high_noise must be in [0, 1], got {self.p_high_noise!r}")
        if not 1 <= self.high_noise_steps <= self.model.num_train_timesteps:
            raise ValueError(f"high_noise_steps must be in [1, {self.model.num_train_timesteps}], got {self.high_noise_steps}")
        if self.reference_renders < 1:
            raise ValueError(f"reference_renders must be >= 1, got {self.reference_renders}")
        if self.reference_renders > 1 and self.data != "world":
            # a clip folder has one video per caption: there is nothing to average
            raise ValueError("reference_renders > 1 needs data 'world' (renders of the same caption)")

    def frames_at(self, step: int) -> int:
        for until, frames in self.frames_schedule:
            if step < until:
                return int(frames)
        return self.num_frames


def load_train_config(path: str | Path) -> TrainConfig:
    data = json.loads(Path(path).read_text())
    return from_dict(TrainConfig, data)


# ------------------------------------------------------------------------------ distributed
@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# ------------------------------------------------------------------------------ pieces
def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases, gates or embeddings)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "embedding" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def warp(x: torch.Tensor, shift: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Move image content by `shift`: out[..., y, x] = x[..., y - dy, x - dx] (bilinear; exact for
    integer shifts). x (N, C, H, W); shift (N, 2) as (dy, dx) in pixels."""
    N, _, H, W = x.shape
    ys = torch.arange(H, device=x.device, dtype=torch.float32)[None, :, None] - shift[:, 0, None, None].float()
    xs = torch.arange(W, device=x.device, dtype=torch.float32)[None, None, :] - shift[:, 1, None, None].float()
    ys, xs = torch.broadcast_tensors(ys, xs)  # (N, H, W) source coordinates
    grid = torch.stack([2 * xs / max(W - 1, 1) - 1, 2 * ys / max(H - 1, 1) - 1], dim=-1)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True).to(x.dtype)


def consistency_loss(
    x0_pred: torch.Tensor,
    shift: torch.Tensor,
    object_mask: torch.Tensor,
    static_mask: torch.Tensor,
    has_motion: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Temporal consistency of a predicted clean video under the known motion of the shapes world.

    x0_pred (B, C, F, H, W); shift (B, F-1, 2): the first object's displacement (dy, dx) from frame
    f to f+1; object_mask (B, F, H, W): pixels fully covered by the first object (nothing on top);
    static_mask (B, F, H, W): pixels no object touches; has_motion (B,) bool: rows without known
    motion (MP4 folders) count as 0. Returns the batch mean, or (B,) with reduction="none".

    The form: two warp terms between neighbouring frames, each a mean squared difference over the
    pixels where the true motion is exactly known:
    - object: frame f's prediction moved by the true shift (bilinear warp) against frame f+1, on the
      pixels inside the object at f+1 whose whole bilinear footprint in frame f is inside it too;
    - background: frame f against frame f+1 (zero motion) where no object touches either frame.
    Why this form: in this world the object interior and the background are flat colours, so on
    exactly these pixels a real video satisfies both terms to float precision, for any sub-pixel
    shift and through the audio-driven size pulse (the warped mask footprint shrinks with the
    object), while the anti-aliased rims, other objects and occlusions (where a warp by one
    displacement is not the truth) are left out. So the loss is ~0 on real data: it does not pull
    the model away from the data, only from predictions that flicker, change colour or drift off the
    known motion. The two terms are averaged separately and added, so the object term is not
    drowned by the many background pixels.
    """
    B, C, Fr, H, W = x0_pred.shape
    if Fr < 2:
        out = x0_pred.sum(dim=(1, 2, 3, 4)) * 0
        return out.mean() if reduction == "mean" else out
    x0_pred = x0_pred.float()
    prev = x0_pred[:, :, :-1].transpose(1, 2).reshape(B * (Fr - 1), C, H, W)
    nxt = x0_pred[:, :, 1:].transpose(1, 2).reshape(B * (Fr - 1), C, H, W)
    d = shift.reshape(B * (Fr - 1), 2).to(x0_pred.device)
    obj, static = object_mask.to(x0_pred.device).bool(), static_mask.to(x0_pred.device).bool()
    if has_motion is not None:
        keep = has_motion.to(x0_pred.device).bool()[:, None, None, None]
        obj, static = obj & keep, static & keep
    # the warped mask is 1 only where all four bilinear neighbours lie inside the object at frame f
    footprint = warp(obj[:, :-1].reshape(B * (Fr - 1), 1, H, W).float(), d)[:, 0] > 1 - 1e-4
    valid_obj = (obj[:, 1:].reshape(B * (Fr - 1), H, W) & footprint).reshape(B, -1).float()
    valid_bg = (static[:, :-1] & static[:, 1:]).reshape(B, -1).float()
    err_obj = (nxt - warp(prev, d, padding_mode="border")).pow(2).mean(1).reshape(B, -1)
    err_bg = (nxt - prev).pow(2).mean(1).reshape(B, -1)
    per_sample = ((err_obj * valid_obj).sum(1) / valid_obj.sum(1).clamp(min=1)
                  + (err_bg * valid_bg).sum(1) / valid_bg.sum(1).clamp(min=1))
    return per_sample.mean() if reduction == "mean" else per_sample


MOTION_KEYS = ("shift", "object_mask", "static_mask", "has_motion")


def posterior_mean_x0(
    schedule, x_t: torch.Tensor, t: torch.Tensor, reference: torch.Tensor, valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-normalised estimate of E[x0 | x_t, condition] from K samples of p(x0 | condition).

    x_t (B, C, F, H, W); t (B,); reference (B, K, C, F, H, W), whose entry 0 is the x0 that x_t was
    noised from; valid (B, K) bool (None = all). The weights are the Gaussian likelihoods
    q(x_t | x0 = reference_k) = N(alpha_t reference_k, sigma_t^2 I), normalised over k (Xu et al. 2023):
    uniform at SNR ~ 0, so the target is the mean of the renders, and one-hot on entry 0 at low noise,
    so it is the usual target. Returns (x0_hat (B, C, F, H, W) float32, effective sample size (B,)).
    """
    B, K = reference.shape[:2]
    x_t = x_t.float()
    alpha, sigma = schedule.alpha_sigma(t, x_t)
    # one render at a time: a (B, K, C, F, H, W) difference would be K videos of scratch memory
    sq = torch.stack([(x_t - alpha * reference[:, k].float()).pow(2).flatten(1).sum(1) for k in range(K)], dim=1)
    logits = -sq / (2 * sigma.flatten().pow(2)[:, None])
    if valid is not None:
        logits = logits.masked_fill(~valid.to(logits.device), float("-inf"))
    w = torch.softmax(logits, dim=1)  # (B, K)
    x0_hat = torch.einsum("bk,bk...->b...", w, reference.float())
    return x0_hat, 1 / w.pow(2).sum(1)


def optimizer_step(
    loss_fn: nn.Module, batch: dict, generator: torch.Generator, model: nn.Module, ema: nn.Module,
    opt: torch.optim.Optimizer, *, lr: float, grad_clip: float, ema_decay: float, ema_step: int, autocast,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update shared by training and distillation: set lr, loss, backward, clip, AdamW, EMA
    (whose decay warms up with `ema_step`). Returns (loss, grad norm before clipping)."""
    for group in opt.param_groups:
        group["lr"] = lr
    with autocast:
        loss = loss_fn(batch, generator)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    ema_update(ema, model, min(ema_decay, (1 + ema_step) / (10 + ema_step)))
    return loss, grad_norm


class DiffusionLoss(nn.Module):
    """Wraps VideoModel so that one forward = encode conditions + denoise + loss (what DDP syncs).

    With consistency_weight > 0 and a batch with known motion, adds consistency_weight times
    `consistency_loss` of the predicted clean video, weighted per sample by min(snr, 5): the x0-space
    weight of the min-SNR data loss, so the term never dominates at high noise (where x0_pred is
    legitimately a blur of possible videos) and never explodes at low noise. A batch with
    "reference" renders regresses on `posterior_mean_x0` instead of the one render (see
    TrainConfig.reference_renders). `last` holds the detached terms of the latest forward (for logging)."""

    def __init__(self, model: VideoModel, loss_weighting: str = "min_snr", consistency_weight: float = 0.0,
                 p_high_noise: float = 0.0, high_noise_steps: int = 64):
        super().__init__()
        self.model = model
        self.loss_weighting = loss_weighting
        self.consistency_weight = consistency_weight
        self.p_high_noise, self.high_noise_steps = p_high_noise, high_noise_steps
        self.last: dict[str, torch.Tensor] = {}

    def forward(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        model, schedule, cfg = self.model, self.model.schedule, self.model.cfg
        x0 = batch["video"]
        B, _, Fr = x0.shape[:3]
        device = x0.device
        cond = model.encode(batch["token_ids"], Fr, batch["audio"], batch["has_audio"])
        # Drawn where the generator lives (on the GPU for GPU training: a CPU draw of a whole batch
        # of noise and its copy would cost more than the step), then moved to the data's device.
        t = torch.randint(0, schedule.num_timesteps, (B,), generator=generator, device=generator.device)
        if self.p_high_noise:  # (no extra draws when off: the noise stream stays as it was)
            high = torch.rand((B,), generator=generator, device=generator.device) < self.p_high_noise
            top = schedule.num_timesteps - 1 - torch.randint(0, self.high_noise_steps, (B,), generator=generator, device=generator.device)
            t = torch.where(high, top, t)
        t = t.to(device)
        noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(device)
        x_t = schedule.add_noise(x0, noise, t)
        out = model(x_t, t, cond, batch["image"], batch["has_image"])
        if "reference" in batch:
            # An image item's renders do not share its first frame: with the image kept, only the item
            # itself is a sample of p(x0 | condition). (A dropped caption, image or audio needs no
            # mask: regressing on E[x0 | x_t, c] still averages to E[x0 | x_t] over c.)
            valid = torch.ones(batch["reference"].shape[:2], dtype=torch.bool, device=device)
            valid[batch["has_image"], 1:] = False
            x0_hat, ess = posterior_mean_x0(schedule, x_t, t, batch["reference"], valid)
            alpha, sigma = schedule.alpha_sigma(t, x0_hat)
            # the noise that x0_hat implies for this x_t, written so that x0_hat == x0 gives `noise` exactly
            target = schedule.target(x0_hat, noise.float() + alpha / sigma * (x0.float() - x0_hat), t, cfg.prediction_type)
        else:
            target = schedule.target(x0, noise, t, cfg.prediction_type)
        per_sample = F.mse_loss(out.float(), target.float(), reduction="none").mean(dim=(1, 2, 3, 4))
        ab = schedule.alpha_bar(t.cpu()).to(device)
        snr = ab / (1 - ab)
        if self.loss_weighting != "none":
            # The x0-space weight, expressed for the prediction type: an eps error is sqrt(snr) times
            # the x0 error it causes, a v error sqrt(snr + 1) times (for v, min-SNR is min(snr, g) / (snr + 1)).
            lo = 1.0 if self.loss_weighting == "clamped_snr" else 0.0
            base = {"v": snr + 1, "eps": snr, "x0": torch.ones_like(snr)}[cfg.prediction_type]
            weight = torch.clamp(snr, min=lo, max=5.0) / base
            per_sample = per_sample * weight.float()
        loss = per_sample.mean()
        self.last = {"mse": loss.detach()}
        if "reference" in batch:
            self.last["reference_ess"] = ess.mean().detach()
        if self.consistency_weight and all(k in batch for k in MOTION_KEYS):
            x0_pred = schedule.to_x0(out.float(), x_t.float(), t, cfg.prediction_type)
            cons = consistency_loss(x0_pred, batch["shift"], batch["object_mask"], batch["static_mask"],
                                    batch["has_motion"], reduction="none")
            cons = (cons * torch.clamp(snr, max=5.0).float()).mean()
            self.last["consistency"] = cons.detach()
            loss = loss + self.consistency_weight * cons
        return loss


def make_dataset(cfg: TrainConfig, num_frames: int, info: DistInfo, seed_offset: int = 0):
    m = cfg.model
    if cfg.data == "world":
        return ShapesWorld(
            num_frames=num_frames, height=m.sample_size, width=m.sample_size, p_two=cfg.p_two,
            p_audio=cfg.p_audio, p_image=cfg.p_image, seed=cfg.seed + seed_offset, fps=m.fps,
            sample_rate=m.audio_sample_rate, rank=info.rank, world_size=info.world_size,
            reference_renders=cfg.reference_renders,
        )
    from .datasets import VideoFolder

    return VideoFolder(
        cfg.data, num_frames=num_frames, height=m.sample_size, width=m.sample_size, fps=m.fps,
        sample_rate=m.audio_sample_rate, seed=cfg.seed + seed_offset, rank=info.rank, world_size=info.world_size,
        p_image=cfg.p_image,
    )


def prepare_batch(batch: dict, model: VideoModel, cfg: TrainConfig, rng: np.random.Generator, device) -> dict:
    """Tokenize captions and apply conditioning dropout (text -> "", image / audio masked)."""
    B = len(batch["caption"])
    captions = ["" if rng.random() < cfg.p_drop_text else c for c in batch["caption"]]
    token_ids, _ = model.text.tokenize(captions)
    keep_image = torch.from_numpy(rng.random(B) >= cfg.p_drop_image)
    keep_audio = torch.from_numpy(rng.random(B) >= cfg.p_drop_audio)
    return {
        "video": batch["video"].to(device),
        "token_ids": token_ids.to(device),
        "audio": batch["audio"].to(device),
        "has_audio": (batch["has_audio"] & keep_audio).to(device),
        "image": batch["image"].to(device),
        "has_image": (batch["has_image"] & keep_image).to(device),
        **{k: batch[k].to(device) for k in MOTION_KEYS if k in batch},  # known motion, for consistency_loss
        **({"reference": batch["reference"].to(device)} if "reference" in batch else {}),
    }


# ------------------------------------------------------------------------------ state on disk
def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """AdamW state as flat tensors (for safetensors) + the param-group hyper-parameters (JSON)."""
    sd = opt.state_dict()
    tensors = {f"{i}.{k}": v.detach().cpu().contiguous() for i, st in sd["state"].items() for k, v in st.items() if torch.is_tensor(v)}
    return tensors, sd["param_groups"]


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_run(out: Path, cfg: TrainConfig, model: VideoModel, ema: VideoModel, opt, step: int, extra: dict) -> None:
    """Write the run folder atomically enough: files go to *.tmp and are renamed."""
    out.mkdir(parents=True, exist_ok=True)

    def put(name: str, write) -> None:
        tmp = out / (name + ".tmp")
        write(tmp)
        os.replace(tmp, out / name)

    put(CONFIG_NAME, lambda p: p.write_text(json.dumps(to_dict(cfg.model), indent=2, sort_keys=True) + "\n"))
    put("train_config.json", lambda p: p.write_text(json.dumps(to_dict(cfg), indent=2) + "\n"))
    put("model.safetensors", lambda p: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, p))
    put("ema.safetensors", lambda p: save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, p))
    tensors, groups = _optimizer_tensors(opt)
    put("optimizer.safetensors", lambda p: save_file(tensors, p))
    put("train_state.json", lambda p: p.write_text(json.dumps({"step": step, "param_groups": groups, **extra}, indent=2) + "\n"))


def export_checkpoint(
    run: str | Path, out: str | Path, *, dtype: torch.dtype | None = torch.float16, card: str | None = None,
    evaluation_md: str | None = None, notes: str | None = None, hardware: str | None = None,
) -> Path:
    """A pipeline checkpoint from a run: config.json + the EMA weights (fp16 by default) + card.md
    (written from the run's records, plus `notes`, unless `card` is given)."""
    from .card import model_card

    run, out = Path(run), Path(out)
    cfg = from_dict(ModelConfig, json.loads((run / CONFIG_NAME).read_text()))
    model = VideoModel(cfg)
    model.load_state_dict(load_file(run / "ema.safetensors"))
    step = json.loads((run / "train_state.json").read_text())["step"]
    model.save_pretrained(out, dtype=dtype, metadata={"step": step, "source": "ema"})
    if card is None:
        card = model_card(run, name=out.name, evaluation_md=evaluation_md, notes=notes, hardware=hardware)
    (out / "card.md").write_text(card)
    return out


# ------------------------------------------------------------------------------ evaluation
def quick_eval(model: VideoModel, cfg: TrainConfig, n: int, steps: int, num_frames: int) -> dict:
    """Generate a small fixed prompt set with the EMA model and judge it."""
    from .evaluate import direction_sensitivity, pure_noise_drift
    from .judge import judge, summarize
    from .pipeline import VideoPipeline
    from .world import evaluation_prompts

    pipe = VideoPipeline(model, device=next(model.parameters()).device)
    prompts = [p for p in evaluation_prompts(max(1, n // 2), seed=4321, num_frames=num_frames) if p.category in ("single", "two")][:n]
    results = []
    for p in prompts:
        r = pipe(p.caption, seed=p.seed, num_frames=num_frames, num_inference_steps=steps)
        results.append(judge(r.frames, p.caption))
    summary = summarize(results)
    # Does the model read the direction word yet? (x0 error with the opposite word, relative; ~0 = no.)
    # At t = 990 and 960, inside the band where the word can matter (see TrainConfig.p_high_noise).
    sens = direction_sensitivity(model, n=n, timesteps=(990, 960), num_frames=num_frames)
    for row in sens["timesteps"]:
        summary[f"direction_sensitivity_t{row['t']}"] = row["opposite_vs_true"]
    # Does the prediction from pure noise move the object the prompt's way? (model / data travel; 0 = static.)
    summary["pure_noise_drift"] = pure_noise_drift(model, num_frames=num_frames)["ratio"]
    return summary


def save_sample_grid(model: VideoModel, path: Path, num_frames: int, steps: int) -> None:
    """A PNG with a few generated videos, one row each (frames left to right)."""
    from PIL import Image

    from .maps import strip
    from .pipeline import VideoPipeline

    pipe = VideoPipeline(model, device=next(model.parameters()).device)
    captions = ["a red circle moving left", "a big blue square moving up", "a small green triangle moving right quickly",
                "a yellow circle moving down and a white square moving left"]
    rows = [strip(pipe(c, seed=i, num_frames=num_frames, num_inference_steps=steps).frames, columns=num_frames) for i, c in enumerate(captions)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def load_init_weights(folder: str | Path, model: VideoModel) -> dict[str, torch.Tensor]:
    """The state dict a warm start begins from: `folder`/ema.safetensors (a run) or model.safetensors
    (a run's raw weights or an exported checkpoint), cast to the model's dtypes. ValueError if the
    folder has neither or the tensors do not fit the model."""
    folder = Path(folder)
    path = next((folder / n for n in ("ema.safetensors", "model.safetensors") if (folder / n).is_file()), None)
    if path is None:
        raise ValueError(f"init_from {str(folder)!r} has no ema.safetensors or model.safetensors")
    state = load_file(path)
    expected = model.state_dict()
    # Zero-initialised additions (ModelConfig.frame_embedding, ...; a name or a "module." prefix) may
    # be absent from an older run: they keep this model's initial values, whose output is zero, so
    # the warm start computes exactly what the older weights did.
    added = {k for k in set(expected) - set(state)
             if any(k == a or (a.endswith(".") and k.startswith(a)) for a in ZERO_INIT_ADDITIONS)}
    bad = sorted(k for k in set(expected) | set(state) if k not in added and (k not in state or k not in expected
                 or state[k].shape != expected[k].shape))
    if bad:
        raise ValueError(f"init_from {str(path)!r} does not fit this model's architecture: {bad[:5]}")
    return {**{k: expected[k] for k in added}, **{k: v.to(expected[k].dtype) for k, v in state.items()}}


# ------------------------------------------------------------------------------ the loop
def describe_hardware(device: torch.device, world_size: int = 1) -> str:
    """e.g. "1 x NVIDIA H200 (bf16 autocast)" or "2 processes x 1 torch thread on AMD EPYC ... (2 CPUs)"."""
    if device.type == "cuda":
        return f"{world_size} x {torch.cuda.get_device_name(device)} (bf16 autocast)"
    import platform

    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return (f"{world_size} process{'es' if world_size > 1 else ''} x {threads} torch thread{'s' if threads > 1 else ''} "
            f"on {cpu} ({os.cpu_count()} CPUs)")


def _time_up(local: bool, info: DistInfo, device: torch.device) -> bool:
    """Whether any rank is out of time: every rank must stop at the same step, or DDP hangs."""
    if info.world_size == 1:
        return local
    flag = torch.tensor([int(local)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def train(
    cfg: TrainConfig, *, resume: bool = False, device: str | None = None, max_steps: int | None = None,
    max_seconds: float | None = None, progress: bool = True,
) -> tuple[VideoModel, VideoModel]:
    """Train (or resume) a run; returns (model, ema_model). `max_steps` and `max_seconds` (wall
    clock of this call) stop it early; either way the run is saved at the step it stopped, so
    `--resume` continues from there."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    info = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)  # parameter init only; identical on every rank
    model = VideoModel(cfg.model).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    step, metrics_extra = 0, {}
    if cfg.init_from and not resume:
        state = load_init_weights(cfg.init_from, model)
        model.load_state_dict(state)
        ema.load_state_dict(state)
    if resume:
        state = json.loads((out / "train_state.json").read_text())
        model.load_state_dict(load_file(out / "model.safetensors", device=str(device)))
        ema.load_state_dict(load_file(out / "ema.safetensors", device=str(device)))
        _load_optimizer(opt, load_file(out / "optimizer.safetensors", device=str(device)), state["param_groups"])
        step = int(state["step"])
        metrics_extra = {k: v for k, v in state.items() if k not in ("step", "param_groups")}
    # What this invocation trains on, for the model card; a resume on other hardware is listed too.
    here = describe_hardware(device, info.world_size)
    known = metrics_extra.get("hardware", [])
    metrics_extra["hardware"] = known + [here] if here not in known else known
    loss_fn = DiffusionLoss(model, cfg.loss_weighting, cfg.consistency_weight, cfg.p_high_noise, cfg.high_noise_steps)
    if info.world_size > 1:
        loss_fn = nn.parallel.DistributedDataParallel(loss_fn, device_ids=[info.local_rank] if device.type == "cuda" else None)

    # Each rank (and each resume) draws its own data and noise stream.
    rng = np.random.default_rng([cfg.seed, info.rank, step])
    gen = torch.Generator(device).manual_seed(cfg.seed * 1_000_003 + info.rank * 7919 + step)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    metrics_file = out / "metrics.jsonl"
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    end = cfg.total_steps if max_steps is None else min(cfg.total_steps, step + max_steps)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=step, desc="train", dynamic_ncols=True, file=sys.stderr)

    data_iter, data_frames = None, None
    t_start = t_last = time.perf_counter()
    seen = 0
    model.train()
    while step < end:
        frames = cfg.frames_at(step)
        if frames != data_frames:  # (re)build the stream when the curriculum changes the frame count
            data_iter = iter(DataLoader(make_dataset(cfg, frames, info, seed_offset=step), batch_size=cfg.batch_size,
                                        num_workers=cfg.num_workers, pin_memory=device.type == "cuda"))
            data_frames = frames
        batch = prepare_batch(next(data_iter), model, cfg, rng, device)
        lr = lr_at(cfg, step)
        loss, grad_norm = optimizer_step(loss_fn, batch, gen, model, ema, opt, lr=lr, grad_clip=cfg.grad_clip,
                                         ema_decay=cfg.ema_decay, ema_step=step, autocast=autocast)
        step += 1
        seen += cfg.batch_size * info.world_size
        if max_seconds is not None and _time_up(time.perf_counter() - t_start > max_seconds, info, device):
            end = step  # save (and log) this step below, then leave the loop
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
        if not info.is_main:
            continue
        record: dict[str, Any] = {}
        if step % cfg.log_every == 0 or step == end:
            now = time.perf_counter()
            record.update(loss=loss.item(), grad_norm=float(grad_norm), lr=lr, frames=frames, videos_per_s=seen / (now - t_last))
            terms = (loss_fn.module if isinstance(loss_fn, nn.parallel.DistributedDataParallel) else loss_fn).last
            if "consistency" in terms:
                record.update(mse=terms["mse"].item(), consistency=terms["consistency"].item())
            if "reference_ess" in terms:
                record["reference_ess"] = terms["reference_ess"].item()
            t_last, seen = now, 0
        if cfg.eval_every and step % cfg.eval_every == 0:
            summary = quick_eval(ema, cfg, cfg.eval_prompts, cfg.eval_steps, cfg.num_frames)
            record["eval"] = {k: v for k, v in summary.items() if isinstance(v, (int, float, dict))}
        if cfg.sample_every and step % cfg.sample_every == 0:
            save_sample_grid(ema, out / "samples" / f"step_{step:07d}.png", cfg.num_frames, cfg.eval_steps)
        if record:
            with metrics_file.open("a") as f:
                f.write(json.dumps({"step": step, "time": time.time(), **record}) + "\n")
        if step % cfg.save_every == 0 or step == end:
            save_run(out, cfg, model, ema, opt, step, metrics_extra)
    if bar is not None:
        bar.close()
    if info.world_size > 1:
        dist.barrier()
    return model, ema


# ------------------------------------------------------------------------------ CLI
def _add_flags(parser: argparse.ArgumentParser) -> None:
    """--flag for every scalar TrainConfig field (defaults come from the preset, then the dataclass)."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("model", "frames_schedule"):
            continue
        default = f.default
        kind = type(default) if default is not dataclasses.MISSING else str
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None, help=f"(default {default})")


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidgen train", description="Train a vidgen model.")
    parser.add_argument("--preset", help="JSON file with TrainConfig fields (and a nested 'model')")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (or the preset's out)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in this invocation")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop (and save) once this invocation has trained this long; --resume continues")
    parser.add_argument("--device", default=None)
    parser.add_argument("--export", default=None, help="after training, export the EMA checkpoint to this folder")
    _add_flags(parser)
    args = parser.parse_args(argv)
    data: dict[str, Any] = json.loads(Path(args.preset).read_text()) if args.preset else {}
    if args.resume:
        out = args.out or data.get("out") or TrainConfig.out
        saved = Path(out) / "train_config.json"
        if not saved.is_file():
            print(f"error: nothing to resume in {out!r} (no train_config.json)", file=sys.stderr)
            return 2
        data = {**json.loads(saved.read_text()), **{k: v for k, v in data.items() if k != "model"}}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    try:
        cfg = from_dict(TrainConfig, data)
    except (TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.max_minutes is not None and not args.max_minutes > 0:
        print(f"error: --max-minutes must be > 0, got {args.max_minutes}", file=sys.stderr)
        return 2
    train(cfg, resume=args.resume, device=args.device, max_steps=args.max_steps,
          max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    if args.export and int(os.environ.get("RANK", "0")) == 0:
        print(f"exported {export_checkpoint(cfg.out, args.export)}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
