"""Make the app's example files with the shapes world's own renderer and synthesizer.

    python assets/make_assets.py        # writes assets/example_first_frame.png and assets/example_beats.wav

Deterministic: the same files come out every time (seeded), so they can be regenerated at will.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere without installing vidgen

from PIL import Image  # noqa: E402

from vidgen.video_io import video_to_uint8, write_wav  # noqa: E402
from vidgen.world import first_frame, render, synthesize_audio  # noqa: E402

IMAGE_CAPTION = "a green triangle moving right"  # the image -> video example's prompt
IMAGE_NAME = "example_first_frame.png"
AUDIO_NAME = "example_beats.wav"
SIZE, FRAMES, FPS, SAMPLE_RATE = 64, 16, 8, 16000


def make_image(out: Path = HERE / IMAGE_NAME, *, upscale: int = 4) -> Path:
    """Frame 0 of a rendered clip, nearest-upscaled so it is visible on the page (the pipeline resizes it back)."""
    frame = video_to_uint8(first_frame(render(IMAGE_CAPTION, seed=3, num_frames=FRAMES, height=SIZE, width=SIZE))[:, None])[0]
    Image.fromarray(frame.repeat(upscale, 0).repeat(upscale, 1)).save(out, optimize=True)
    return out


def make_audio(out: Path = HERE / AUDIO_NAME) -> Path:
    """A clip with a few loudness beats, as long as a default video (16 frames at 8 fps = 2 s)."""
    return write_wav(out, synthesize_audio(7, num_frames=FRAMES, fps=FPS, sample_rate=SAMPLE_RATE), SAMPLE_RATE)


if __name__ == "__main__":
    for path in (make_image(), make_audio()):
        print(f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size} bytes)")
