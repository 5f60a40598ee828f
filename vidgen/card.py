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


def _preset_for(run: Path) -> str:
    """The command-line preset that reproduces `run`: presets/<run name>.json when the repository
    has one, else the run's own train_config.json (every TrainConfig field, a valid preset too)."""
    preset = Path(__file__).resolve().parents[1] / "presets" / f"{run.name}.json"
    return f"presets/{run.name}.json" if preset.is_file() else str(run / "train_config.json")


def _base_run(run: Path, train_cfg: dict) -> Path | None:
    """The run a warm-started run began from (TrainConfig.init_from), when it is a run folder."""
    init = train_cfg.get("init_from") or ""
    if not init:
        return None
    base = Path(init) if Path(init).is_absolute() else Path.cwd() / init
    return base if (base / "train_config.json").is_file() and (base / "train_state.json").is_file() else None


PAUSE_SECONDS = 1800  # a gap this long between two log records is a stop between resumes, not training


def logged_hours(metrics: list[dict]) -> float:
    """Hours of training in a run's metrics: the sum of the gaps between consecutive records, without
    the pauses between a stop and its --resume (which can last days)."""
    times = [m["time"] for m in metrics]
    return sum(b - a for a, b in zip(times, times[1:]) if 0 < b - a < PAUSE_SECONDS) / 3600


def _training_lines(run: Path, hardware: str) -> list[str]:
    """The Training section of one run: its own line items, then its judged training curve.
    `hardware` describes runs that did not record their own (train_state.json "hardware")."""
    train_cfg = json.loads((run / "train_config.json").read_text())
    state = json.loads((run / "train_state.json").read_text())
    metrics = _metrics(run)
    wall = logged_hours(metrics)
    model = train_cfg.get("model", {})
    lines = [
        f"- Data: {train_cfg['data']} (task mix: p_two={train_cfg['p_two']}, p_image={train_cfg['p_image']}, "
        f"p_audio={train_cfg['p_audio']}; conditioning dropout text/image/audio "
        f"{train_cfg['p_drop_text']}/{train_cfg['p_drop_image']}/{train_cfg['p_drop_audio']}).",
        f"- Steps: {state['step']:,} of a {train_cfg['total_steps']:,}-step schedule, batch {train_cfg['batch_size']}, "
        f"lr {train_cfg['lr']} (warm-up {train_cfg['warmup_steps']}, cosine), EMA {train_cfg['ema_decay']}, "
        f"loss weighting {train_cfg['loss_weighting']}, frames schedule {train_cfg['frames_schedule'] or 'none'}, "
        f"schedule SNR shift {model.get('snr_shift', 1.0):.4g}.",
        f"- Wall-clock: {wall:.2f} h logged on {' and '.join(state.get('hardware') or [hardware])}.",
        f"- Reproduce: `python -m vidgen train --preset {_preset_for(run)}` "
        f"(then `--resume` until step {state['step']}).",
        "",
    ]
    curve = training_curve(run)
    if curve:
        lines += [f"Judged accuracy during this run ({train_cfg.get('eval_prompts', 12)} prompts, "
                  f"{train_cfg.get('eval_steps', 20)} DDIM steps, {train_cfg.get('num_frames', 16)} frames):", "",
                  "| step | all correct | color |", "|---:|---:|---:|"]
        lines += [f"| {s} | {a if a is None else f'{a:.2f}'} | {c if c is None else f'{c:.2f}'} |" for s, a, c in curve]
        lines.append("")
    return lines


def model_card(run: str | Path, *, name: str, evaluation_md: str | None = None, hardware: str | None = None,
               notes: str | None = None) -> str:
    """Markdown describing the architecture, data, training run(s) and (optionally) the evaluation.
    A run warm-started from another run (TrainConfig.init_from) lists that base run first. `notes`
    (markdown) goes at the end of the Training section: what the records cannot say."""
    from .checkpoint import VideoModel
    from .config import ModelConfig, from_dict

    run = Path(run)
    cfg = from_dict(ModelConfig, json.loads((run / "config.json").read_text()))
    params = VideoModel(cfg).num_parameters()
    hardware = hardware or f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"
    stages = [run]
    while (base := _base_run(stages[0], json.loads((stages[0] / "train_config.json").read_text()))) is not None:
        if base.resolve() in {r.resolve() for r in stages}:
            break  # a cycle of warm starts: describe each run once
        stages.insert(0, base)
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
        f"({cfg.num_train_timesteps} steps, SNR shift {cfg.snr_shift:.4g}). "
        f"Default video: {cfg.num_frames} frames at {cfg.sample_size}×{cfg.sample_size}, {cfg.fps} fps.",
        "",
        "## Training",
    ]
    for i, stage in enumerate(stages):
        if len(stages) > 1:
            how = "from scratch" if i == 0 else f"warm-started from the EMA weights of `{stages[i - 1].name}`"
            lines += ["", f"### Stage {i + 1}: `{stage.name}`, {how}", ""]
        lines += _training_lines(stage, hardware)
    if notes:
        lines += [notes.strip(), ""]
    lines += ["## Evaluation", "", evaluation_md.strip() if evaluation_md else "Not evaluated yet.", ""]
    return "\n".join(lines)
