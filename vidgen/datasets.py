"""Training data from a folder of MP4 clips with sidecar captions (clip.mp4 + clip.txt).

Items have the same layout as the shapes world's (`vidgen.world.ShapesWorld`), so the trainer
does not care where videos come from (the motion keys are zeros with has_motion False: real clips
have no known motion, so the temporal-consistency loss skips them): each clip is read with
moviepy, resampled in time to the model's fps, cut to `num_frames`, center-cropped and resized to
the model size; its audio track, when present, becomes the audio condition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from .encoders import prepare_audio
from .video_io import load_audio


def _load_clip(path: Path, num_frames: int, height: int, width: int, fps: float, rng: np.random.Generator):
    """(3, F, H, W) in [-1, 1], frames sampled at `fps` from a random start; shorter clips repeat
    their last frame. Also returns the start time in seconds."""
    from moviepy import VideoFileClip

    clip = VideoFileClip(str(path), audio=False)
    try:
        span = num_frames / fps
        start = float(rng.uniform(0, max(0.0, clip.duration - span)))
        times = [min(start + i / fps, max(0.0, clip.duration - 1e-3)) for i in range(num_frames)]
        frames = np.stack([clip.get_frame(t) for t in times]).astype(np.float32)  # (F, h, w, 3)
    finally:
        clip.close()
    video = torch.from_numpy(frames).permute(0, 3, 1, 2) / 127.5 - 1.0  # (F, 3, h, w)
    h, w = video.shape[-2:]
    scale = max(height / h, width / w)  # resize so the clip covers the target, then center-crop
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    video = F.interpolate(video, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    video = video[..., top : top + height, left : left + width].clamp(-1, 1)
    return video.transpose(0, 1).contiguous(), start


class VideoFolder(IterableDataset):
    """Infinite, seeded stream over `folder/*.mp4` (each with a `.txt` caption beside it).

    Worker- and rank-safe like ShapesWorld: the stream is seeded by (seed, rank, worker id).
    """

    def __init__(self, folder: str | Path, *, num_frames: int = 16, height: int = 64, width: int = 64, fps: float = 8,
                 sample_rate: int = 16000, seed: int = 0, rank: int = 0, world_size: int = 1, p_image: float = 0.25):
        super().__init__()
        self.folder = Path(folder)
        self.clips = sorted(p for p in self.folder.glob("*.mp4") if p.with_suffix(".txt").is_file())
        if not self.clips:
            raise ValueError(f"no .mp4 clips with .txt captions in {str(self.folder)!r}")
        self.num_frames, self.height, self.width, self.fps = num_frames, height, width, fps
        self.sample_rate, self.seed, self.rank, self.world_size, self.p_image = sample_rate, seed, rank, world_size, p_image

    def sample(self, rng: np.random.Generator) -> dict:
        path = self.clips[int(rng.integers(len(self.clips)))]
        video, start = _load_clip(path, self.num_frames, self.height, self.width, self.fps, rng)
        n = int(round(self.num_frames / self.fps * self.sample_rate))
        audio, has_audio = torch.zeros(n), False
        try:
            samples, sr = load_audio(path, max_seconds=start + self.num_frames / self.fps)
            samples = samples[int(start * sr) :]
            audio = prepare_audio(samples, sr, num_frames=self.num_frames, fps=self.fps, target_sr=self.sample_rate)
            has_audio = bool(audio.abs().max() > 0)
        except ValueError:  # no audio stream: a silent clip
            pass
        use_image = rng.random() < self.p_image
        return {
            "video": video,
            "caption": path.with_suffix(".txt").read_text().strip(),
            "audio": audio,
            "has_audio": torch.tensor(has_audio),
            "image": video[:, 0].clone() if use_image else torch.zeros(3, self.height, self.width),
            "has_image": torch.tensor(bool(use_image)),
            "shift": torch.zeros(max(self.num_frames - 1, 0), 2),
            "object_mask": torch.zeros(self.num_frames, self.height, self.width, dtype=torch.bool),
            "static_mask": torch.zeros(self.num_frames, self.height, self.width, dtype=torch.bool),
            "has_motion": torch.tensor(False),
        }

    def __iter__(self):
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, self.rank, info.id if info is not None else 0])
        while True:
            yield self.sample(rng)
