"""Thread settings: torch thread count x OpenMP wait policy, for one step and a whole generation.

OMP_WAIT_POLICY is read once, when the OpenMP runtime loads (at `import torch`), so it cannot
be switched inside one process. Each setting therefore gets its own long-lived worker process
(same model, same weights, same inputs), and the driver interleaves them: every round asks each
worker in turn (order reversed every other round) to time one call, pausing between workers so
that one worker's spinning threads do not steal the next one's cores. The paired ratio is
against the first setting.

Why it matters: with the default (ACTIVE) policy, OpenMP threads spin at every barrier; when
other processes hold the cores (a shared Space, or this machine's background jobs), a
descheduled thread stalls the others, and 2 threads can be several times slower than 1.

    python benchmarks/bench_threads.py [--settings 1:default 2:default 2:PASSIVE] [--steps 25]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import _timing as T

PROMPT = "a big red circle moving left quickly"


def worker(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.worker_threads)
    from vidgen.pipeline import VideoPipeline

    model, source = T.load_model(args.checkpoint)
    pipe = VideoPipeline(model, device="cpu")
    ids, _ = model.text.tokenize(["", PROMPT])
    x = torch.randn(2, model.cfg.in_channels, model.cfg.num_frames, 64, 64, generator=torch.Generator().manual_seed(0))
    t = torch.full((2,), 500)
    with torch.inference_mode():
        cond = model.encode(ids, model.cfg.num_frames)
    calls = {
        "step": lambda: model(x, t, cond),
        "generate": lambda: pipe(PROMPT, seed=0, num_inference_steps=args.steps, guidance_scale=3.0),
    }
    print(json.dumps({"ready": True, "source": source, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        what = line.strip()
        if not what:
            continue
        with torch.inference_mode():
            start = time.perf_counter()
            calls[what]()
            elapsed = time.perf_counter() - start
        print(json.dumps({"seconds": elapsed}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=1)
    p.add_argument("--settings", nargs="+", default=["1:default", "2:default", "2:PASSIVE"],
                   help="THREADS:POLICY, POLICY one of default, ACTIVE, PASSIVE")
    p.add_argument("--steps", type=int, default=25, help="steps of the timed generation (0: step only)")
    p.add_argument("--pause", type=float, default=0.3, help="seconds between two workers' calls")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    T.apply_common_args(p, args)

    workers = {}
    for setting in args.settings:
        threads, policy = setting.split(":")
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if policy.lower() != "default":
            env["OMP_WAIT_POLICY"] = policy.upper()
        cmd = [sys.executable, __file__, "--worker", "--worker-threads", threads, "--steps", str(args.steps)]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        hello = json.loads(proc.stdout.readline())
        workers[f"{threads} thread(s), OMP_WAIT_POLICY={policy}"] = proc
        source = hello["source"]

    def ask(proc, what) -> float:
        time.sleep(args.pause)
        proc.stdin.write(what + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())["seconds"]

    kinds = ["step"] + (["generate"] if args.steps else [])
    meta = T.metadata("cpu", model=source, settings=args.settings, steps=args.steps, repeats=args.repeats,
                      warmup=args.warmup, note="threads: per worker, see settings")
    times = {(k, n): [] for k in kinds for n in workers}
    names = list(workers)
    for r in range(args.warmup + args.repeats):
        for kind in kinds:
            for name in (names if r % 2 == 0 else names[::-1]):
                s = ask(workers[name], kind)
                if r >= args.warmup:
                    times[(kind, name)].append(s)
        print(f"  round {r + 1}/{args.warmup + args.repeats}", file=sys.stderr, flush=True)
    for proc in workers.values():
        proc.stdin.close()
        proc.wait(timeout=60)

    rows, md_rows = [], []
    for kind in kinds:
        base = times[(kind, names[0])]
        for name in names:
            s = T.summary(times[(kind, name)])
            ratio = T.paired_ratio(times[(kind, name)], base)
            rows.append({"what": kind, "setting": name, **s, "vs_first_paired": ratio,
                         "times_ms": [1000 * v for v in times[(kind, name)]]})
            md_rows.append([kind if kind == "step" else f"generate ({args.steps} steps)", name,
                            T.fmt_ms(s["median_ms"]), f"{T.fmt_ms(s['min_ms'])}-{T.fmt_ms(s['max_ms'])}", f"{ratio:.2f}x"])
    table = T.md_table(["what", "setting", "median (ms)", "min-max (ms)", f"vs {names[0]} (paired)"], md_rows)
    print(table)
    md = "\n".join([
        "# Thread settings",
        "",
        "One denoising step (batch 2, 16x64x64) and a default generation, per setting of torch threads and "
        "`OMP_WAIT_POLICY`; one warm worker process per setting (the policy is fixed when OpenMP loads), "
        f"driven round-robin; {args.warmup} warm-up round(s), median of {args.repeats}. Model: {source}.",
        "",
        T.meta_line(meta).replace(f"{meta['threads']} torch threads", "threads per setting"),
        "",
        table,
        "",
    ])
    T.write_results(args.out, "threads", {"meta": meta, "results": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
