"""Make the README's media with the project's own code: a screenshot of the app and a GIF.

- assets/app-screenshot.png: the app launched on localhost, driven by Playwright in Debian's
  Chromium (never a downloaded browser; every non-loopback request is refused): a prompt,
  Generate, the live preview, the video and the Words -> pixels view of the run.
- assets/demo.gif: the pipeline's video for a prompt beside the cross-attention heat map of one of
  its words over every frame, written with vidgen.video_io.write_gif.

    python benchmarks/make_readme_media.py                       # the shipped checkpoint ($VIDGEN_CHECKPOINT)
    python benchmarks/make_readme_media.py --checkpoint DIR --prompt "a big blue square moving up" --seed 3
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_gif(checkpoint: str, prompt: str, seed: int, out: Path, word: str | None = None, steps: int = 25) -> Path:
    """The video beside the heat map of `word` (default: the first shape word) on every frame."""
    from vidgen import maps as M
    from vidgen.pipeline import VideoPipeline
    from vidgen.ui.explorer import ExplorerData
    from vidgen.video_io import write_gif

    pipe = VideoPipeline.from_pretrained(checkpoint)
    result = pipe(prompt, seed=seed, num_inference_steps=steps, record_attention=True)
    data = ExplorerData.from_result(result, pipe)
    word = word if word in data.words else data.default_word()
    heat = M.word_heatmaps(data.store, data.ctx)[word]
    overlay = M.overlay(result.frames, heat)
    gap = np.full((*result.frames.shape[:2], 2, 3), 255, np.uint8)
    tiled = np.concatenate([result.frames, gap, overlay], axis=2)  # (F, H, 2W + 2, 3)
    print(f"gif: {prompt!r}, seed {seed}, heat map of {word!r}")
    return write_gif(tiled, out, fps=result.fps, upscale_to=192)


def make_screenshot(checkpoint: str, prompt: str, seed: int, out: Path, width: int = 1280) -> Path:
    from playwright.sync_api import expect, sync_playwright

    import app

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="vidgen-media-")
    demo = app.build_demo(checkpoint)
    demo.engine.pipeline()
    demo.queue(**app.QUEUE)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                            **app.launch_options())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((url, "data:", "blob:")) else r.abort())
            page.set_default_timeout(600_000)
            page.goto(url)
            page.locator("#vg-prompt textarea").fill(prompt)
            page.locator("#vg-random input").uncheck()
            page.locator("#vg-seed input").fill(str(seed))
            page.click("#vg-generate")
            expect(page.locator("#vg-status")).to_contain_text("Done", timeout=600_000)
            page.locator("#vg-words-img img").wait_for()
            page.wait_for_timeout(1500)  # let the video's first frame paint
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        demo.close(verbose=False)
    print(f"screenshot: {prompt!r}, seed {seed}")
    return out


def main(argv: list[str] | None = None) -> int:
    from vidgen.hub import default_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint folder or Hub id (default: the shipped one)")
    p.add_argument("--prompt", default="a big blue square moving up and a yellow circle moving right")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--word", default=None, help="the word whose heat map the GIF shows (default: the first shape)")
    p.add_argument("--out-dir", default=str(ROOT / "assets"))
    p.add_argument("--skip-screenshot", action="store_true")
    p.add_argument("--skip-gif", action="store_true")
    args = p.parse_args(argv)
    checkpoint = args.checkpoint or default_checkpoint()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not args.skip_gif:
        print("wrote", make_gif(checkpoint, args.prompt, args.seed, out / "demo.gif", args.word))
    if not args.skip_screenshot:
        print("wrote", make_screenshot(checkpoint, args.prompt, args.seed, out / "app-screenshot.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
