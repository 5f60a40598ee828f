"""GPU numbers for issue 8, part 6: fp32 against bf16 in one process, interleaved.

1. One denoising step of the CFG pair (batch 2, 16x64x64): fp32, and under bf16 autocast.
2. Default generation (`pipe(prompt)`: 25 DDIM steps, guidance 3, no maps): the pipeline in fp32 and
   with bf16 weights (`VideoPipeline(..., dtype=torch.bfloat16)`).
3. One training update (`train.optimizer_step`: forward, loss, backward, clipping, AdamW, EMA) under
   bf16 autocast at batch --train-batch, on one pre-made batch already on the GPU. That is the
   compute-bound training rate with no data loading, to compare with what the DataLoader fed in the
   real run. Its FLOPs (forward and backward) are counted with torch.utils.flop_counter, so
   MFU = counted FLOPs / time / --peak-tflops.

    python benchmarks/bench_gpu.py --device cuda [--checkpoint DIR] [--train-batch 128] [--peak-tflops 788]

Writes gpu_bench.json and gpu_bench.md to --out. CPU works too (slowly), for a smoke test.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import numpy as np
import torch

import _timing as T
from bench_roofline import count_flops

PROMPT = "a big red circle moving left quickly"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    T.add_common_args(p, repeats=10, warmup=3)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--train-batch", type=int, default=128)
    p.add_argument("--peak-tflops", type=float, default=788.0,
                   help="the dense bf16 matmul rate MFU is taken against (H200: 788, the rate recorded for it)")
    args = p.parse_args(argv)
    T.apply_common_args(p, args)
    device = args.device
    on_gpu = torch.device(device).type == "cuda"

    from vidgen.pipeline import VideoPipeline
    from vidgen.train import DiffusionLoss, TrainConfig, make_optimizer, optimizer_step, prepare_batch
    from vidgen.world import ShapesWorld

    model, source = T.load_model(args.checkpoint, device=device)
    cfg = model.cfg
    bf16 = torch.autocast(torch.device(device).type, dtype=torch.bfloat16)

    # 1. the denoising step
    ids, _ = model.text.tokenize(["", PROMPT])
    x_t = torch.randn(2, cfg.in_channels, cfg.num_frames, cfg.sample_size, cfg.sample_size, device=device)
    t = torch.full((2,), 500, device=device)
    with torch.inference_mode():
        cond = model.encode(ids.to(device), cfg.num_frames)

    def step(autocast: bool):
        def run():
            with torch.inference_mode(), (bf16 if autocast else torch.autocast(device, enabled=False)):
                model(x_t, t, cond)
        return run

    # 2. default generation
    pipe32 = VideoPipeline(model, device=device)
    pipe16 = VideoPipeline(copy.deepcopy(model), device=device, dtype=torch.bfloat16)
    settings = dict(seed=0, num_inference_steps=args.steps, guidance_scale=3.0)
    v32, v16 = pipe32(PROMPT, **settings).video, pipe16(PROMPT, **settings).video
    bf16_gap = (v32 - v16).abs().mean().item()  # mean abs pixel difference in [-1, 1] units

    # 3. the training update, on one pre-made batch
    tcfg = TrainConfig(model=cfg, batch_size=args.train_batch)
    trainee = copy.deepcopy(model).train()
    ema = copy.deepcopy(model).eval()
    loss_fn = DiffusionLoss(trainee, tcfg.loss_weighting)
    opt = make_optimizer(trainee, tcfg.lr, tcfg.weight_decay)
    world = ShapesWorld(num_frames=cfg.num_frames, height=cfg.sample_size, width=cfg.sample_size, seed=0)
    rng = np.random.default_rng(0)
    items = [world.sample(rng) for _ in range(args.train_batch)]
    batch = torch.utils.data.default_collate(items)
    batch = prepare_batch(batch, trainee, tcfg, rng, device)
    generator = torch.Generator(device=device).manual_seed(0)

    def update():
        optimizer_step(loss_fn, batch, generator, trainee, ema, opt, lr=1e-5, grad_clip=tcfg.grad_clip,
                       ema_decay=0.999, ema_step=1000, autocast=bf16)

    def fwd_bwd():
        with bf16:
            loss_fn(batch, generator).backward()
        trainee.zero_grad(set_to_none=True)

    train_flops, _ = count_flops(fwd_bwd)
    with torch.inference_mode():
        step_flops, _ = count_flops(lambda: model(x_t, t, cond))

    cases = {
        "step fp32": step(False), "step bf16 autocast": step(True),
        "generate fp32": lambda: pipe32(PROMPT, **settings), "generate bf16": lambda: pipe16(PROMPT, **settings),
        f"train update bf16, batch {args.train_batch}": update,
    }
    times = T.interleaved(cases, repeats=args.repeats, warmup=args.warmup, device=device)
    s = {name: T.summary(v) for name, v in times.items()}
    train_name = f"train update bf16, batch {args.train_batch}"
    train_s = statistics.median(times[train_name])
    videos_per_s = args.train_batch / train_s
    mfu = train_flops / train_s / (args.peak_tflops * 1e12)
    meta = T.metadata(device, source=source, steps=args.steps, train_batch=args.train_batch,
                      peak_tflops=args.peak_tflops)
    payload = {
        "meta": meta, "cases": s,
        "ratios": {"step bf16 / fp32": T.paired_ratio(times["step bf16 autocast"], times["step fp32"]),
                   "generate bf16 / fp32": T.paired_ratio(times["generate bf16"], times["generate fp32"])},
        "bf16_mean_abs_pixel_diff": bf16_gap,
        "step_flops": step_flops, "train_update_flops_fwd_bwd": train_flops,
        "train_videos_per_s": videos_per_s, "train_mfu": mfu,
        "step_tflops_fp32": step_flops / statistics.median(times["step fp32"]) / 1e12,
    }
    rows = [[name, T.fmt_ms(v["median_ms"]), f"{T.fmt_ms(v['min_ms'])}–{T.fmt_ms(v['max_ms'])}"] for name, v in s.items()]
    md = "\n".join([
        "# GPU: fp32 and bf16 (issue 8, part 6)", "", T.meta_line(meta) + f" {meta.get('gpu', '')}", "",
        f"Model: {source}. All cases interleaved in one process, {args.warmup} warm-up rounds, median of {args.repeats}.", "",
        T.md_table(["case", "median (ms)", "range (ms)"], rows, "|---|---:|---:|"), "",
        f"- bf16 / fp32, paired: step {payload['ratios']['step bf16 / fp32']:.2f}x, "
        f"generation {payload['ratios']['generate bf16 / fp32']:.2f}x; the bf16 video differs from the fp32 one "
        f"by {bf16_gap:.4f} mean absolute pixel value (range [-1, 1]).",
        f"- One step of the CFG pair is {step_flops / 1e9:.2f} GFLOP (counted): {payload['step_tflops_fp32']:.2f} TFLOP/s in fp32.",
        f"- Training on a pre-made batch (no data loading): {videos_per_s:,.0f} videos/s; "
        f"{train_flops / 1e9:,.0f} GFLOP per update counted (forward + backward) -> "
        f"{train_flops / train_s / 1e12:.1f} TFLOP/s, MFU {100 * mfu:.1f}% of {args.peak_tflops:g} TFLOP/s.",
    ])
    T.write_results(args.out, "gpu_bench", payload, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
