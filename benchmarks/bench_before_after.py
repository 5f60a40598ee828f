"""Before / after: the working tree's vidgen against a git revision of it, interleaved, same weights.

The baseline revision's `vidgen/` is extracted (git archive) into a temporary folder as the
package `vidgen_baseline`, both models get the same weights (state-dict keys are identical across
the speed-ups), and these run interleaved in one process:
- one denoising step (batch 2, 16x64x64, text context);
- one denoising step with every attention map recorded (AttentionRecorder, all kinds, the
  conditional row kept, as the pipeline records);
- a whole default generation through each revision's VideoPipeline (25 steps unless --steps);
- the step again, with x_t and t passed once (batch 1) for the CFG pair, which the new denoiser
  accepts ("shared rows"; the before side gets them expanded, as its pipeline passes them).
It also checks that both revisions produce the same outputs (max abs difference is reported).

    python benchmarks/bench_before_after.py --baseline 96b5569 [--repeats 10] [--steps 25] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

import _timing as T

BATCH, FRAMES, SIZE = 2, 16, 64
PROMPT = "a big red circle moving left quickly"


def import_baseline(ref: str, folder: Path):
    data = subprocess.run(["git", "-C", str(T.ROOT), "archive", ref, "vidgen"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "vidgen").rename(folder / "vidgen_baseline")
    sys.path.insert(0, str(folder))
    commit = subprocess.run(["git", "-C", str(T.ROOT), "rev-parse", "--short", ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    return importlib.import_module("vidgen_baseline"), commit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=2)
    p.add_argument("--baseline", default="HEAD", help="git revision to compare the working tree against")
    p.add_argument("--steps", type=int, default=25, help="steps of the whole generation (0 skips it)")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)

    tmp = tempfile.TemporaryDirectory()
    _, commit = import_baseline(args.baseline, Path(tmp.name))
    dirty = subprocess.run(["git", "-C", str(T.ROOT), "status", "--porcelain", "vidgen"], capture_output=True,
                           text=True).stdout.strip()
    from vidgen_baseline.checkpoint import VideoModel as BaseModel
    from vidgen_baseline.pipeline import VideoPipeline as BasePipeline
    from vidgen_baseline.recording import AttentionRecorder as BaseRecorder

    from vidgen.pipeline import VideoPipeline
    from vidgen.recording import AttentionRecorder

    model, source = T.load_model(args.checkpoint, device=args.device)
    base = BaseModel(model.cfg).to(args.device).eval()
    base.load_state_dict(model.state_dict())  # identical keys: a mismatch raises here

    ids, _ = model.text.tokenize(["", PROMPT])
    x = torch.randn(BATCH, model.cfg.in_channels, FRAMES, SIZE, SIZE, device=args.device)
    t = torch.full((BATCH,), 500, device=args.device)
    with torch.inference_mode():
        cond = model.encode(ids.to(args.device), FRAMES)
        diff_step = (model(x, t, cond) - base(x, t, cond)).abs().max().item()

    def recorded(m, recorder_cls):
        def run():
            with recorder_cls(m.denoiser, ("spatial", "temporal", "cross"), batch_index=1) as rec:
                m(x, t, cond)
            return rec.maps
        return run

    with torch.inference_mode():
        maps_new, maps_old = recorded(model, AttentionRecorder)(), recorded(base, BaseRecorder)()
    diff_maps = max((maps_new[k] - maps_old[k]).abs().max().item() for k in maps_old)
    assert set(maps_new) == set(maps_old)

    x1, t1 = x[:1], t[:1]  # the CFG pair shares x_t and t: the new denoiser can take them once
    with torch.inference_mode():
        diff_shared = (model(x1, t1, cond) - base(x1.expand_as(x), t1.expand_as(t), cond)).abs().max().item()
    cases = {
        "step: before": lambda: base(x, t, cond),
        "step: after": lambda: model(x, t, cond),
        "step, x_t and t passed once for the CFG pair (shared rows): before": lambda: base(x, t, cond),
        "step, x_t and t passed once for the CFG pair (shared rows): after": lambda: model(x1, t1, cond),
        "step + all maps: before": recorded(base, BaseRecorder),
        "step + all maps: after": recorded(model, AttentionRecorder),
    }
    diff_video = None
    if args.steps:
        pipe_new, pipe_old = VideoPipeline(model, device=args.device), BasePipeline(base, device=args.device)
        gen = dict(seed=0, num_inference_steps=args.steps, guidance_scale=3.0)
        diff_video = (pipe_new(PROMPT, **gen).video - pipe_old(PROMPT, **gen).video).abs().max().item()
        cases["generate: before"] = lambda: pipe_old(PROMPT, **gen)
        cases["generate: after"] = lambda: pipe_new(PROMPT, **gen)
    meta = T.metadata(args.device, model=source, baseline=f"{args.baseline} ({commit})",
                      after="working tree" + (" (uncommitted changes in vidgen/)" if dirty else f" = {commit}"),
                      steps=args.steps, repeats=args.repeats, warmup=args.warmup)
    with torch.inference_mode():
        times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=args.device)

    rows, md_rows = [], []
    for what in dict.fromkeys(n.split(": ")[0] for n in cases):
        b, a = times[f"{what}: before"], times[f"{what}: after"]
        sb, sa = T.summary(b), T.summary(a)
        r = {"what": what, "before": sb, "after": sa, "after_over_before_paired": T.paired_ratio(a, b),
             "after_over_before_medians": T.ratio_of_medians(a, b)}
        rows.append(r)
        md_rows.append([what, T.fmt_ms(sb["median_ms"]), T.fmt_ms(sa["median_ms"]),
                        f"{r['after_over_before_paired']:.3f}x", f"{1 / r['after_over_before_paired']:.2f}x"])
    table = T.md_table(["what", "before median (ms)", "after median (ms)", "after / before (paired)", "speed-up"], md_rows)
    print(table)
    equal = (f"max |after - before|: step output {diff_step:.2e}, shared rows {diff_shared:.2e}, "
             f"recorded maps {diff_maps:.2e}"
             + (f", generated video {diff_video:.2e}" if diff_video is not None else "") + ".")
    print(equal)
    md = "\n".join([
        "# Before / after the speed-ups",
        "",
        f"Baseline: vidgen at `{args.baseline}` ({commit}); after: {meta['after']}. Same weights ({source}), "
        f"batch {BATCH}, {FRAMES}x{SIZE}x{SIZE}; the generation is the pipeline default ({args.steps} DDIM steps, "
        f"guidance 3.0). All cases interleaved in one process; {args.warmup} warm-up rounds, median of "
        f"{args.repeats}; ratio = median over rounds of after / before.",
        "",
        T.meta_line(meta),
        "",
        table,
        "",
        equal,
        "",
    ])
    T.write_results(args.out, "before_after", {"meta": meta, "results": rows, "max_abs_diff": {
        "step": diff_step, "step_shared_rows": diff_shared, "maps": diff_maps, "video": diff_video}}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
