"""The distilled "fast" mode against its teacher's default generation (issue 9: >= 5x faster).

Teacher: `pipe(prompt)` with the pipeline's defaults (25 DDIM steps, guidance 3.0: one batch-2 CFG
call per step). Student: the progressive-distillation checkpoint with `sampler="fast"` (its own
step count, guidance baked in: one batch-1 call per step). Both 16x64x64, seed 0, no maps, the
same prompt, interleaved in one process; the ratio is paired (teacher / student in the same round).

    python benchmarks/bench_fast.py --teacher checkpoints/vidgen-shapes --student checkpoints/vidgen-shapes-4step
"""

from __future__ import annotations

import argparse

import _timing as T

GOAL_SPEEDUP = 5.0
PROMPT = "a big red circle moving left quickly"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=1)
    p.add_argument("--teacher", default="checkpoints/vidgen-shapes")
    p.add_argument("--student", default="checkpoints/vidgen-shapes-4step")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)

    from vidgen.pipeline import VideoPipeline

    teacher = VideoPipeline(T.load_model(args.teacher, device=args.device)[0], device=args.device)
    student = VideoPipeline(T.load_model(args.student, device=args.device)[0], device=args.device)
    if not student.cfg.distilled_steps:
        p.error(f"{args.student} is not a distilled checkpoint (its config has no distilled_steps)")
    runs = {}

    def case(name, pipe, **kw):
        def run():
            runs[name] = pipe(PROMPT, seed=0, **kw).settings
        return run

    cases = {"teacher default": case("teacher default", teacher), "student fast": case("student fast", student, sampler="fast")}
    meta = T.metadata(args.device, teacher=args.teacher, student=args.student, repeats=args.repeats, warmup=args.warmup)
    times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=args.device)
    speedup = T.paired_ratio(times["teacher default"], times["student fast"])
    rows, md_rows = [], []
    for name in cases:
        s, st = T.summary(times[name]), runs[name]
        rows.append({"name": name, **s, "steps": st.num_inference_steps, "guidance_scale": st.guidance_scale,
                     "sampler": st.sampler, "times_ms": [1000 * v for v in times[name]]})
        md_rows.append([name, st.sampler, st.num_inference_steps, f"{st.guidance_scale:g}", T.fmt_ms(s["median_ms"]),
                        f"{T.fmt_ms(s['min_ms'])}-{T.fmt_ms(s['max_ms'])}"])
    table = T.md_table(["what", "sampler", "steps", "guidance", "median (ms)", "min-max (ms)"], md_rows)
    verdict = f"**Speed-up (teacher / student, paired): {speedup:.1f}x; goal >= {GOAL_SPEEDUP:g}x: " \
              f"{'met' if speedup >= GOAL_SPEEDUP else 'not met'}.**"
    print(table)
    print(verdict)
    md = "\n".join([
        "# Fast mode: the distilled student against its teacher",
        "",
        f"Prompt {PROMPT!r}, seed 0, no maps. Teacher `{args.teacher}` with the pipeline's defaults; student "
        f"`{args.student}` with `sampler=\"fast\"`. Interleaved in one process; {args.warmup} warm-up round(s), "
        f"median of {args.repeats}.",
        "",
        T.meta_line(meta),
        "",
        table,
        "",
        verdict,
        "",
    ])
    T.write_results(args.out, "fast", {"meta": meta, "speedup_paired": speedup, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
