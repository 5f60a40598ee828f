"""Media in and out: frames <-> MP4/GIF/NPZ, attention-overlay MP4, user images and audio.

Frames are uint8 (F, H, W, 3) everywhere in this module. moviepy is imported inside the functions
that need it: it is slow to import and loads the nearest ``.env`` into the environment.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image, ImageOps

from .maps import overlay

MAX_IMAGE_PIXELS = 40_000_000  # refuse larger images before decoding them (decompression bombs)
# Formats user images may have. Anything else is refused before a decoder runs: EPS would hand the file
# to Ghostscript, and the long tail of rare decoders is attack surface a video demo does not need.
# (JPEG covers MPO, the multi-picture JPEG some phones write.)
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "PPM")
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000  # audio outside this is refused as malformed
AUDIO_DECODE_TIMEOUT = 60  # seconds; ffmpeg decodes at most the video's length, so this is generous
_AAC_RATES = {7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}


# ------------------------------------------------------------------------------------------ frames

def video_to_uint8(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, F, H, W) or (1, 3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8."""
    v = video.detach().float().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video, np.float32)
    if v.ndim == 5:
        if v.shape[0] != 1:
            raise ValueError(f"expected a single video, got a batch of {v.shape[0]}")
        v = v[0]
    if v.ndim != 4 or v.shape[0] != 3:
        raise ValueError(f"expected (3, F, H, W) or (1, 3, F, H, W), got {v.shape}")
    v = np.nan_to_num(v.transpose(1, 2, 3, 0), nan=0.0)
    return np.clip(((v + 1) * 127.5).round(), 0, 255).astype(np.uint8)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames (F, H, W, 3) with F >= 1, got {frames.shape}")
    if frames.dtype != np.uint8:  # moviepy casts silently: float frames in [0, 1] turn black
        raise TypeError(f"expected uint8 frames, got {frames.dtype}; see video_to_uint8")
    return frames


def upscale_nearest(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Nearest-neighbour upscale by the smallest integer factor that brings the shorter side to at least
    ``size`` (None: no upscale), then pad the last row/column by edge copy to even H and W (yuv420p)."""
    frames = _upscale(_check_frames(frames), size)
    ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames


def _upscale(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Nearest-neighbour upscale (F, H, W, 3) by the smallest integer factor that brings the shorter side
    to at least ``size`` (None: unchanged); no padding."""
    k = max(1, -(-size // min(frames.shape[1:3]))) if size else 1
    return frames.repeat(k, 1).repeat(k, 2) if k > 1 else frames


# ------------------------------------------------------------------------------------------- write

def write_mp4(frames: np.ndarray, path: str | Path, *, fps: float = 8, audio: np.ndarray | None = None,
              sample_rate: int = 16000, upscale_to: int | None = 256) -> Path:
    """Write H.264/yuv420p MP4 (browser-playable); mono float audio in [-1, 1] is trimmed/padded to the
    video's duration and muxed as AAC."""
    from moviepy import AudioArrayClip, ImageSequenceClip

    frames = upscale_nearest(frames, upscale_to)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clips = [ImageSequenceClip(list(frames), fps=fps)]  # a list: an ndarray is taken for a folder name
    audio_fps = 44100
    if audio is not None:
        a = _clean_audio(np.asarray(audio, dtype=np.float32).reshape(-1))
        n = int(round(len(frames) / fps * sample_rate))
        a = np.pad(a[:n], (0, max(0, n - len(a))))
        # 2-D (N, 2): AudioArrayClip returns 2 columns even for mono input while declaring 1 channel,
        # so an (N, 1) array comes out at twice its duration (moviepy 2.x); write dual-mono instead
        clips.append(AudioArrayClip(np.repeat(a[:, None], 2, axis=1), fps=sample_rate))
        clips[0] = clips[0].with_audio(clips[-1])
        # encode at the source rate when AAC supports it: moviepy's resampling is nearest-sample
        audio_fps = sample_rate if sample_rate in _AAC_RATES else 44100
    # yuv420p is set by a format filter, not -pix_fmt: moviepy 2.1 appends "-pix_fmt yuva420p" after
    # ffmpeg_params for libx264 (the last -pix_fmt wins, so ours would be ignored) and its pixel_format
    # argument never reaches ffmpeg. The filter converts RGB to yuv420p explicitly; libx264 has no alpha
    # format, so ffmpeg then keeps yuv420p for the yuva420p request (tests probe the file for it).
    params = ["-vf", "format=yuv420p", "-movflags", "+faststart"]
    try:
        # the temp audio file goes to a private dir: the default (CWD) clashes between concurrent requests
        with tempfile.TemporaryDirectory(prefix="vidgen-mp4-") as tmp:
            clips[0].write_videofile(str(path), fps=fps, codec="libx264", audio=audio is not None,
                                     audio_codec="aac", audio_fps=audio_fps, temp_audiofile_path=tmp,
                                     ffmpeg_params=params, logger=None)
    finally:
        for c in clips:
            c.close()
    # ffmpeg can fail without an exception and leave an empty file
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"ffmpeg wrote no video to {path}")
    return path


def write_overlay_mp4(frames: np.ndarray, heat: np.ndarray, path: str | Path, *, fps: float = 8,
                      alpha: float = 0.55, cmap: str = "inferno", upscale_to: int | None = 256,
                      audio: np.ndarray | None = None, sample_rate: int = 16000) -> Path:
    """Write frames (F, H, W, 3) uint8 with an attention heat map blended on top as an MP4 (see write_mp4).
    heat: (F, h, w) or (h, w) in [0, 1], e.g. one word of maps.word_heatmaps, bilinearly resized to the
    frame size. The frames are upscaled before blending, so the heat map stays smooth, not blocky."""
    frames = _check_frames(frames)
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim not in (2, 3) or 0 in heat.shape:
        raise ValueError(f"expected a heat map (F, h, w) or (h, w), got shape {heat.shape}")
    blended = overlay(_upscale(frames, upscale_to), heat, alpha=alpha, cmap=cmap)
    return write_mp4(blended, path, fps=fps, audio=audio, sample_rate=sample_rate, upscale_to=None)  # pads to even


def write_gif(frames: np.ndarray, path: str | Path, *, fps: float = 8, upscale_to: int | None = 256) -> Path:
    """Write a looping GIF (identical consecutive frames may be merged by PIL)."""
    frames = upscale_nearest(frames, upscale_to)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)
    return path


def write_npz(path: str | Path, *, frames: np.ndarray, maps: Mapping[str, np.ndarray] | None = None,
              meta: Mapping[str, Any] | None = None) -> Path:
    """Save frames (uint8), maps (as ``map/<name>``) and JSON meta in one compressed .npz, without pickle."""
    frames = _check_frames(frames)
    arrays = {"frames": frames, "meta": np.array(json.dumps(dict(meta or {}), default=_json_default))}
    for name, m in (maps or {}).items():
        m = np.asarray(m)
        if m.dtype == object:
            raise TypeError(f"map {name!r} has dtype object, which would need pickle")
        arrays[f"map/{name}"] = m
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
        np.savez_compressed(f, **arrays)
    return path


def read_npz(path: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of write_npz -> (frames, maps, meta)."""
    with np.load(path, allow_pickle=False) as z:
        maps = {k[4:]: z[k] for k in z.files if k.startswith("map/")}
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        return z["frames"], maps, meta


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.generic, np.ndarray)):
        return o.tolist()
    if isinstance(o, (Path, slice)):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float audio in [-1, 1], (S,) or (S, C), as 16-bit PCM WAV."""
    a = np.asarray(audio, dtype=np.float32)
    a = a[:, None] if a.ndim == 1 else a
    pcm = (np.clip(np.nan_to_num(a), -1, 1) * 32767).round().astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return path


# -------------------------------------------------------------------------------------------- read

def read_video(path: str | Path) -> tuple[np.ndarray, float, bool]:
    """Decode a video -> (frames (F, H, W, 3) uint8, fps, has_audio)."""
    from moviepy import VideoFileClip

    try:
        clip = VideoFileClip(str(path))
    except (OSError, KeyError, IndexError) as e:
        raise ValueError(f"{path} is not a readable video: {e}") from e
    try:
        frames = np.stack([np.asarray(f, dtype=np.uint8) for f in clip.iter_frames()])
        return frames, float(clip.fps), clip.audio is not None
    finally:
        clip.close()


def _check_file(path: Path, name: str) -> None:
    """FileNotFoundError for a missing path, ValueError for a folder or an impossible name."""
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise ValueError(f"{name} cannot be opened ({e.strerror or e})") from None
    if not exists:
        raise FileNotFoundError(f"{name} does not exist")
    if not is_file:
        raise ValueError(f"{name} is not a file")


def load_image(src: str | Path | bytes | Image.Image | np.ndarray | Any) -> Image.Image:
    """Load a user image (path, bytes, file object, PIL image or array) as RGB. Alpha is composited on
    white, 16-bit and float images are rescaled. Raises ValueError for non-images, truncated files, empty
    images and images above MAX_IMAGE_PIXELS (checked from the header, before decoding);
    FileNotFoundError for a missing path."""
    if isinstance(src, Image.Image):
        img = src
    elif isinstance(src, np.ndarray):
        img = _array_to_image(src)
    elif isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(src, "read"):
        if isinstance(src, (bytes, bytearray, memoryview)):
            name, src = "the uploaded data", io.BytesIO(bytes(src))
        elif isinstance(src, (str, os.PathLike)):
            name = f"image file {os.fspath(src)[:200]!r}"
            _check_file(Path(src), name)
        else:
            name = f"the {type(src).__name__} object"
        too_big = None
        try:
            Image.init()  # registers every plugin once; then keep the ones this Pillow has
            with Image.open(src, formats=[f for f in IMAGE_FORMATS if f in Image.OPEN]) as im:  # reads the header
                if im.width * im.height > MAX_IMAGE_PIXELS:
                    too_big = im.size
                else:
                    im.load()
                    img = ImageOps.exif_transpose(im)  # phone photos store rotation in EXIF; returns a copy
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{name} does not exist") from e
        except Image.UnidentifiedImageError:
            raise ValueError(f"{name} is not a readable image (supported formats: {', '.join(IMAGE_FORMATS)})") from None
        except Image.DecompressionBombError as e:  # PIL's own (larger) limit hit inside open()
            raise ValueError(f"{name} is too large to load safely ({e})") from e
        except Exception as e:  # PIL raises OSError, SyntaxError, struct.error, ... for broken files
            raise ValueError(f"{name} is not a readable image ({type(e).__name__}: {e})") from e
        if too_big:
            raise ValueError(f"{name} is too large: {too_big[0]}x{too_big[1]} pixels exceeds the limit of "
                             f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
    else:
        raise ValueError(f"an image must be a file path, bytes, a PIL image or a numpy array, got {type(src).__name__}")
    if img.width * img.height > MAX_IMAGE_PIXELS:
        raise ValueError(f"image of {img.width}x{img.height} pixels exceeds {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
    if img.width < 1 or img.height < 1:
        raise ValueError(f"the image is empty ({img.width}x{img.height} pixels)")
    try:
        return _to_rgb(img)
    except (OSError, ValueError) as e:  # e.g. a mode PIL cannot convert
        raise ValueError(f"the image could not be converted to RGB (mode {img.mode}: {e})") from e


def _array_to_image(a: np.ndarray) -> Image.Image:
    a = np.squeeze(a, axis=-1) if a.ndim == 3 and a.shape[-1] == 1 else a
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"array of shape {a.shape} is not an image (expected (H, W), (H, W, 3) or (H, W, 4))")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"an image array must hold numbers, got dtype {a.dtype}")
    if a.shape[0] * a.shape[1] > MAX_IMAGE_PIXELS:  # before any conversion copies it
        raise ValueError(f"image of {a.shape[1]}x{a.shape[0]} pixels exceeds {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
    if a.size == 0:
        raise ValueError(f"the image is empty ({a.shape[1]}x{a.shape[0]} pixels)")
    if a.dtype == np.uint16:
        a = a / 257.0
    elif a.dtype.kind == "b":
        a = a * 255.0
    elif a.dtype.kind == "f" and np.nanmax(np.where(np.isinf(a), 0, a), initial=0) <= 1.0:  # float images: [0, 1]
        a = a * 255.0
    a = np.nan_to_num(np.clip(a, 0, 255).astype(np.float32), nan=0.0)  # clip first: no overflow to float32
    return Image.fromarray(a.round().astype(np.uint8))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # convert("L") would clip 16-bit values at 255 (mostly white): rescale instead
        a = np.nan_to_num(np.asarray(img, dtype=np.float32))
        if img.mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        elif img.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
        return Image.fromarray(np.clip(a.round(), 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return img.convert("RGB")


def _clean_audio(a: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), -1, 1).astype(np.float32)


def _pcm_to_float(a: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1]; floats pass through."""
    if a.dtype.kind == "i":
        return a.astype(np.float32) / -float(np.iinfo(a.dtype).min)
    if a.dtype.kind == "u":
        mid = (float(np.iinfo(a.dtype).max) + 1) / 2
        return (a.astype(np.float32) - mid) / mid
    if a.dtype.kind in "fb":
        return a.astype(np.float32)
    raise ValueError(f"audio samples must be numbers (int or float PCM), got dtype {a.dtype}")


def _sample_rate(value: Any) -> int:
    """A sample rate as an int within [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] (an integral float is fine)."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if ok and isinstance(value, (float, np.floating)):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    if not ok or not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        shown = repr(value) if isinstance(value, (int, float, np.number, type(None))) else type(value).__name__
        raise ValueError(f"the audio sample rate must be an integer in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz, "
                         f"got {shown[:40]}")
    return int(value)


def load_audio(src: str | Path | tuple[int, np.ndarray], *,
               max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Load audio as mono float32 (S,) in [-1, 1] and its sample rate, from a file ffmpeg can read or a
    ``(sample_rate, array)`` tuple as ``gr.Audio(type="numpy")`` gives ((N,) or (N, C), int or float).
    At most ``max_seconds`` are decoded (a file is cut by ffmpeg, an array is sliced before any copy), so
    an hour of audio costs no more than the video's length. NaN/inf samples become 0 and clipping is
    clamped to [-1, 1]. Raises ValueError for unreadable files, malformed tuples, sample rates outside
    [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] and empty audio; FileNotFoundError for a missing path."""
    if isinstance(src, tuple):
        if len(src) != 2:
            raise ValueError(f"an audio tuple must be (sample_rate, samples), got {len(src)} items")
        sr = _sample_rate(src[0])
        try:
            a = np.asarray(src[1])
        except (ValueError, TypeError) as e:  # ragged lists and the like
            raise ValueError(f"the audio samples are not a numeric array ({e})") from None
        if a.ndim == 2 and a.shape[0] < a.shape[1] and a.shape[0] <= 8:
            a = a.T  # channels-first (C, N) -> (N, C)
        if max_seconds is not None and a.ndim >= 1:
            a = a[: max(1, int(max_seconds * sr))]  # a view: never convert more than the video needs
        a = _pcm_to_float(a)
    elif isinstance(src, (str, os.PathLike)):
        a, sr = _read_audio_file(Path(src), max_seconds)
    else:
        raise ValueError(f"audio must be a file path or a (sample_rate, samples) tuple, got {type(src).__name__}")
    if a.ndim not in (1, 2):
        raise ValueError(f"audio must be (N,) or (N, channels), got shape {a.shape}")
    if a.size == 0:
        raise ValueError("the audio is empty")
    if a.ndim == 2:
        a = a.mean(1)  # downmix to mono
    return _clean_audio(a), sr


def _ffmpeg_reason(output: str, target: str) -> str:
    """One short line out of ffmpeg's output for an error message: no server paths, no addresses."""
    if "Stream #" in output and "Audio:" not in output:
        return "it has no audio stream"
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", ln.strip()).replace(target, "the file") for ln in output.splitlines()]
    hits = [ln for ln in lines if ln and re.search(r"invalid|error|unsupported|not supported|could not|failed", ln, re.I)
            and not ln.startswith("Error passing")]
    reason = hits[0] if hits else "ffmpeg cannot read it"
    return reason if len(reason) <= 120 else reason[:117] + "..."


def _read_audio_file(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    # ffmpeg is called directly: moviepy 2.x's AudioFileClip.to_soundarray mis-slices its buffer for
    # clips longer than half a buffer (it passes a boolean mask as times), so it errors or returns garbage
    from moviepy.config import FFMPEG_BINARY
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    _check_file(path, f"audio file {str(path)[:200]!r}")
    # An absolute path: ffmpeg never reads a name like "concat:a|b" or "http:..." as a protocol.
    target = str(path.resolve())
    try:
        infos = ffmpeg_parse_infos(target)  # probes the header; decodes nothing
    except Exception as e:
        raise ValueError(f"{path.name} is not a readable audio file ({_ffmpeg_reason(str(e), target)})") from None
    if not infos.get("audio_found"):
        raise ValueError(f"{path.name} has no audio stream")
    try:
        sr = _sample_rate(int(infos["audio_fps"]))  # keep the native rate: no resampling here
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path.name} has no usable sample rate ({e})") from None
    limit = [] if max_seconds is None else ["-t", f"{max(max_seconds, 0):.6f}"]  # ffmpeg stops decoding there
    cmd = [FFMPEG_BINARY, "-nostdin", "-v", "error", "-i", target, *limit, "-vn",
           "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(sr), "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=AUDIO_DECODE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ValueError(f"{path.name} took longer than {AUDIO_DECODE_TIMEOUT} s to decode") from None
    if proc.returncode != 0:
        reason = _ffmpeg_reason(proc.stderr.decode(errors="replace"), target)
        raise ValueError(f"{path.name} could not be decoded as audio ({reason})")
    return np.frombuffer(proc.stdout, dtype="<f4").copy(), sr
