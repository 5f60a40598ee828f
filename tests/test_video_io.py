"""Media I/O: real files through the bundled ffmpeg and PIL, read back and checked."""

import struct
import subprocess
import zlib

import imageio_ffmpeg

import numpy as np
import pytest
import torch
from PIL import Image

from vidgen import video_io as vio


def frames(n=16, h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def tone(seconds, sr, freq=440.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ------------------------------------------------------------------------------------------ frames

def test_video_to_uint8_and_upscale():
    v = torch.zeros(1, 3, 2, 4, 6)
    v[0, 0, 1, 2, 3], v[0, 2, 0, 0, 0] = 1.0, -1.0
    out = vio.video_to_uint8(v)
    assert out.shape == (2, 4, 6, 3) and out.dtype == np.uint8
    assert out[1, 2, 3, 0] == 255 and out[0, 0, 0, 2] == 0 and out[0, 1, 1, 1] == 128
    np.testing.assert_array_equal(vio.video_to_uint8(v[0].numpy() * 5), vio.video_to_uint8(v[0] * 5))
    with pytest.raises(ValueError):
        vio.video_to_uint8(torch.zeros(2, 3, 2, 4, 4))

    up = vio.upscale_nearest(frames(2, 64, 48), 256)
    assert up.shape == (2, 384, 288, 3)  # factor ceil(256 / 48) = 6
    assert (up[0, :6, :6] == up[0, 0, 0]).all()  # crisp blocks
    assert vio.upscale_nearest(frames(1, 33, 47), None).shape == (1, 34, 48, 3)  # even
    assert vio.upscale_nearest(frames(1, 300, 300), 256).shape == (1, 300, 300, 3)
    with pytest.raises(TypeError, match="uint8"):
        vio.upscale_nearest(frames(1).astype(np.float32) / 255, None)


# ------------------------------------------------------------------------------------------- video

def test_mp4_round_trip_with_and_without_audio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # moviepy's default temp-audio location is the CWD
    plain = vio.write_mp4(frames(), tmp_path / "out" / "plain.mp4", fps=8)
    voiced = vio.write_mp4(frames(), tmp_path / "out" / "voiced.mp4", fps=8,
                           audio=tone(3.0, 16000), sample_rate=16000)  # 3 s trimmed to the 2 s video
    for path, has_audio in [(plain, False), (voiced, True)]:
        got, fps, audio = vio.read_video(path)
        assert got.shape == (16, 256, 256, 3)
        assert fps == pytest.approx(8) and audio is has_audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["plain.mp4", "voiced.mp4"]
    a, sr = vio.load_audio(voiced)
    assert len(a) / sr == pytest.approx(2.0, abs=0.1)  # the audio track matches the video's duration
    spectrum = np.abs(np.fft.rfft(a))
    assert np.fft.rfftfreq(len(a), 1 / sr)[spectrum.argmax()] == pytest.approx(440, abs=5)  # the tone survived


def test_mp4_odd_size_and_short_audio(tmp_path):
    yy, xx = np.mgrid[:33, :47]
    src = np.stack([np.stack([yy * 7, xx * 5, np.full_like(yy, 60 * i)], -1) for i in range(4)]).astype(np.uint8)
    path = vio.write_mp4(src, tmp_path / "odd.mp4", fps=4, upscale_to=None,
                         audio=tone(0.2, 22050), sample_rate=22050)  # padded to 1 s
    got, fps, has_audio = vio.read_video(path)
    assert got.shape == (4, 34, 48, 3) and has_audio
    assert np.abs(got[:, :33, :47].astype(int) - src).mean() < 8  # the same (smooth) video, up to compression
    with pytest.raises(TypeError):
        vio.write_mp4(src.astype(np.float32), tmp_path / "bad.mp4")


def streams(path) -> list[str]:
    """The "Stream #..." lines ffmpeg prints for a file (codec, pixel format, sample rate, ...)."""
    p = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                       capture_output=True, text=True, timeout=30)  # no output file: exits 1 after probing
    return [ln.strip() for ln in p.stderr.splitlines() if ln.strip().startswith("Stream #")]


def test_mp4_is_h264_yuv420p_with_aac_audio(tmp_path):
    plain = vio.write_mp4(frames(4, 32, 32), tmp_path / "plain.mp4", upscale_to=64)
    voiced = vio.write_mp4(frames(4, 32, 32), tmp_path / "voiced.mp4", upscale_to=64,
                           audio=tone(0.5, 16000), sample_rate=16000)
    for path, audio in [(plain, False), (voiced, True)]:
        video = [s for s in streams(path) if "Video:" in s]
        assert len(video) == 1 and "h264" in video[0] and "yuv420p" in video[0], video
        assert "yuva420p" not in video[0]  # what moviepy asks for; browsers cannot play alpha H.264
        sound = [s for s in streams(path) if "Audio:" in s]
        assert len(sound) == audio and all("aac" in s for s in sound), sound


def test_overlay_mp4_blends_heat_resized_to_the_frames(tmp_path):
    black = np.zeros((4, 32, 32, 3), np.uint8)
    heat = np.zeros((4, 4, 4), np.float32)
    heat[..., :2] = 1.0  # the left half of the attention grid is hot
    path = vio.write_overlay_mp4(black, heat, tmp_path / "overlay.mp4", fps=8, upscale_to=64)
    got, fps, has_audio = vio.read_video(path)
    assert got.shape == (4, 64, 64, 3) and fps == pytest.approx(8) and not has_audio
    assert got[:, :, :24].mean() > 80 > 20 > got[:, :, 40:].mean()  # hot = bright inferno, cold = near black
    video = [s for s in streams(path) if "Video:" in s]
    assert "h264" in video[0] and "yuv420p" in video[0]

    # one (h, w) map for every frame, odd sizes padded to even, and audio muxed in
    path = vio.write_overlay_mp4(frames(3, 33, 47), heat[0], tmp_path / "odd.mp4", fps=4, upscale_to=None,
                                 audio=tone(1.0, 16000), sample_rate=16000)
    got, _, has_audio = vio.read_video(path)
    assert got.shape == (3, 34, 48, 3) and has_audio

    with pytest.raises(ValueError, match="3 frames but the video has 4"):
        vio.write_overlay_mp4(black, heat[:3], tmp_path / "bad.mp4")
    with pytest.raises(ValueError, match="heat map"):
        vio.write_overlay_mp4(black, heat[None], tmp_path / "bad.mp4")
    assert not (tmp_path / "bad.mp4").exists()


def test_gif_frame_count(tmp_path):
    path = vio.write_gif(frames(5, 32, 32), tmp_path / "a.gif", fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.size == (256, 256) and im.info.get("loop") == 0


def test_npz_round_trip(tmp_path):
    fr = frames(3, 8, 8)
    mp = {"yellow": np.random.rand(3, 4, 4).astype(np.float32), "temporal": np.eye(3, dtype=np.float32)}
    meta = {"prompt": "a red circle", "steps": np.int64(20), "scale": np.float32(2.5), "seed": [1, 2]}
    path = vio.write_npz(tmp_path / "run", frames=fr, maps=mp, meta=meta)
    assert path.name == "run"  # no surprise ".npz" appended
    got, got_maps, got_meta = vio.read_npz(path)
    np.testing.assert_array_equal(got, fr)
    assert got_maps.keys() == mp.keys()
    for k in mp:
        np.testing.assert_array_equal(got_maps[k], mp[k])
    assert got_meta == {"prompt": "a red circle", "steps": 20, "scale": 2.5, "seed": [1, 2]}
    with pytest.raises(TypeError, match="pickle"):
        vio.write_npz(tmp_path / "x.npz", frames=fr, maps={"bad": np.array([{}], dtype=object)})


# ------------------------------------------------------------------------------------------ images

def png_header(width, height):
    """A PNG whose header claims width x height pixels, with no pixel data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IEND", b"")


def test_load_image_modes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[:4, ..., 3], rgba[4:, ..., 3] = 200, 255, 0  # top opaque red, bottom transparent
    cases = {
        "rgba": Image.fromarray(rgba),
        "l": Image.fromarray(np.full((8, 8), 77, np.uint8)),
        "i16": Image.fromarray(np.full((8, 8), 40000, np.uint16)),
        "p": Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE),
    }
    for name, img in cases.items():
        img.save(tmp_path / f"{name}.png")
        out = vio.load_image(tmp_path / f"{name}.png")
        assert out.mode == "RGB" and out.size == (8, 8), name
    assert [img.mode for img in cases.values()] == ["RGBA", "L", "I;16", "P"]
    px = lambda name, xy=(0, 0): vio.load_image(tmp_path / f"{name}.png").getpixel(xy)
    assert px("rgba") == (200, 0, 0) and px("rgba", (0, 7)) == (255, 255, 255)  # alpha over white
    assert px("l") == (77, 77, 77)
    assert px("i16") == (156, 156, 156)  # 40000 / 257, not clipped to white
    assert px("p") == (30, 30, 30)
    # objects and arrays as Gradio hands them over
    assert vio.load_image(cases["l"]).mode == "RGB"
    assert vio.load_image(np.full((4, 4), 0.5, np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert vio.load_image(rgba[..., :3]).size == (8, 8)


def test_load_image_rejects_bad_files(tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("this is not a picture")
    with pytest.raises(ValueError, match="not a readable image"):
        vio.load_image(tmp_path / "notes.png")

    Image.fromarray(frames(1, 64, 64)[0]).save(tmp_path / "full.png")  # noise: barely compressible
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable image"):
        vio.load_image(tmp_path / "cut.png")

    (tmp_path / "huge.png").write_bytes(png_header(20000, 20000))  # 400 MP: PIL's own guard fires
    with pytest.raises(ValueError, match="too large"):
        vio.load_image(tmp_path / "huge.png")
    (tmp_path / "big.png").write_bytes(png_header(8000, 8000))  # 64 MP: below PIL's guard, above ours
    with pytest.raises(ValueError, match="exceeds the limit"):
        vio.load_image(tmp_path / "big.png")
    monkeypatch.setattr(vio, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="too large"):
        vio.load_image(tmp_path / "full.png")


# ------------------------------------------------------------------------------------------- audio

@pytest.mark.parametrize("sr", [8000, 44100])
def test_load_audio_wav_native_rate(tmp_path, sr):
    x = tone(0.5, sr)
    a, got_sr = vio.load_audio(vio.write_wav(tmp_path / "t.wav", x, sr))
    assert got_sr == sr and a.dtype == np.float32 and a.ndim == 1
    assert abs(len(a) - len(x)) <= sr // 100
    n = min(len(a), len(x))
    assert np.abs(a[:n] - x[:n]).max() < 2e-3  # only 16-bit quantization error


def test_load_audio_arrays():
    left = np.full(100, 32767, np.int16)
    a, sr = vio.load_audio((16000, np.stack([left, np.zeros(100, np.int16)], 1)))  # stereo (N, 2)
    assert sr == 16000 and a.shape == (100,) and a[0] == pytest.approx(0.5, abs=1e-3)
    a, _ = vio.load_audio((8000, np.full(10, -2**31, np.int32)))
    assert a[0] == pytest.approx(-1.0)
    a, _ = vio.load_audio((8000, np.full(10, 128, np.uint8)))
    assert a[0] == pytest.approx(0.0)
    a, _ = vio.load_audio((8000, np.array([np.nan, np.inf, 3.0, -0.25], np.float32)))
    assert a.tolist() == [0.0, 0.0, 1.0, -0.25]
    a, _ = vio.load_audio((1000, np.zeros(5000, np.float32)), max_seconds=2)
    assert len(a) == 2000
    with pytest.raises(ValueError, match="empty"):
        vio.load_audio((8000, np.zeros(0, np.int16)))


def test_load_audio_bad_file_and_max_seconds(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not a readable audio file"):
        vio.load_audio(tmp_path / "bad.wav")
    long = vio.write_wav(tmp_path / "long.wav", tone(5.0, 8000), 8000)
    a, sr = vio.load_audio(long, max_seconds=1)
    assert sr == 8000 and len(a) == pytest.approx(8000, abs=80)
