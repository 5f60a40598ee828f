"""Command line: `python -m vidgen <command> [options]`.

    python -m vidgen generate "a red circle moving left" --frames 16 --steps 25 --out video.mp4
    python -m vidgen generate "a red circle moving left" --overlay red.mp4 --overlay-word red
    python -m vidgen world --n 16 --out world.png
    python -m vidgen evaluate --checkpoint checkpoints/vidgen-shapes --n 40 --out report.md
    python -m vidgen train ...        (vidgen.train)
    python -m vidgen distill ...      (vidgen.distill)

Every command lives in its own module and is imported only when it runs, so a slow or missing
module never breaks the others. Bad input (a missing file, an unreadable image or audio clip, a knob
out of range, a missing checkpoint) exits with code 2 and one `error: ...` line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

EXIT_USAGE = 2  # bad input, as argparse uses it

# command -> (module, one-line help); each module provides cli(argv) -> int
COMMANDS: dict[str, tuple[str | None, str]] = {
    "generate": (None, "generate a video from a prompt (+ image, + audio)"),
    "world": ("vidgen.world", "sample videos from the shapes world (PNG grid, MP4 or GIF)"),
    "evaluate": ("vidgen.evaluate", "judge a checkpoint on the fixed evaluation prompts"),
    "train": ("vidgen.train", "train a model on the shapes world"),
    "distill": ("vidgen.distill", "distill a model into a few-step student"),
}


class InputError(Exception):
    """Bad user input found by the CLI itself (reported like the pipeline's ValueErrors)."""


def _usage() -> str:
    lines = ["usage: python -m vidgen <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "`python -m vidgen <command> --help` lists a command's options."]
    return "\n".join(lines)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if isinstance(e, FileNotFoundError):
        name = e.filename if e.filename is not None else (e.args[0] if e.args else "")
        return f"file not found: {name}"
    return text or type(e).__name__


def error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        return EXIT_USAGE
    if argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(_usage(), file=sys.stderr)
        return error(f"unknown command {command!r}; choose from {', '.join(COMMANDS)}")
    if command == "generate":
        return generate_cli(rest)
    module_name = COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:  # a dependency of the module is missing: that is a real error
            raise
        return error(f"`python -m vidgen {command}` is not available: {module_name} is not part of this installation")
    if not hasattr(module, "cli"):
        return error(f"{module_name} has no cli(argv) entry point")
    return int(module.cli(rest) or 0)


# ---------------------------------------------------------------------------------------- generate

def generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vidgen generate", description="Generate a video from a prompt.")
    p.add_argument("prompt", help='e.g. "a red circle moving left"')
    p.add_argument("--image", help="first frame (any image file)")
    p.add_argument("--audio", help="audio clip (any file ffmpeg reads); the object pulses with its loudness")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint folder or Hub id (default: $VIDGEN_CHECKPOINT or the shipped checkpoint)")
    p.add_argument("--frames", type=int, default=None, help="number of frames (default: the model's)")
    p.add_argument("--height", type=int, default=None, help="height in pixels (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="width in pixels (default: the model's)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the pipeline's, 25)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the pipeline's, 3.0)")
    p.add_argument("--sampler", default=None,
                   help="ddim, ddpm or dpmpp, or fast for a distilled checkpoint (its own steps, unguided) (default: ddim)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a random one, printed)")
    p.add_argument("--negative-prompt", default=None, help="what to steer away from")
    p.add_argument("--out", default="video.mp4", help="MP4 output (default: video.mp4)")
    p.add_argument("--gif", default=None, help="also write a GIF here")
    p.add_argument("--save-frames", default=None, metavar="NPZ",
                   help="also write the raw frames, uint8 (F, H, W, 3) at the model's resolution, as .npz")
    p.add_argument("--maps", default=None, metavar="NPZ",
                   help="record attention and write per-word heat maps and the temporal matrix as .npz")
    p.add_argument("--overlay", default=None, metavar="MP4",
                   help="record attention and write the video with one word's heat map blended on top")
    p.add_argument("--overlay-word", default=None, metavar="WORD",
                   help="the prompt word --overlay shows (default: its colour or shape word, else its first content word)")
    p.add_argument("--no-temporal", action="store_true", help="ablation: switch temporal attention off")
    p.add_argument("--gamma", type=float, default=None, help="override the temporal attention gate gamma")
    p.add_argument("--device", default=None, help="cpu, cuda, mps ... (default: the best available)")
    return p


def _check_input_file(path: str | None, what: str) -> None:
    if path is not None and not Path(path).is_file():
        raise InputError(f"{what} file not found: {path}")


def generate_cli(argv: list[str]) -> int:
    args = generate_parser().parse_args(argv)
    try:
        # Cheap checks first, so a typo does not wait for torch and the model to load.
        _check_input_file(args.image, "image")
        _check_input_file(args.audio, "audio")
        if args.overlay_word is not None and not args.overlay:
            raise InputError("--overlay-word needs --overlay (the MP4 to write)")
        return _generate(args)
    except (InputError, ValueError, FileNotFoundError) as e:
        return error(_one_line(e))
    except KeyboardInterrupt:
        return error("interrupted", 130)


def _generate(args: argparse.Namespace) -> int:
    from .hub import default_checkpoint, resolve_checkpoint

    checkpoint = args.checkpoint or default_checkpoint()
    t0 = time.perf_counter()
    folder = resolve_checkpoint(checkpoint)  # a missing folder / unknown Hub id fails before torch loads

    import torch
    from tqdm import tqdm

    from . import video_io
    from .pipeline import VideoPipeline, clean_prompt

    if args.device is not None:
        try:
            torch.device(args.device)
        except RuntimeError as e:
            raise InputError(f"invalid --device {args.device!r}: {_one_line(e)}") from None
    pipe = VideoPipeline.from_pretrained(folder, device=args.device)
    load_seconds = time.perf_counter() - t0

    knobs = dict(negative_prompt=args.negative_prompt, image=args.image, audio=args.audio, num_frames=args.frames,
                 height=args.height, width=args.width, num_inference_steps=args.steps, guidance_scale=args.guidance,
                 sampler=args.sampler, seed=args.seed, temporal_gate=args.gamma)
    knobs = {k: v for k, v in knobs.items() if v is not None}  # unset: the pipeline's defaults
    # --maps needs every kind; an overlay only the cross-attention its word heat map comes from
    record = True if args.maps else (["cross"] if args.overlay else False)
    events = pipe.stream(args.prompt, record_attention=record, temporal_attention=not args.no_temporal,
                         **knobs)  # validates every knob before the first step
    if args.overlay:  # a wrong word is found before the denoising, not after it
        word = overlay_word([w for w, _ in pipe.prompt_words(clean_prompt(args.prompt))], args.overlay_word)
    result = None
    with tqdm(desc="denoising", unit="step", file=sys.stderr, leave=False,
              disable=None) as bar:  # disable=None: no bar when stderr is not a terminal
        for event in events:
            bar.total = event.num_steps
            bar.update(1)
            result = event.result or result
    assert result is not None

    written = []
    try:
        written.append(("video", video_io.write_mp4(result.frames, args.out, fps=result.fps, audio=result.audio,
                                                    sample_rate=result.sample_rate)))
        if args.gif:
            written.append(("gif", video_io.write_gif(result.frames, args.gif, fps=result.fps)))
        meta = _meta(result, checkpoint)
        if args.save_frames:
            written.append(("frames", video_io.write_npz(args.save_frames, frames=result.frames, meta=meta)))
        maps = None
        if args.maps:
            maps, extra = attention_products(result)
            written.append(("maps", video_io.write_npz(args.maps, frames=result.frames, maps=maps, meta={**meta, **extra})))
        if args.overlay:
            from .maps import word_heatmaps

            # the first occurrence of a repeated word is keyed by the word itself ("a", then "a (2)")
            heat = maps[f"word/{word}"] if maps else word_heatmaps(result.maps, result.map_context)[word]
            written.append((f"overlay of {word!r}", video_io.write_overlay_mp4(
                result.frames, heat, args.overlay, fps=result.fps, audio=result.audio, sample_rate=result.sample_rate)))
    except (OSError, RuntimeError) as e:  # unwritable path, ffmpeg failure: not the user's input
        return error(f"could not write the output: {_one_line(e)}", 1)

    s = result.settings
    print(f"prompt: {s.prompt!r}")
    print(f"seed: {result.seed}")
    print(f"settings: {s.num_frames} frames {s.height}x{s.width}, {s.num_inference_steps} {s.sampler} steps, "
          f"guidance {s.guidance_scale:g}, on {pipe.device}")
    timings = {"load": load_seconds, **result.timings}
    print("timings: " + ", ".join(f"{k} {v:.3f}s" for k, v in timings.items()))
    for what, path in written:
        print(f"wrote {what}: {path}")
    for w in result.warnings:
        print(f"warning: {w}")
    return 0


def _meta(result, checkpoint: str) -> dict:
    s = result.settings
    return {"prompt": s.prompt, "negative_prompt": s.negative_prompt, "seed": result.seed, "fps": result.fps,
            "num_frames": s.num_frames, "height": s.height, "width": s.width, "steps": s.num_inference_steps,
            "guidance_scale": s.guidance_scale, "sampler": s.sampler, "temporal_attention": s.temporal_attention,
            "temporal_gate": s.temporal_gate, "checkpoint": str(checkpoint), "warnings": list(result.warnings)}


FUNCTION_WORDS = frozenset({"a", "an", "the", "and", "or", "of", "with", "in", "on", "to", "is", "moving"})


def overlay_word(words: list[str], wanted: str | None) -> str:
    """The word an overlay shows: ``wanted`` (case-insensitive) if the prompt has it, else InputError.
    By default the first colour or shape of the shapes world (what the heat map is for: where is the
    object), else the first word that is not a function word, else the first word."""
    from .world import COLORS, SHAPES

    if not words:
        raise InputError("the prompt has no words to show attention for")
    if wanted is not None:
        w = wanted.strip().lower()  # the tokenizer lower-cases the prompt
        if w not in words:
            shown = ", ".join(dict.fromkeys(words[:30])) + (", ..." if len(words) > 30 else "")
            raise InputError(f"--overlay-word {wanted!r} is not a word of the prompt; choose from: {shown}")
        return w
    objects = [w for w in words if w in COLORS or w in SHAPES]
    content = [w for w in words if w not in FUNCTION_WORDS]
    return (objects or content or words)[0]


def attention_products(result) -> tuple[dict, dict]:
    """The maps of a result recorded with attention, averaged over steps and layers:
    {"word/<word>": (F, h, w) in [0, 1], "temporal": (F, F) rows summing to 1, "audio": (F, h, w)}
    and meta {"words", "grid"}. Products the model cannot give (e.g. temporal attention switched
    off) are left out."""
    from . import maps as M

    ctx, store = result.map_context, result.maps or {}
    out = {f"word/{w}": heat for w, heat in M.word_heatmaps(store, ctx).items()}
    kinds = {k[2] for k in store}
    if "temporal" in kinds:
        out["temporal"] = M.temporal_matrix(store, ctx)
    elif "joint" in kinds:
        out["temporal"] = M.joint_to_temporal(store, ctx)
    if ctx.audio_tokens is not None:
        out["audio"] = M.audio_heatmap(store, ctx)
    words = [k[len("word/"):] for k in out if k.startswith("word/")]
    return out, {"words": words, "grid": list(ctx.grid)}


if __name__ == "__main__":
    raise SystemExit(main())
