"""Shapes-world throughput: rendering ground-truth videos and judging them, in videos per second.

A fixed set of evaluation scenes (`world.evaluation_prompts`, the first --scenes of each category
single, two, audio and image; 8 each = 32 scenes by default) at 16x64x64. Two kinds of case, one
per category, interleaved in one process:

- render: what a dataset item costs, `world.render` of the scene (audio scenes: `synthesize_audio`
  first and the render pulses with it; image scenes: `first_frame` of the render);
- judge: `judge.judge` of the ground-truth render, with the audio / first-frame image where the
  prompt has them, as `vidgen.evaluate` calls it (no attention maps).

Each timed call processes all scenes of its category once; videos/s = scenes / median seconds.
The "all" rows sum each round's categories (they ran back to back) over all scenes. No model is
involved (--checkpoint and --device are ignored). The thread count (default 1) is applied to
torch and, through OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set before numpy loads, to numpy's BLAS.

    python benchmarks/bench_world.py [--scenes 8] [--threads 1] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # the BLAS thread count is read when numpy loads (via _timing's torch)
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--threads", type=int, default=1)
    _threads = str(max(1, _pre.parse_known_args(sys.argv[1:])[0].threads or 1))
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import statistics

import _timing as T

CATEGORIES = ("single", "two", "audio", "image")
SHAPE = dict(num_frames=16, height=64, width=64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=2)
    p.set_defaults(threads=1)
    p.add_argument("--scenes", type=int, default=8, help="scenes per category (4 categories)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the evaluation set")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)

    from vidgen import world
    from vidgen.judge import judge

    prompts = [q for q in world.evaluation_prompts(args.scenes, args.seed, **SHAPE) if q.category in CATEGORIES]
    by_cat = {c: [q for q in prompts if q.category == c] for c in CATEGORIES}
    truth = {q: world.render(q.caption, q.seed, audio=q.audio, **SHAPE).video for q in prompts}

    def render_case(cat):
        def run():
            for q in by_cat[cat]:
                audio = world.synthesize_audio(q.seed, num_frames=SHAPE["num_frames"]) if cat == "audio" else None
                r = world.render(q.caption, q.seed, audio=audio, **SHAPE)
                if cat == "image":
                    world.first_frame(r)
        return run

    verdicts = {}

    def judge_case(cat):
        def run():
            verdicts[cat] = [judge(truth[q], q.caption, audio=q.audio, image=q.image) for q in by_cat[cat]]
        return run

    cases = {**{f"render {c}": render_case(c) for c in CATEGORIES}, **{f"judge {c}": judge_case(c) for c in CATEGORIES}}
    meta = T.metadata("cpu", frames=SHAPE["num_frames"], height=SHAPE["height"], width=SHAPE["width"],
                      scenes_per_category=args.scenes, eval_seed=args.seed, repeats=args.repeats, warmup=args.warmup,
                      OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS"))
    times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup)
    correct = sum(v.all_correct for vs in verdicts.values() for v in vs)  # ground truth: all should be correct

    rows, md_rows = [], []
    for kind in ("render", "judge"):
        names = [f"{kind} {c}" for c in CATEGORIES]
        series = {n: times[n] for n in names}
        series[f"{kind} all"] = [sum(times[n][i] for n in names) for i in range(args.repeats)]
        for name, secs in series.items():
            cat = name.split(" ", 1)[1]
            n = len(prompts) if cat == "all" else len(by_cat[cat])
            s = T.summary(secs)
            r = {"name": name, "kind": kind, "category": cat, "videos": n, **s,
                 "videos_per_second": n / statistics.median(secs),
                 "ms_per_video": s["median_ms"] / n, "times_ms": [1000 * v for v in secs]}
            rows.append(r)
            md_rows.append([kind, cat, n, f"{r['videos_per_second']:.0f}", f"{r['ms_per_video']:.2f}",
                            f"{T.fmt_ms(s['min_ms'] / n)}-{T.fmt_ms(s['max_ms'] / n)}"])
    table = T.md_table(["what", "category", "videos", "videos/s (median)", "ms per video", "min-max ms per video"],
                       md_rows, align="|---|---|---:|---:|---:|---:|")
    print(table)
    md = "\n".join([
        "# Shapes world: render and judge throughput",
        "",
        f"Videos per second at {SHAPE['num_frames']}x{SHAPE['height']}x{SHAPE['width']} over a fixed set of "
        f"{len(prompts)} evaluation scenes ({args.scenes} each of {', '.join(CATEGORIES)}; "
        f"`evaluation_prompts(seed={args.seed})`). *render*: `world.render` (audio scenes include "
        "`synthesize_audio`, image scenes `first_frame`), i.e. one dataset item; *judge*: `judge.judge` of the "
        "ground-truth render with the prompt's audio / first-frame image, as the evaluation calls it (no "
        f"attention maps). All cases interleaved in one process; {args.warmup} warm-up round(s), median of "
        f"{args.repeats}; *all* sums each round's categories. Judge on ground truth: {correct}/{len(prompts)} "
        "all correct.",
        "",
        T.meta_line(meta) + f" numpy BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}.",
        "",
        table,
        "",
        "The machine's cores are shared with other jobs (see the load average), so absolute rates here are "
        "pessimistic.",
        "",
    ])
    T.write_results(args.out, "world", {"meta": meta, "judge_all_correct": correct, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
