"""Roofline: FLOPs of one denoising step against a measured fp32 matmul peak on this machine.

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions and
attention; the CPU flash-attention kernel is added to its registry, elementwise ops are not
counted, as usual). The peak is the best median throughput of square fp32 matmuls (1024, 2048),
and a matmul of the shape our linear layers have (2048 tokens x 96 -> 288) shows what small
matrices reach. The step and the matmuls run interleaved in one process, so they see the same
machine load. Achieved fraction = (FLOPs / step median) / peak.

    python benchmarks/bench_roofline.py [--repeats 10] [--threads N] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

import _timing as T

BATCH, FRAMES, SIZE = 2, 16, 64
aten = torch.ops.aten


def _cpu_sdpa_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(q, k, v)


def count_flops(fn) -> tuple[int, dict[str, int]]:
    """Total FLOPs of fn() and a per-operator breakdown."""
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as mode:
        fn()
    by_op = defaultdict(int)
    for op, n in mode.get_flop_counts()["Global"].items():
        by_op[str(op).replace("aten.", "")] += n
    return mode.get_total_flops(), dict(by_op)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=2)
    args = p.parse_args(argv)
    T.apply_common_args(p, args)

    model, source = T.load_model(args.checkpoint, device=args.device)
    ids, _ = model.text.tokenize(["", "a big red circle moving left quickly"])
    x = torch.randn(BATCH, model.cfg.in_channels, FRAMES, SIZE, SIZE, device=args.device)
    t = torch.full((BATCH,), 500, device=args.device)
    mats = {n: (torch.randn(n, n, device=args.device), torch.randn(n, n, device=args.device)) for n in (1024, 2048)}
    tokens = BATCH * FRAMES * (SIZE // model.cfg.downsample) ** 2
    small = (torch.randn(tokens, model.cfg.width, device=args.device),
             torch.randn(model.cfg.width, 3 * model.cfg.width, device=args.device))
    with torch.inference_mode():
        cond = model.encode(ids.to(args.device), FRAMES)
        step = lambda: model(x, t, cond)  # noqa: E731
        flops, by_op = count_flops(step)
        cases = {"denoising step": step}
        mm_flops = {}
        for n, (a, b) in mats.items():
            cases[f"matmul {n}x{n}x{n}"] = (lambda a=a, b=b: a @ b)
            mm_flops[f"matmul {n}x{n}x{n}"] = 2 * n**3
        name_small = f"matmul {tokens}x{small[0].shape[1]}x{small[1].shape[1]} (our qkv shape)"
        cases[name_small] = lambda: small[0] @ small[1]
        mm_flops[name_small] = 2 * tokens * small[0].shape[1] * small[1].shape[1]
        meta = T.metadata(args.device, model=source, batch=BATCH, frames=FRAMES, size=f"{SIZE}x{SIZE}",
                          repeats=args.repeats, warmup=args.warmup)
        times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=args.device)

    rows = {}
    for name in cases:
        s = T.summary(times[name])
        f = flops if name == "denoising step" else mm_flops[name]
        rows[name] = {**s, "flops": f, "gflops_per_s": f / (s["median_ms"] / 1000) / 1e9}
    square = [n for n in rows if n.startswith("matmul") and "our" not in n]
    peak_name = max(square, key=lambda n: rows[n]["gflops_per_s"])
    peak = rows[peak_name]["gflops_per_s"]
    for name, r in rows.items():
        r["fraction_of_peak"] = r["gflops_per_s"] / peak
    step = rows["denoising step"]

    md_rows = [[name, f"{r['flops'] / 1e9:.3f}", T.fmt_ms(r["median_ms"]), f"{r['gflops_per_s']:.1f}",
                f"{100 * r['fraction_of_peak']:.1f}%"] for name, r in rows.items()]
    table = T.md_table(["what", "GFLOP", "median (ms)", "GFLOP/s", "of peak"], md_rows)
    ops = T.md_table(["operator", "GFLOP per step", "share"],
                     [[op, f"{n / 1e9:.3f}", f"{100 * n / flops:.1f}%"] for op, n in sorted(by_op.items(), key=lambda kv: -kv[1])])
    print(table)
    print(ops)
    md = "\n".join([
        "# Roofline: FLOPs per step against the measured matmul peak",
        "",
        f"One denoising step (batch {BATCH}, {FRAMES}x{SIZE}x{SIZE}, text context) counted with "
        "`torch.utils.flop_counter.FlopCounterMode` (multiply-add = 2 FLOPs; elementwise work not counted), "
        f"timed interleaved with fp32 matmuls; {args.warmup} warm-up rounds, median of {args.repeats}. "
        f"Peak = {peak_name} at {peak:.1f} GFLOP/s. Model: {source}.",
        "",
        T.meta_line(meta),
        "",
        f"**The step does {flops / 1e9:.2f} GFLOP in {T.fmt_ms(step['median_ms'])} ms: "
        f"{step['gflops_per_s']:.1f} GFLOP/s, {100 * step['fraction_of_peak']:.1f}% of the measured peak.**",
        "",
        table,
        "",
        "Counted FLOPs by operator:",
        "",
        ops,
        "",
    ])
    T.write_results(args.out, "roofline", {"meta": meta, "peak": {"name": peak_name, "gflops_per_s": peak},
                                          "step_flops": flops, "flops_by_op": by_op, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
