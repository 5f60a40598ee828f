"""End to end: a default generation's wall time and the time to the first streamed preview.

The default generation is `pipe(prompt)`: 16 frames of 64x64, 25 DDIM steps, guidance 3.0 (the
CFG pair batched), no maps. The first preview is the time from calling `pipe.stream(...)` to the
first StepEvent (validation, text encoding, one denoising step, the uint8 preview), after which
the stream is closed (a cancel). Both are timed at each thread count of --thread-counts, all
cases interleaved in one process (torch.set_num_threads switches between them), so the thread
setting is compared under the same machine load. Goals on 2 CPU cores: <= 1.0 s and <= 150 ms.

    python benchmarks/bench_e2e.py [--thread-counts 1 2] [--steps 25] [--repeats 10] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import os

import torch

import _timing as T

GOAL_TOTAL_S, GOAL_FIRST_MS = 1.0, 150.0
PROMPT = "a big red circle moving left quickly"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=1)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--thread-counts", type=int, nargs="+", default=None,
                   help="torch thread counts to compare (default: 1 and the number of CPUs)")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)
    counts = args.thread_counts or sorted({1, args.threads or os.cpu_count() or 1})

    from vidgen.pipeline import VideoPipeline

    model, source = T.load_model(args.checkpoint, device=args.device)
    pipe = VideoPipeline(model, device=args.device)
    settings = dict(seed=0, num_inference_steps=args.steps, guidance_scale=3.0)
    inner = {}

    def generate(n):
        def run():
            torch.set_num_threads(n)
            inner[("generate", n)] = pipe(PROMPT, **settings).timings
        return run

    def first_preview(n):
        def run():
            torch.set_num_threads(n)
            stream = pipe.stream(PROMPT, **settings)
            event = next(stream)
            stream.close()
            assert event.step == 0 and event.preview.shape[0] == pipe.cfg.num_frames
        return run

    cases = {}
    for n in counts:
        cases[f"generate, {n} thread(s)"] = generate(n)
        cases[f"first preview, {n} thread(s)"] = first_preview(n)
    meta = T.metadata(args.device, model=source, steps=args.steps, guidance_scale=3.0, frames=pipe.cfg.num_frames,
                      size=f"{pipe.cfg.sample_size}x{pipe.cfg.sample_size}", thread_counts=counts,
                      repeats=args.repeats, warmup=args.warmup)
    times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=args.device)

    rows, md_rows = [], []
    for name in cases:
        s = T.summary(times[name])
        kind, n = name.split(",")[0], int(name.split(", ")[1].split()[0])
        goal = GOAL_TOTAL_S * 1000 if kind == "generate" else GOAL_FIRST_MS
        r = {"name": name, "threads": n, **s, "goal_ms": goal, "goal_met": s["median_ms"] <= goal,
             "times_ms": [1000 * v for v in times[name]]}
        if kind == "generate":
            r["pipeline_timings_last_run"] = inner[("generate", n)]
        if n != counts[0]:
            base = f"{kind}, {counts[0]} thread(s)"
            r[f"vs_{counts[0]}_threads_paired"] = T.paired_ratio(times[name], times[base])
        rows.append(r)
        vs = f"{r[f'vs_{counts[0]}_threads_paired']:.2f}x" if n != counts[0] else "1"
        md_rows.append([kind, n, T.fmt_ms(s["median_ms"]), f"{T.fmt_ms(s['min_ms'])}-{T.fmt_ms(s['max_ms'])}",
                        vs, f"<= {goal:g} ms", "yes" if r["goal_met"] else "no"])
    table = T.md_table(["what", "threads", "median (ms)", "min-max (ms)", f"vs {counts[0]} thread(s) (paired)",
                        "goal", "met"], md_rows)
    print(table)
    md = "\n".join([
        "# End to end: default generation and first preview",
        "",
        f"`VideoPipeline` with its defaults ({pipe.cfg.num_frames}x{pipe.cfg.sample_size}x{pipe.cfg.sample_size}, "
        f"{args.steps} DDIM steps, guidance 3.0 as one batch-2 CFG call per step, no maps, seed 0). "
        "'first preview' = `pipe.stream(...)` to its first event, then a cancel. All cases interleaved in one "
        f"process; {args.warmup} warm-up round(s), median of {args.repeats}. Model: {source}.",
        "",
        T.meta_line(meta).replace(f"{meta['threads']} torch threads", "torch threads per row"),
        "",
        table,
        "",
        "The goals are for 2 dedicated CPU cores; this machine's cores are shared with other jobs "
        "(see the load average), so absolute times here are pessimistic.",
        "",
    ])
    T.write_results(args.out, "e2e", {"meta": meta, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
