"""Latency of the app: from pressing Generate to the first preview, and to the final video.

Launches app.py's demo on a free localhost port (the app's own queue and launch options) and
drives it with gradio_client, as a browser would, with the app's default settings. Two clocks:
- server: inside the generate function (Engine.last_timings), from the moment the queue starts
  the job to the first preview yielded / the MP4 written / the end;
- client: from submit() to the first streamed update / the update carrying the video (loopback).

    python benchmarks/app_latency.py                          # the shipped checkpoint ($VIDGEN_CHECKPOINT)
    python benchmarks/app_latency.py --random                 # a random model of the default size
    python benchmarks/app_latency.py --checkpoint DIR --runs 5 --steps 25

Writes benchmarks/results/app_latency.json and .md. Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
RESULTS = ROOT / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_checkpoint(folder: Path) -> Path:
    import torch

    from vidgen.checkpoint import VideoModel
    from vidgen.config import ModelConfig
    from vidgen.world import VOCABULARY

    torch.manual_seed(0)
    return VideoModel(ModelConfig(vocabulary=VOCABULARY)).save_pretrained(folder)


def has_video(value) -> bool:
    """A streamed Video output that carries a file (not a skipped update or a cleared value)."""
    if isinstance(value, dict):
        value = value.get("video", value)
    return isinstance(value, str) or isinstance(value, dict) and bool(value.get("path") or value.get("url"))


def measure(url: str, engine, prompt: str, runs: int, steps: int | None) -> list[dict]:
    from gradio_client import Client

    client = Client(url, download_files=False, verbose=False)
    kwargs = {} if steps is None else {"steps": steps}
    client.predict(prompt, api_name="/generate", **kwargs)  # warm-up: first-call costs (threads, caches)
    rows = []
    for i in range(runs):
        t0 = time.perf_counter()
        job = client.submit(prompt, seed=i, random_seed=False, api_name="/generate", **kwargs)
        first = video = None
        while not job.done():
            outs = job.outputs()
            now = time.perf_counter() - t0
            if outs and first is None:
                first = now
            if video is None and any(has_video(o[3]) for o in outs):
                video = now
            time.sleep(0.005)
        job.result()
        total = time.perf_counter() - t0
        server = dict(engine.last_timings)
        rows.append({"client_first_preview": first, "client_video": video or total, "client_total": total,
                     **{f"server_{k}": v for k, v in server.items()}})
        print(f"run {i}: " + ", ".join(f"{k} {v:.3f}s" for k, v in rows[-1].items() if v is not None))
    client.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint folder or Hub id (default: the shipped one)")
    p.add_argument("--random", action="store_true", help="use a random model of the default size instead")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the app's default)")
    p.add_argument("--prompt", default="a red circle moving left")
    p.add_argument("--out", default=str(RESULTS / "app_latency"), help="output path without extension")
    args = p.parse_args(argv)

    import torch

    import app
    from vidgen.hub import default_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="vidgen-latency-"))
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "gradio")
    checkpoint = str(random_checkpoint(tmp / "ckpt")) if args.random else (args.checkpoint or default_checkpoint())
    demo = app.build_demo(checkpoint)
    demo.engine.pipeline()  # loaded at start-up, as `python app.py` does
    demo.queue(**app.QUEUE)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                            **app.launch_options())
    try:
        rows = measure(url, demo.engine, args.prompt, args.runs, args.steps)
    finally:
        demo.close(verbose=False)
    cfg = demo.engine.pipeline().cfg
    d = demo.engine.defaults
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0] if all(r[k] is not None for r in rows)}
    report = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.2f}",
        "checkpoint": "random default-size model" if args.random else checkpoint,
        "settings": {"frames": cfg.num_frames, "size": cfg.sample_size, "steps": args.steps or d.steps,
                     "guidance": d.guidance, "sampler": d.sampler, "record_attention": True},
        "runs": rows, "median": summary,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# App latency", "",
        f"Measured {report['when']} on {report['machine']}; {report['checkpoint']}; settings {report['settings']}.",
        "Medians of the runs below (seconds). Server = inside the generate function; client = gradio_client on loopback.",
        "", "| measure | median (s) |", "|---|---:|",
        *[f"| {k} | {v:.3f} |" for k, v in summary.items()], "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
