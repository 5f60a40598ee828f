"""torch.compile on the CPU: does it pay for itself here? (issue 8's candidate list)

Times one denoising step of the CFG pair as the pipeline runs it (x_t and t shared, context batch 2,
no maps) in eager mode and compiled with `torch.compile(model.denoiser, dynamic=False)` (inductor),
interleaved in one process after warm-up, median of >= 10 rounds and the paired ratio. It also times
the compilation itself (the first compiled call), which a user pays once per process and again
per new shape (frame count, resolution) or attention processor (map recording, ablations).

    python benchmarks/bench_compile.py [--checkpoint DIR] [--threads 2] [--repeats 20]

Writes compile.json and compile.md. Needs a C++ compiler (inductor builds its CPU kernels).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

# A fresh inductor cache, so the compile time measured is the cold one a new process (or Space) pays.
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="vidgen-inductor-")

import torch  # noqa: E402

import _timing as T  # noqa: E402

PROMPT = "a big red circle moving left quickly"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=20, warmup=3)
    p.add_argument("--steps", type=int, default=25, help="steps of the generation the step time is scaled to")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)
    model, source = T.load_model(args.checkpoint, device=args.device)
    cfg = model.cfg
    ids, _ = model.text.tokenize(["", PROMPT])
    x_t = torch.randn(1, cfg.in_channels, cfg.num_frames, cfg.sample_size, cfg.sample_size, device=args.device)
    t = torch.full((1,), 500, device=args.device)
    with torch.inference_mode():
        cond = model.encode(ids.to(args.device), cfg.num_frames)
    inputs = (x_t, t, cond.context, cond.context_mask, cond.frame_cond, None, None, cond.words)
    compiled = torch.compile(model.denoiser, dynamic=False)

    with torch.inference_mode():
        reference = model.denoiser(*inputs)
        start = time.perf_counter()
        out = compiled(*inputs)
        compile_s = time.perf_counter() - start
        max_diff = (out - reference).abs().max().item()
        times = T.interleaved({"eager": lambda: model.denoiser(*inputs), "compiled": lambda: compiled(*inputs)},
                              repeats=args.repeats, warmup=args.warmup, device=args.device)
    s = {k: T.summary(v) for k, v in times.items()}
    ratio = T.paired_ratio(times["compiled"], times["eager"])
    saved_s = (s["eager"]["median_ms"] - s["compiled"]["median_ms"]) / 1000 * args.steps
    breakeven = compile_s / saved_s if saved_s > 0 else float("inf")
    meta = T.metadata(args.device, source=source)
    payload = {"meta": meta, "cases": s, "compiled_over_eager": ratio, "compile_seconds": compile_s,
               "max_abs_diff": max_diff, "saved_per_generation_s": saved_s, "breakeven_generations": breakeven}
    rows = [[k, T.fmt_ms(v["median_ms"]), f"{T.fmt_ms(v['min_ms'])}–{T.fmt_ms(v['max_ms'])}"] for k, v in s.items()]
    md = "\n".join([
        "# torch.compile on the CPU", "", T.meta_line(meta), "",
        f"Model: {source}. One step of the CFG pair (shared rows, no maps), eager against "
        f"`torch.compile(model.denoiser, dynamic=False)`, interleaved; {args.warmup} warm-up rounds, median of {args.repeats}.", "",
        T.md_table(["mode", "step median (ms)", "range (ms)"], rows, "|---|---:|---:|"), "",
        f"- compiled / eager (paired): {ratio:.3f}x; outputs agree to {max_diff:.1e}.",
        f"- compiling (the first compiled call) took {compile_s:.1f} s (cold cache). Over a {args.steps}-step generation the "
        f"compiled step saves {saved_s:.3f} s, so compiling pays off after {breakeven:.0f} generations of one shape, "
        "and it is paid again for every new frame count, resolution or attention processor (map recording, ablations).",
    ])
    T.write_results(args.out, "compile", payload, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
