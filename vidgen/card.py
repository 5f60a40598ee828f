"""The model card (card.md) of an exported checkpoint, written from the run folder's own records.

Everything in it is read from the run (config, train_config.json, train_state.json, metrics.jsonl)
or passed in (the evaluation report), so the card cannot drift from what was actually trained.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_curve(run: str | Path) -> list[tuple[int, float | None, float | None]]:
    """(step, all-correct rate, color accuracy) of every periodic judged evaluation in the run."""
    return [
        (r["step"], r["eval"].get("all_correct_rate"), r["eval"].get("color_accuracy"))
        for r in _metrics(Path(run))
        if "eval" in r
    ]


def model_card(run: str | Path, *, name: str, evaluation_md: str | None = None, hardware: str | None = None) -> str:
    """Markdown describing the architecture, data, training run and (optionally) its evaluation."""
    from .checkpoint import VideoModel
    from .config import ModelConfig, from_dict

    run = Path(run)
    cfg = from_dict(ModelConfig, json.loads((run / "config.json").read_text()))
    train_cfg = json.loads((run / "train_config.json").read_text())
    state = json.loads((run / "train_state.json").read_text())
    metrics = _metrics(run)
    params = VideoModel(cfg).num_parameters()
    wall = (metrics[-1]["time"] - metrics[0]["time"]) / 3600 if len(metrics) > 1 else 0.0
    hardware = hardware or f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"
    curve = training_curve(run)
    lines = [
        f"# {name}",
        "",
        "A small text + image + audio → video diffusion model trained on vidgen's synthetic shapes world.",
        "It knows only that world's vocabulary: " + ", ".join(cfg.vocabulary) + ".",
        "",
        "## Architecture",
        f"- VideoDenoiser, `{cfg.variant}` attention, {cfg.depth} spatio-temporal blocks of width {cfg.width} "
        f"({cfg.heads} heads) on a {cfg.sample_size // cfg.downsample}×{cfg.sample_size // cfg.downsample} grid per frame; "
        f"conv stem with {cfg.conv_channels} channels after {cfg.patch_size}× space-to-depth.",
        f"- Text: open_clip tokenizer + a {cfg.text_layers}-layer open_clip text transformer (width {cfg.text_width}), "
        f"embedding table trimmed to the vocabulary. Audio: {cfg.n_mels}-band log-mel, one token per frame.",
        f"- {params:,} parameters. Predicts {cfg.prediction_type} with a {cfg.schedule} schedule "
        f"({cfg.num_train_timesteps} steps). Default video: {cfg.num_frames} frames at {cfg.sample_size}×{cfg.sample_size}, {cfg.fps} fps.",
        "",
        "## Training",
        f"- Data: {train_cfg['data']} (task mix: p_two={train_cfg['p_two']}, p_image={train_cfg['p_image']}, "
        f"p_audio={train_cfg['p_audio']}; conditioning dropout text/image/audio "
        f"{train_cfg['p_drop_text']}/{train_cfg['p_drop_image']}/{train_cfg['p_drop_audio']}).",
        f"- Steps: {state['step']:,} of a {train_cfg['total_steps']:,}-step schedule, batch {train_cfg['batch_size']}, "
        f"lr {train_cfg['lr']} (warm-up {train_cfg['warmup_steps']}, cosine), EMA {train_cfg['ema_decay']}, "
        f"loss weighting {train_cfg['loss_weighting']}, frames schedule {train_cfg['frames_schedule'] or 'none'}.",
        f"- Wall-clock: {wall:.2f} h logged on {hardware}.",
        "- Reproduce: `python -m vidgen train --preset presets/shapes.json` "
        f"(then `--resume` until step {state['step']}), and export with `--export`.",
        "",
    ]
    if curve:
        lines += ["### Judged accuracy during training (12 prompts, 20 DDIM steps)", "", "| step | all correct | color |", "|---:|---:|---:|"]
        lines += [f"| {s} | {a if a is None else f'{a:.2f}'} | {c if c is None else f'{c:.2f}'} |" for s, a, c in curve]
        lines.append("")
    lines += ["## Evaluation", "", evaluation_md.strip() if evaluation_md else "Not evaluated yet.", ""]
    return "\n".join(lines)
