"""Parameter count and the time of one denoising step on this machine.

One step = one forward pass of the model on the classifier-free-guidance pair (batch 2: conditional
and unconditional) of a 16-frame 64x64 video at the default ModelConfig, with the conditioning
(text + one audio token per frame) encoded beforehand, as the sampler loop does. Measured under
torch.inference_mode() with 3 warm-up passes and the median of >= 10 timed passes, at
torch.get_num_threads() threads. Both denoiser variants are timed: "factorized" (spatial then
temporal attention, the default) and "joint" (one attention over all space-time tokens).

    python benchmarks/step_time.py [--repeats 10] [--warmup 3] [--threads N] [--device cpu]

Writes benchmarks/results/step_time.json and benchmarks/results/step_time.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidgen.checkpoint import VideoModel  # noqa: E402
from vidgen.config import ModelConfig  # noqa: E402

try:
    from vidgen.world import VOCABULARY
except Exception:  # world.py is optional for this benchmark
    VOCABULARY = ("a", "and", "moving", "small", "big", "red", "blue", "circle", "square", "triangle", "left", "right")

RESULTS = ROOT / "benchmarks" / "results"
BATCH, FRAMES, SIZE = 2, 16, 64


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def time_step(variant: str, *, repeats: int, warmup: int, device: str) -> dict:
    torch.manual_seed(0)
    cfg = ModelConfig(variant=variant, vocabulary=tuple(VOCABULARY))
    model = VideoModel(cfg).to(device).eval()
    # Perturb the zero-initialised output layers so every branch really computes (same cost either way).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ids, _ = model.text.tokenize(["a big red circle moving left quickly", ""])
    audio = 0.3 * torch.randn(BATCH, int(FRAMES / cfg.fps * cfg.audio_sample_rate))
    x_t = torch.randn(BATCH, cfg.in_channels, FRAMES, SIZE, SIZE, device=device)
    t = torch.full((BATCH,), 500, device=device)
    times = []
    with torch.inference_mode():
        cond = model.encode(ids.to(device), FRAMES, audio.to(device))
        for i in range(warmup + repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = model(x_t, t, cond)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    assert out.shape == x_t.shape and torch.isfinite(out).all()
    return {
        "variant": variant,
        "params_total": count(model),
        "params_denoiser": count(model.denoiser),
        "params_text": count(model.text),
        "params_audio": count(model.audio),
        "context_tokens": int(cond.context.shape[1]),
        "step_ms_median": 1000 * statistics.median(times),
        "step_ms_min": 1000 * min(times),
        "step_ms_max": 1000 * max(times),
        "repeats": repeats,
        "warmup": warmup,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", nargs="+", default=["factorized", "joint"])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch.get_num_threads())")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 10:
        p.error("--repeats must be at least 10 (the reported number is a median)")

    threads = torch.get_num_threads()
    rows = [time_step(v, repeats=args.repeats, warmup=args.warmup, device=args.device) for v in args.variants]
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "device": args.device if args.device != "cpu" else f"cpu ({platform.processor() or platform.machine()})",
        "threads": threads,
        "batch": BATCH,
        "frames": FRAMES,
        "size": f"{SIZE}x{SIZE}",
        "config": "ModelConfig() defaults + shapes-world vocabulary",
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }

    header = "| variant | params (VideoModel) | params (denoiser) | context tokens | step median (ms) | min | max |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['params_total']:,} | {r['params_denoiser']:,} | {r['context_tokens']} | "
            f"{r['step_ms_median']:.1f} | {r['step_ms_min']:.1f} | {r['step_ms_max']:.1f} |"
        )
    table = "\n".join(lines)
    print(f"one denoising step: batch {BATCH} (CFG pair), {FRAMES} frames, {SIZE}x{SIZE}, "
          f"{meta['device']}, {threads} threads, torch {torch.__version__}; "
          f"median of {args.repeats} after {args.warmup} warm-ups")
    print(table)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "step_time.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    md = [
        "# Denoising step time",
        "",
        f"One forward pass of `VideoModel` on the classifier-free-guidance pair (batch {BATCH}), "
        f"{FRAMES} frames at {SIZE}x{SIZE}, conditioning (text + audio tokens) encoded beforehand, "
        f"under `torch.inference_mode()`; {args.warmup} warm-ups, median of {args.repeats} repeats.",
        "",
        f"Measured {meta['date']} on {meta['device']}, {threads} threads, torch {meta['torch']}, "
        f"1-minute load average {meta['load_average_1min']}. "
        "Timings depend on the machine and its load; re-run `python benchmarks/step_time.py` to refresh.",
        "",
        table,
        "",
    ]
    (RESULTS / "step_time.md").write_text("\n".join(md))
    print(f"wrote {RESULTS / 'step_time.json'} and {RESULTS / 'step_time.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
