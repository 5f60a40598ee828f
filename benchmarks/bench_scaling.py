"""Step time against the number of frames (8, 16, 32), factorized vs joint attention, interleaved.

One denoising step at batch 2 (the CFG pair), 64x64, text context. Factorized attention (spatial
within each frame, then temporal across frames at each location) costs about linearly in the
frame count; joint attention over all F*N space-time tokens costs quadratically in its attention
part. Goal: factorized grows at most 2.2x per doubling of the frames.

    python benchmarks/bench_scaling.py [--frames 8 16 32] [--repeats 10] [--threads N] [--checkpoint DIR]

With --checkpoint, the checkpoint's weights are used for its own variant; the other variant is
built from its config with `variant` switched (the weights that fit are loaded; speed does not
depend on them).
"""

from __future__ import annotations

import argparse

import torch

import _timing as T

BATCH, SIZE = 2, 64
GOAL = 2.2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=2)
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--variants", nargs="+", default=["factorized", "joint"])
    args = p.parse_args(argv)
    T.apply_common_args(p, args)

    cases, info, source = {}, {}, None
    with torch.inference_mode():
        for variant in args.variants:
            model, source = T.load_model(args.checkpoint, device=args.device, variant=variant)
            ids, _ = model.text.tokenize(["", "a big red circle moving left quickly"])
            for frames in args.frames:
                if frames > model.cfg.max_frames:
                    p.error(f"{frames} frames > max_frames {model.cfg.max_frames}")
                x = torch.randn(BATCH, model.cfg.in_channels, frames, SIZE, SIZE, device=args.device)
                t = torch.full((BATCH,), 500, device=args.device)
                cond = model.encode(ids.to(args.device), frames)
                name = f"{variant} F={frames}"
                cases[name] = (lambda m=model, x=x, t=t, c=cond: m(x, t, c))
                info[name] = {"variant": variant, "frames": frames, "params_denoiser": T.num_params(model.denoiser)}
        meta = T.metadata(args.device, model=source, batch=BATCH, size=f"{SIZE}x{SIZE}",
                          repeats=args.repeats, warmup=args.warmup)
        times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=args.device)

    rows, md_rows = [], []
    for variant in args.variants:
        prev = None
        for frames in args.frames:
            name = f"{variant} F={frames}"
            s = T.summary(times[name])
            r = {"name": name, **info[name], **s, "times_ms": [1000 * v for v in times[name]]}
            growth = ""
            if prev is not None:
                r["growth_vs_previous_paired"] = T.paired_ratio(times[name], times[prev])
                r["growth_vs_previous_medians"] = T.ratio_of_medians(times[name], times[prev])
                r["frames_ratio"] = frames / info[prev]["frames"]
                if variant == "factorized" and r["frames_ratio"] == 2:
                    r["goal_met"] = r["growth_vs_previous_paired"] <= GOAL
                growth = f"{r['growth_vs_previous_paired']:.2f}x (x{r['frames_ratio']:g} frames)"
            met = {True: "yes", False: "no"}.get(r.get("goal_met"), "")
            rows.append(r)
            md_rows.append([variant, frames, f"{info[name]['params_denoiser']:,}", T.fmt_ms(s["median_ms"]),
                            f"{T.fmt_ms(s['min_ms'])}-{T.fmt_ms(s['max_ms'])}", growth, met])
            prev = name
    for frames in args.frames:
        a, b = f"joint F={frames}", f"factorized F={frames}"
        if a in times and b in times:
            rows.append({"name": f"joint / factorized F={frames}", "paired_ratio": T.paired_ratio(times[a], times[b])})

    table = T.md_table(["variant", "frames", "params (denoiser)", "step median (ms)", "min-max (ms)",
                        "growth vs previous row (paired)", f"goal <= {GOAL}x per doubling"], md_rows)
    jf = [f"F={r['name'].split('=')[-1]}: {r['paired_ratio']:.2f}x" for r in rows if "paired_ratio" in r]
    print(table)
    md = "\n".join([
        "# Scaling with the number of frames",
        "",
        f"One denoising step (batch {BATCH}, {SIZE}x{SIZE}, text context) per frame count and variant, all "
        f"cases interleaved in one process; {args.warmup} warm-up rounds, median of {args.repeats}. Growth is "
        "the median over rounds of (this row's time / the previous row's time in the same round). "
        f"Model: {source}.",
        "",
        T.meta_line(meta),
        "",
        table,
        "",
        "Joint / factorized step time (paired): " + ", ".join(jf) + ".",
        "",
    ])
    T.write_results(args.out, "scaling", {"meta": meta, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
