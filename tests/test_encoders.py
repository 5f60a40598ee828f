"""Condition encoders: text tokens and key mask, vocabulary trimming, audio front end, image loading."""

import numpy as np
import pytest
import torch
from PIL import Image

from support import TINY_VOCAB, tiny_config
from vidgen.encoders import (
    AudioEncoder,
    ImageEncoder,
    TextEncoder,
    mel_filterbank,
    normalize_words,
    prepare_audio,
    resample,
)

CFG = tiny_config()  # context_length 16, width 32, audio 16 kHz, fps 8


@pytest.fixture(scope="module")
def text():
    torch.manual_seed(0)
    return TextEncoder(CFG).eval()


# ------------------------------------------------------------------------------------------ text
def test_features_shape_and_mask_up_to_eot(text):
    prompts = ["a red circle moving left", "a big blue square moving up quickly and a yellow triangle"]
    ids, truncated = text.tokenize(prompts)
    assert ids.shape == (2, CFG.context_length) and truncated == [False, False]
    with torch.no_grad():
        feats, mask = text(ids)
    assert feats.shape == (2, CFG.context_length, CFG.width) and torch.isfinite(feats).all()
    assert mask.dtype == torch.bool and mask.shape == ids.shape
    for row in range(2):
        eot = ids[row].tolist().index(text.eot_id)
        assert ids[row, 0] == text.sot_id
        assert mask[row, : eot + 1].all() and not mask[row, eot + 1 :].any()


def test_mask_with_bang_token_id_zero(text):
    """"!" is BPE id 0, the same as padding: the mask must come from EOT, not from ids != 0."""
    ids, _ = text.tokenize(["a red circle !~ moving left"])
    row = ids[0].tolist()
    eot = row.index(text.eot_id)
    assert 0 in row[1:eot], "the prompt must contain a real token with id 0"
    assert text.tokenizer.decoder[0].startswith("!")
    mask = text.key_mask(ids)[0]
    assert mask[: eot + 1].all() and not mask[eot + 1 :].any()
    assert int(mask.sum()) == eot + 1


def test_truncation_flag(text):
    long = " ".join(["a red circle moving left and"] * 6)
    ids, truncated = text.tokenize([long, "a red circle"])
    assert truncated == [True, False]
    assert ids[0, -1] == text.eot_id  # EOT survives truncation
    assert text.key_mask(ids)[0].all()


def test_vocabulary_trimming_and_unknown_words(text):
    tok = text.tokenizer
    ids = sorted({tok.sot_token_id, tok.eot_token_id} | {i for w in TINY_VOCAB for i in tok.encode(w)})
    assert text.transformer.token_embedding.num_embeddings == len(ids) + 1  # row 0 = shared unknown
    rows = text.id_to_row[torch.tensor(ids)]
    assert rows.min() >= 1 and len(set(rows.tolist())) == len(ids)
    for word in ("zebra", "giraffe", "dog"):
        (i,) = tok.encode(word)
        assert text.id_to_row[i] == 0
    assert text.unknown_words("A red Zebra, moving left!") == ["zebra"]
    assert text.unknown_words("a big red circle moving left") == []
    # Two prompts that differ only in unknown words encode identically.
    ids2, _ = text.tokenize(["a red zebra moving left", "a red giraffe moving left"])
    with torch.no_grad():
        feats, _ = text(ids2)
    torch.testing.assert_close(feats[0], feats[1], rtol=0, atol=0)
    # ... while known words are distinguished.
    ids3, _ = text.tokenize(["a red circle moving left", "a red square moving left"])
    with torch.no_grad():
        feats3, _ = text(ids3)
    assert (feats3[0] - feats3[1]).abs().max() > 1e-4


def test_open_vocabulary():
    enc = TextEncoder(tiny_config(vocabulary=()))
    assert enc.transformer.token_embedding.num_embeddings == len(enc.tokenizer.encoder)
    assert enc.unknown_words("a red zebra") == []
    assert torch.equal(enc.id_to_row[:10], torch.arange(10))


def test_pieces_and_normalize_words(text):
    assert text.pieces("a yellow triangle") == ["a</w>", "yellow</w>", "triangle</w>"]
    assert normalize_words("A Big, RED circle -- moving left!") == ["a", "big", "red", "circle", "moving", "left"]


# ----------------------------------------------------------------------------------------- audio
def sine(freq, sr, seconds, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave, sr):
    spec = np.abs(np.fft.rfft(np.asarray(wave, dtype=np.float64)))
    return np.argmax(spec) * sr / len(wave)


@pytest.mark.parametrize("orig,target", [(8000, 16000), (44100, 16000), (16000, 22050)])
def test_resample_preserves_frequency_and_length(orig, target):
    wave = torch.from_numpy(sine(440.0, orig, 0.5))
    out = resample(wave, orig, target)
    assert out.dtype == wave.dtype
    assert out.shape[-1] == round(wave.shape[-1] * target / orig)
    assert abs(peak_hz(out, target) - 440.0) <= target / out.shape[-1]  # within one FFT bin
    assert abs(float(out.abs().max()) - 0.5) < 0.05  # amplitude kept
    assert torch.equal(resample(wave, orig, orig), wave)


def test_resample_is_band_limited_and_batched():
    hi = torch.from_numpy(sine(10000.0, 44100, 0.25))  # above the 8 kHz Nyquist of 16 kHz
    assert resample(hi, 44100, 16000).abs().max() < 0.02
    batch = torch.stack([torch.from_numpy(sine(f, 8000, 0.25)) for f in (300.0, 700.0)])
    out = resample(batch, 8000, 16000)
    assert out.shape == (2, 4000)
    torch.testing.assert_close(out[1], resample(batch[1], 8000, 16000))


def audio_cases():
    return {
        "8k": (sine(440.0, 8000, 1.0), 8000),
        "44.1k": (sine(440.0, 44100, 0.3), 44100),
        "stereo": (np.stack([sine(440.0, 22050, 1.0), sine(660.0, 22050, 1.0)], axis=1), 22050),  # (S, 2)
        "channels-first": (np.stack([sine(440.0, 16000, 0.5)] * 2, axis=0), 16000),  # (2, S)
        "silence": (np.zeros(16000, np.float32), 16000),
        "nan-and-clipped": (np.where(np.arange(16000) % 7 == 0, np.nan, 3.0).astype(np.float32), 16000),
    }


@pytest.mark.parametrize("case", list(audio_cases()))
def test_prepare_audio_and_encoder(case):
    wave, sr = audio_cases()[case]
    frames = 4
    prepared = prepare_audio(wave, sr, num_frames=frames, fps=CFG.fps, target_sr=CFG.audio_sample_rate)
    n = int(round(frames / CFG.fps * CFG.audio_sample_rate))
    assert prepared.shape == (n,) and prepared.dtype == torch.float32
    assert torch.isfinite(prepared).all() and prepared.abs().max() <= 1.0 + 1e-6
    torch.manual_seed(0)
    enc = AudioEncoder(CFG)
    with torch.no_grad():
        tokens = enc(prepared[None], frames)
    assert tokens.shape == (1, frames, CFG.width) and torch.isfinite(tokens).all()


def test_prepare_audio_pads_and_trims():
    short = prepare_audio(np.full(100, 0.5, np.float32), 16000, num_frames=8, fps=8, target_sr=16000)
    assert short.shape == (16000,) and torch.all(short[:100] == 0.5) and torch.all(short[100:] == 0)
    long = prepare_audio(np.full(50000, 0.25, np.float32), 16000, num_frames=8, fps=8, target_sr=16000)
    assert long.shape == (16000,) and torch.all(long == 0.25)
    with pytest.raises(ValueError):
        prepare_audio(np.zeros(0, np.float32), 16000, num_frames=8, fps=8, target_sr=16000)
    with pytest.raises(ValueError):
        prepare_audio(np.zeros((2, 2, 100), np.float32), 16000, num_frames=8, fps=8, target_sr=16000)


def test_audio_features_follow_loudness():
    enc = AudioEncoder(CFG)
    quiet = torch.from_numpy(sine(440.0, 16000, 0.5, amp=0.02))
    loud = torch.from_numpy(sine(440.0, 16000, 0.5, amp=0.8))
    feats = enc.features(torch.stack([quiet, loud, torch.zeros(8000)]), num_frames=4)
    assert feats.shape == (3, 4, CFG.n_mels + 1) and torch.isfinite(feats).all()
    assert torch.all(feats[1, :, -1] > feats[0, :, -1]) and torch.all(feats[0, :, -1] > feats[2, :, -1])


def test_mel_filterbank():
    fb = mel_filterbank(32, 512, 16000)
    assert fb.shape == (32, 257)
    assert (fb >= 0).all() and fb.max() <= 1.0 + 1e-6
    assert (fb.max(dim=1).values > 0).all()  # every filter covers at least one bin
    centers = fb.argmax(dim=1)
    assert torch.all(centers[1:] >= centers[:-1])  # ordered low to high
    assert mel_filterbank(8, 256, 8000, f_min=100.0, f_max=3000.0).shape == (8, 129)


# ----------------------------------------------------------------------------------------- image
def image_cases():
    h, w = 20, 30
    rgba = Image.new("RGBA", (h, h), (255, 0, 0, 255))
    rgba.paste((255, 255, 255, 0), (0, 0, h // 2, h // 2))  # transparent white top-left quadrant
    pal = Image.new("P", (w, h), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    i16 = Image.fromarray(np.full((h, w), 65535, np.uint16))
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 255, 255), (100, 0, 200, 100))  # center third white
    return {
        "rgba": rgba,
        "gray": Image.new("L", (w, h), 255),
        "i16": i16,
        "palette": pal,
        "1x1": Image.new("RGB", (1, 1), (255, 255, 255)),
        "300x100": wide,
        "numpy-hwc-uint8": np.full((h, w, 3), 255, np.uint8),
        "numpy-gray-float": np.ones((h, w), np.float32),
        "tensor-chw-signed": torch.ones(3, h, w),
    }


@pytest.mark.parametrize("case", list(image_cases()))
@pytest.mark.parametrize("size", [(16, 16), (16, 24)])
def test_image_encoder_any_input(case, size):
    H, W = size
    out = ImageEncoder(H, W)(image_cases()[case])
    assert out.shape == (3, H, W) and out.dtype == torch.float32
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_image_encoder_values():
    cases = image_cases()
    enc = ImageEncoder(16, 16)
    for name in ("gray", "i16", "1x1", "numpy-hwc-uint8", "numpy-gray-float", "tensor-chw-signed"):
        torch.testing.assert_close(enc(cases[name]), torch.ones(3, 16, 16), rtol=0, atol=1e-6, msg=name)
    assert cases["i16"].mode.startswith("I;16")
    red = enc(cases["rgba"])
    torch.testing.assert_close(red[:, 8, 8], torch.tensor([1.0, -1.0, -1.0]))
    # The transparent quadrant is composited over black, not shown as its (white) colour.
    torch.testing.assert_close(red[:, 2, 2], torch.tensor([-1.0, -1.0, -1.0]), rtol=0, atol=0.05)
    torch.testing.assert_close(enc(cases["palette"])[:, 5, 5], torch.tensor([-1.0, 1.0, -1.0]))
    # 300x100 to a square: the center 100x100 (white) is kept, the blue sides are cropped away.
    torch.testing.assert_close(enc(cases["300x100"]), torch.ones(3, 16, 16), rtol=0, atol=1e-6)


def test_image_encoder_rejects_other_types():
    with pytest.raises(ValueError):
        ImageEncoder(16, 16)("not an image")


def test_sixteen_bit_array_matches_sixteen_bit_image():
    """A uint16 array is 16-bit data whatever its values: it must read like the same PIL I;16 image."""
    enc = ImageEncoder(8, 8)
    for value in (1, 200, 30000, 65535):
        arr = np.full((8, 8), value, np.uint16)
        from_pil = enc(Image.fromarray(arr))
        torch.testing.assert_close(enc(arr), from_pil, rtol=0, atol=0)
        torch.testing.assert_close(from_pil, torch.full((3, 8, 8), round(value / 65535 * 255) / 127.5 - 1))


def test_prepare_audio_integer_pcm():
    """int16 samples are PCM at full scale 32768, not values to clip to [-1, 1]."""
    wave = sine(440.0, 16000, 0.5)
    pcm = np.round(wave * 32767).astype(np.int16)
    a = prepare_audio(pcm, 16000, num_frames=4, fps=8, target_sr=16000)
    b = prepare_audio(wave, 16000, num_frames=4, fps=8, target_sr=16000)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    stereo32 = np.stack([np.round(wave * 2**31 * 0.999).astype(np.int32)] * 2, axis=1)
    torch.testing.assert_close(prepare_audio(stereo32, 16000, num_frames=4, fps=8, target_sr=16000), b, rtol=0, atol=1e-3)
