"""Shared helpers of the benchmark scripts: interleaved timing, paired ratios, metadata, results.

The rule every comparison follows (the machine is shared, so absolute seconds drift with its
load): all sides run in ONE process, interleaved round by round (the order reversed every other
round), after a warm-up, and the result is the median of >= 10 rounds plus the *paired* ratio,
the median over rounds of (time of A / time of B) measured back to back, which cancels most of
the drift that a ratio of two medians still carries.

    times = interleaved({"ours": f, "theirs": g}, repeats=10, warmup=2)
    summary(times["ours"]), paired_ratio(times["ours"], times["theirs"])
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
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
RANDOM_NOTE = (
    "a randomly initialised default model (ModelConfig() + the shapes-world vocabulary, weights "
    "perturbed so every branch computes); step time does not depend on the weights"
)


# ---------------------------------------------------------------------------- timing
def _sync(device: str | torch.device | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_once(fn: Callable[[], object], device: str | torch.device | None = None) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def interleaved(
    cases: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 10,
    warmup: int = 2,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Seconds per call of every case, run round-robin: each round calls every case once, in an
    order reversed every other round. Warm-up rounds run first and are discarded."""
    if repeats < 10:
        raise ValueError("repeats must be >= 10 (the reported numbers are medians)")
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(time_once(cases[name], device))
        if progress:
            print(f"  round {r + 1}/{repeats}: " + ", ".join(f"{n} {1000 * times[n][-1]:.0f} ms" for n in names),
                  file=sys.stderr, flush=True)
    return times


def summary(seconds: list[float]) -> dict[str, float]:
    """Median / min / max / interquartile range in milliseconds."""
    ms = sorted(1000 * s for s in seconds)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "min_ms": ms[0], "max_ms": ms[-1],
            "q1_ms": q[0], "q3_ms": q[2], "n": len(ms)}


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a[i] / b[i] (A and B ran back to back in round i)."""
    return statistics.median(x / y for x, y in zip(a, b))


def ratio_of_medians(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b)


# ---------------------------------------------------------------------------- context
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata(device: str = "cpu", **extra) -> dict:
    """Everything a reader needs to interpret the absolute numbers."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device if torch.device(device).type != "cpu" else f"cpu: {cpu_name()}",
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1_5_15": [round(x, 2) for x in load] if load[0] is not None else None,
    }
    if torch.device(device).type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    meta.update(extra)
    return meta


def add_common_args(p: argparse.ArgumentParser, *, repeats: int = 10, warmup: int = 2) -> None:
    p.add_argument("--checkpoint", default=None,
                   help="a checkpoint folder or Hub id (default: a randomly initialised default model)")
    p.add_argument("--repeats", type=int, default=repeats, help="timed rounds (>= 10; medians are reported)")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(RESULTS), help="results folder")


def apply_common_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.repeats < 10:
        p.error("--repeats must be at least 10 (the reported numbers are medians)")
    if args.threads:
        torch.set_num_threads(args.threads)


# ---------------------------------------------------------------------------- models
def load_model(checkpoint: str | None = None, *, device: str = "cpu", seed: int = 0, **overrides):
    """A VideoModel in eval mode: the checkpoint's, or a randomly initialised default one (with
    `overrides` applied to its ModelConfig). Returns (model, description)."""
    from vidgen.checkpoint import VideoModel
    from vidgen.config import ModelConfig

    if checkpoint:
        from vidgen.hub import resolve_checkpoint

        model = VideoModel.from_pretrained(resolve_checkpoint(checkpoint))
        if overrides:
            import dataclasses

            cfg = dataclasses.replace(model.cfg, **overrides)
            state = model.state_dict()
            model = VideoModel(cfg)
            model.load_state_dict(state, strict=False)
        return model.to(device).eval(), f"checkpoint {checkpoint}"
    from vidgen.world import VOCABULARY

    torch.manual_seed(seed)
    model = VideoModel(ModelConfig(vocabulary=tuple(VOCABULARY), **overrides))
    with torch.no_grad():  # zero-initialised output layers would leave branches inert; perturb them
        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return model.to(device).eval(), RANDOM_NOTE


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------- output
def md_table(header: list[str], rows: list[list[object]], align: str | None = None) -> str:
    align = align or ("|---" + "|---:" * (len(header) - 1) + "|")
    out = ["| " + " | ".join(header) + " |", align]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def meta_line(meta: dict) -> str:
    load = meta.get("load_average_1_5_15")
    return (f"Measured {meta['date']} on {meta['device']} ({meta['cpu_count']} logical CPUs), "
            f"{meta['threads']} torch threads, torch {meta['torch']}, load average (1/5/15 min) {load}.")


def write_results(out_dir: str | Path, name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out / f"{name}.json", out / f"{name}.md"
    jpath.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    mpath.write_text(markdown.rstrip() + "\n")
    print(f"wrote {jpath} and {mpath}")
    return jpath, mpath


def fmt_ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"
