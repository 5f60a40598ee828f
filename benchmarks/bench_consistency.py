"""Temporal-consistency loss: training runs with and without it at an equal budget, then judged.

Every run trains from the same initialisation on the same data stream for the same number of
steps and batch size (the budget; wall time is reported too, as the loss adds a little compute),
differing only in `TrainConfig.consistency_weight`. Each EMA model then generates the same
text-only evaluation prompts ("single" and "two" categories of `world.evaluation_prompts`, fixed
seeds, DDIM, guidance 3.0) and is scored on:

- temporal stability: the judge's per-video stability score (presence, consistent shape, smooth
  area and path), mean, and the share of videos judged stable;
- inter-frame SSIM: mean SSIM between consecutive frames of the generated video, next to the same
  number for the real world video of the same prompt and seed (`world.render`); flicker pulls it
  below the real one, a frozen video pushes it above, so |gap| is the figure of merit;
- attribute accuracy: per attribute and all-correct rates (single and two-object prompts).

    python benchmarks/bench_consistency.py --steps 4000 --weights 0 0.5 [--preset presets/shapes.json]
    python benchmarks/bench_consistency.py --steps 300 --init-from runs/shapes-shift   # fine-tuning budget
    python benchmarks/bench_consistency.py --smoke      # a tiny model, a few steps: proves the script runs

Results go to benchmarks/results/consistency[_smoke].json|md. A smoke run measures nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import _timing as T

SMOKE_MODEL = dict(width=32, heads=2, depth=1, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
                   context_length=24, sample_size=32)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al., 2004) of two (3, H, W) images in [0, 1], Gaussian window, channels averaged."""
    c1, c2 = 0.01**2, 0.03**2
    g = torch.exp(-((torch.arange(window) - window // 2) ** 2) / (2 * sigma**2))
    g = (g[:, None] * g[None, :]) / g.sum() ** 2
    k = g.expand(3, 1, window, window).to(a)
    blur = lambda x: F.conv2d(x[None], k, groups=3)  # noqa: E731  ('valid' windows only)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def inter_frame_ssim(frames: np.ndarray) -> float:
    """Mean SSIM of consecutive frames of a uint8 (F, H, W, 3) video."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).double() / 255.0
    return float(np.mean([ssim(x[f], x[f + 1]) for f in range(len(x) - 1)]))


def run_one(weight: float, args, base_cfg, folder: Path) -> dict:
    from vidgen.train import train

    cfg = dataclasses.replace(base_cfg, out=str(folder / f"w{weight:g}"), consistency_weight=weight)
    t0 = time.perf_counter()
    _, ema = train(cfg, progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    lines = [json.loads(x) for x in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    tail = lines[-max(1, len(lines) // 10):]  # the last tenth of the logged steps
    return {"weight": weight, "train_seconds": seconds, "ema": ema,
            "final_mse": float(np.mean([r.get("mse", r["loss"]) for r in tail])),
            "final_consistency": (float(np.mean([r["consistency"] for r in tail])) if "consistency" in tail[0] else None)}


def evaluate_one(ema, prompts, args, real_ssim: list[float]) -> dict:
    from vidgen.judge import ATTRIBUTES, judge
    from vidgen.pipeline import VideoPipeline

    pipe = VideoPipeline(ema, device="cpu")
    rows = []
    for p, real in zip(prompts, real_ssim):
        r = pipe(p.caption, seed=p.seed, num_inference_steps=args.eval_steps, guidance_scale=args.guidance)
        v = judge(r.frames, p.caption)
        gen = inter_frame_ssim(r.frames)
        rows.append({"category": p.category, "stability": v.stability, "stable": v.stable, "all_correct": v.all_correct,
                     "correct": v.correct, "ssim": gen, "ssim_real": real, "ssim_gap": gen - real})

    def mean(xs):
        xs = [float(x) for x in xs if x is not None]
        return float(np.mean(xs)) if xs else None

    out = {"n": len(rows), "stability_mean": mean(r["stability"] for r in rows), "stable_rate": mean(r["stable"] for r in rows),
           "ssim_generated": mean(r["ssim"] for r in rows), "ssim_real": mean(r["ssim_real"] for r in rows),
           "ssim_abs_gap": mean(abs(r["ssim_gap"]) for r in rows)}
    for cat in ("single", "two"):
        sel = [r for r in rows if r["category"] == cat]
        out[f"{cat}_all_correct"] = mean(r["all_correct"] for r in sel)
    for a in ATTRIBUTES:
        out[f"{a}_accuracy"] = mean(r["correct"][a] for r in rows)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default=str(T.ROOT / "presets" / "shapes.json"), help="TrainConfig JSON (model and data)")
    p.add_argument("--steps", type=int, default=4000, help="training steps per run (the budget)")
    p.add_argument("--batch-size", type=int, default=None, help="(default: the preset's)")
    p.add_argument("--frames", type=int, default=None, help="frames per video (default: the preset's)")
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5], help="consistency weights (0 = baseline)")
    p.add_argument("--n", type=int, default=20, help="evaluation prompts per category (single, two)")
    p.add_argument("--eval-steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--init-from", default=None,
                   help="warm start every run from this run or checkpoint folder (overrides the preset's init_from); "
                        "'' = from scratch")
    p.add_argument("--smoke", action="store_true", help="a tiny model, 3 steps, 2 prompts: proves the script runs")
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=str(T.RESULTS), help="results folder")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from vidgen.train import TrainConfig, load_train_config
    from vidgen.world import evaluation_prompts, render

    base = load_train_config(args.preset)
    if args.init_from is not None:
        base = dataclasses.replace(base, init_from=args.init_from)
    model_cfg = base.model
    if args.smoke:  # a tiny random model: no warm start fits it
        model_cfg = dataclasses.replace(model_cfg, **SMOKE_MODEL)
        base = dataclasses.replace(base, init_from="")
        args.steps, args.n, args.eval_steps = min(args.steps, 3), min(args.n, 1), min(args.eval_steps, 2)
    frames = args.frames or (4 if args.smoke else base.num_frames)
    model_cfg = dataclasses.replace(model_cfg, num_frames=frames, max_frames=max(model_cfg.max_frames, frames))
    base = dataclasses.replace(
        base, model=model_cfg, num_frames=frames,
        frames_schedule=tuple((u, min(f, frames)) for u, f in base.frames_schedule),
        batch_size=args.batch_size or (2 if args.smoke else base.batch_size), total_steps=args.steps,
        warmup_steps=min(base.warmup_steps, max(1, args.steps // 10)), eval_every=0, sample_every=0,
        save_every=args.steps, log_every=max(1, min(25, args.steps // 20)), seed=args.seed, threads=args.threads,
    )
    assert isinstance(base, TrainConfig)
    size = base.model.sample_size
    prompts = [q for q in evaluation_prompts(args.n, seed=4321, num_frames=frames, height=size, width=size)
               if q.category in ("single", "two")]
    real_ssim = [inter_frame_ssim(_uint8(render(q.caption, q.seed, num_frames=frames, height=size, width=size).video))
                 for q in prompts]

    from vidgen.checkpoint import VideoModel

    VideoModel(base.model)  # warm-up: the imports and first allocations must not count against the first run
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.weights:
            print(f"training with consistency_weight={w:g} for {args.steps} steps ...", file=sys.stderr)
            run = run_one(w, args, base, Path(tmp))
            run.update(evaluate_one(run.pop("ema"), prompts, args, real_ssim))
            runs.append(run)

    smoke = args.smoke
    meta = T.metadata("cpu", preset=args.preset, init_from=base.init_from or None, steps=args.steps, batch_size=base.batch_size, frames=frames,
                      size=size, eval_steps=args.eval_steps, guidance=args.guidance, prompts=len(prompts), smoke=smoke)
    cols = [("weight", "consistency weight"), ("train_seconds", "train s"), ("final_mse", "data loss"),
            ("final_consistency", "consistency loss"), ("stability_mean", "stability"), ("stable_rate", "stable"),
            ("ssim_generated", "inter-frame SSIM"), ("ssim_real", "real SSIM"), ("ssim_abs_gap", "SSIM gap (abs)"),
            ("single_all_correct", "single all-correct"), ("two_all_correct", "two all-correct"),
            ("color_accuracy", "color"), ("shape_accuracy", "shape"), ("size_accuracy", "size"),
            ("direction_accuracy", "direction"), ("speed_accuracy", "speed")]
    fmt = lambda v: "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    md = [
        "# Temporal-consistency loss: with vs without, equal training budget",
        "",
        ("**SMOKE RUN: the budget is far too small for any conclusion; it only proves the script works.**\n"
         if smoke else ""),
        f"{args.steps} steps x batch {base.batch_size} x {frames} frames of {size}x{size} per run, same init "
        f"({'the weights of ' + repr(base.init_from) if base.init_from else 'random'}) and data; "
        f"{len(prompts)} text prompts (single + two objects, fixed seeds), DDIM {args.eval_steps} steps, guidance "
        f"{args.guidance:g}. Real SSIM: the same prompts rendered by the world.",
        "",
        T.md_table([c[1] for c in cols], [[fmt(r.get(k)) for k, _ in cols] for r in runs]),
        "",
        T.meta_line(meta),
    ]
    T.write_results(args.out, "consistency_smoke" if smoke else "consistency", {"meta": meta, "runs": runs}, "\n".join(md))
    return 0


def _uint8(video: torch.Tensor) -> np.ndarray:
    from vidgen.video_io import video_to_uint8

    return video_to_uint8(video)


if __name__ == "__main__":
    raise SystemExit(main())
