"""Cost of recording attention maps: end-to-end generation with all maps recorded against none.

Runs `VideoPipeline.__call__` (16x64x64, guidance 3.0, DDIM) with `record_attention=False` and
`record_attention=True` (spatial + temporal + cross maps of every layer and step, copied to the
CPU as the UI gets them), interleaved in one process, the same seed and step count on both
sides. Each kind alone is timed too (--no-per-kind skips them), which says where the overhead
is. Goal: all maps <= 1.15x the time without.

    python benchmarks/bench_recording.py [--steps 10] [--repeats 10] [--threads N] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse

import torch

import _timing as T

GOAL = 1.15
PROMPT = "a big red circle moving left quickly"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=1)
    p.add_argument("--steps", type=int, default=10, help="denoising steps per generation (same on both sides)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--no-per-kind", dest="per_kind", action="store_false", help="skip the one-kind-at-a-time rows")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)

    from vidgen.pipeline import RECORDABLE, VideoPipeline

    model, source = T.load_model(args.checkpoint, device=args.device)
    pipe = VideoPipeline(model, device=args.device)
    common = dict(seed=0, num_inference_steps=args.steps, num_frames=args.frames, guidance_scale=3.0)
    counts = {}

    def gen(name, record):
        def run():
            result = pipe(PROMPT, record_attention=record, **common)
            counts[name] = (len(result.maps or {}), sum(m.numel() * m.element_size() for m in (result.maps or {}).values()))
        return run

    cases = {"no maps": gen("no maps", False), "all maps": gen("all maps", True)}
    if args.per_kind:
        for kind in RECORDABLE:
            cases[f"{kind} only"] = gen(f"{kind} only", (kind,))
    meta = T.metadata(args.device, model=source, steps=args.steps, frames=args.frames, guidance_scale=3.0,
                      repeats=args.repeats, warmup=args.warmup)
    times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=args.device)

    rows, md_rows = [], []
    for name in cases:
        s = T.summary(times[name])
        r = {"name": name, **s, "maps": counts[name][0], "map_megabytes": counts[name][1] / 1e6,
             "times_ms": [1000 * v for v in times[name]]}
        if name != "no maps":
            r["overhead_paired"] = T.paired_ratio(times[name], times["no maps"])
            r["overhead_medians"] = T.ratio_of_medians(times[name], times["no maps"])
        if name == "all maps":
            r["goal_met"] = r["overhead_paired"] <= GOAL
        rows.append(r)
        md_rows.append([name, r["maps"], f"{r['map_megabytes']:.1f}", T.fmt_ms(s["median_ms"]),
                        f"{T.fmt_ms(s['min_ms'])}-{T.fmt_ms(s['max_ms'])}",
                        f"{r['overhead_paired']:.3f}x" if "overhead_paired" in r else "1",
                        {True: "yes", False: "no"}.get(r.get("goal_met"), "")])
    table = T.md_table(["recorded", "maps", "MB of maps", "generation median (ms)", "min-max (ms)",
                        "vs no maps (paired)", f"goal <= {GOAL}x"], md_rows)
    print(table)
    md = "\n".join([
        "# Attention recording overhead",
        "",
        f"End-to-end `VideoPipeline` generation ({args.frames}x64x64, {args.steps} DDIM steps, guidance 3.0, seed 0) "
        "with and without recorded attention maps, interleaved in one process; "
        f"{args.warmup} warm-up round(s), median of {args.repeats}. The ratio is the median over rounds of "
        f"(time with maps / time without) measured back to back. Model: {source}.",
        "",
        T.meta_line(meta),
        "",
        table,
        "",
    ])
    T.write_results(args.out, "recording", {"meta": meta, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
