"""VideoModel / VideoDenoiser: forward and backward, conditioning paths, checkpoint round trips and errors."""

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors import safe_open

from support import TINY_VOCAB, make_inputs, randomize, tiny_config
from vidgen.checkpoint import CONFIG_NAME, WEIGHTS_NAME, Conditioning, VideoModel
from vidgen.config import ModelConfig, from_dict, load_json, save_json, to_dict


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return randomize(VideoModel(tiny_config(**overrides)).eval(), seed)


def run(model, inp, **kw):
    x, t, cond = inp
    with torch.no_grad():
        return model(x, t, cond, **kw)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


def test_forward_backward_default_config_16x64x64():
    """The default architecture at its default size: 16 frames of 64x64, batch 1, text + audio."""
    torch.manual_seed(0)
    model = randomize(VideoModel(ModelConfig(vocabulary=TINY_VOCAB)), seed=1)
    cfg = model.cfg
    ids, _ = model.text.tokenize(["a big red circle moving left quickly"])
    audio = 0.3 * torch.randn(1, int(cfg.num_frames / cfg.fps * cfg.audio_sample_rate))
    x0 = torch.rand(1, 3, 16, 64, 64) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([500])
    x_t = model.schedule.add_noise(x0, noise, t)
    cond = model.encode(ids, 16, audio)
    out = model(x_t, t, cond, image=x0[:, :, 0])
    assert out.shape == (1, 3, 16, 64, 64) and torch.isfinite(out).all()
    loss = (out - model.schedule.target(x0, noise, t, cfg.prediction_type)).square().mean()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), "every parameter gets a finite grad"
    assert grads["text.transformer.token_embedding.weight"].abs().sum() > 0
    assert grads["audio.net.0.weight"].abs().sum() > 0


def test_forward_backward_single_frame():
    model = tiny_model().train()
    x, t, cond = make_inputs(model, batch=2, frames=1)
    out = model(x, t, cond)
    assert out.shape == x.shape == (2, 3, 1, 16, 16)
    out.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_gradients_reach_text_and_audio_encoders():
    model = tiny_model().train()
    ids, _ = model.text.tokenize(["a red circle moving left", "a blue square moving up"])
    audio = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, 4, 16, 16)
    out = model(x, torch.tensor([100, 700]), model.encode(ids, 4, audio))
    out.square().mean().backward()
    for name, p in model.named_parameters():
        if name.startswith(("text.", "audio.")):
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.text.transformer.token_embedding.weight.grad.abs().sum() > 0
    assert model.text.proj.weight.grad.abs().sum() > 0
    assert model.audio.net[0].weight.grad.abs().sum() > 0
    assert model.denoiser.frame_proj.weight.grad.abs().sum() > 0


def test_zero_init_output_is_zero():
    """adaLN-zero / zero-initialised output conv: a fresh model predicts exactly 0 (v = 0 is a safe start)."""
    torch.manual_seed(0)
    fresh = VideoModel(tiny_config()).eval()
    assert torch.all(run(fresh, make_inputs(fresh)) == 0)


def test_conditioning_paths(model):
    x, t, cond = make_inputs(model, batch=2, frames=4, audio=False)
    base = run(model, (x, t, cond))
    # Zero frame condition = none (frame_proj has no bias).
    zero_fc = Conditioning(cond.context, cond.context_mask, torch.zeros(2, 4, model.cfg.width), cond.num_text_tokens)
    torch.testing.assert_close(run(model, (x, t, zero_fc)), base, rtol=0, atol=1e-6)
    # Audio switched off per row (has_audio False) equals text-only conditioning.
    ids, _ = model.text.tokenize(["a red circle moving left", "a big blue square moving up quickly"])
    audio = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mixed = model.encode(ids, 4, audio, has_audio=torch.tensor([False, True]))
    assert mixed.context.shape == (2, model.cfg.context_length + 4, model.cfg.width)
    assert mixed.num_text_tokens == model.cfg.context_length
    assert not mixed.context_mask[0, -4:].any() and mixed.context_mask[1, -4:].all()
    out = run(model, (x, t, mixed))
    torch.testing.assert_close(out[0], base[0], rtol=0, atol=1e-5)
    assert (out[1] - base[1]).abs().max() > 1e-4
    # select() picks rows of every field.
    one = mixed.select(slice(1, 2))
    assert one.context.shape[0] == one.context_mask.shape[0] == one.frame_cond.shape[0] == 1
    torch.testing.assert_close(run(model, (x[1:], t[1:], one)), out[1:], rtol=0, atol=1e-5)
    # The first-frame image changes the output; image_mask False equals no image.
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    with_img = run(model, (x, t, cond), image=image)
    assert (with_img - base).abs().max() > 1e-4
    masked = run(model, (x, t, cond), image=image, image_mask=torch.tensor([False, True]))
    torch.testing.assert_close(masked[0], base[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(masked[1], with_img[1], rtol=0, atol=1e-6)


def test_word_embedding_path():
    """word_embedding: the caption's bag of words (mean of its own token embeddings, zeros for "")
    reaches the output per frame; word order does not change the bag; the words are required."""
    model = tiny_model(word_embedding=True)
    ids, _ = model.text.tokenize(["a red circle moving left", "a red circle moving right", "", "left moving circle red a"])
    with torch.no_grad():
        bag = model.text.bag_of_words(ids)
        table = model.text.transformer.token_embedding.weight
        rows = [model.text.id_to_row[model.text.tokenizer.encode(w)[0]] for w in ["a", "red", "circle", "moving", "left"]]
        torch.testing.assert_close(bag[0], table[torch.stack(rows)].mean(0))
        assert torch.count_nonzero(bag[2]) == 0
        torch.testing.assert_close(bag[3], bag[0])
        cond = model.encode(ids[:2], 4)
        assert cond.words.shape == (2, model.cfg.text_width)
        emb = model.denoiser.word_emb(cond.words, 4)
        assert emb.shape == (2, 4, model.cfg.width)
        assert (emb[:, 0] - emb[:, 3]).abs().max() > 1e-4  # frame-dependent
        x, t = torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([900, 900])
        base = model(x, t, cond)
        swapped = dataclasses.replace(cond, words=cond.words.flip(0))  # only the bags trade places
        assert (model(x, t, swapped) - base).abs().max() > 1e-4
        with pytest.raises(ValueError, match="word_embedding"):
            model(x, t, dataclasses.replace(cond, words=None))
    with pytest.raises(ValueError, match="word_embedding"):
        tiny_model()(x, t, cond)  # a model without the path refuses words


def test_bad_sizes(model):
    x, t, cond = make_inputs(model, batch=1, frames=2)
    for h, w in ((20, 16), (16, 12), (15, 15)):
        with pytest.raises(ValueError, match="multiples of 8"):
            run(model, (torch.randn(1, 3, 2, h, w), t, cond))
    too_many = model.cfg.max_frames + 1
    with pytest.raises(ValueError, match="frames"):
        run(model, (torch.randn(1, 3, too_many, 16, 16), t, cond))


def test_non_square_and_batch_independence(model):
    x, t, cond = make_inputs(model, batch=2, frames=3)
    x = torch.randn(2, 3, 3, 16, 24)
    out = run(model, (x, t, cond))
    assert out.shape == x.shape
    torch.testing.assert_close(run(model, (x[:1], t[:1], cond.select(slice(0, 1)))), out[:1], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------ checkpoints
def test_config_json_round_trip(tmp_path):
    cfg = tiny_config(variant="joint", prediction_type="eps")
    save_json(cfg, tmp_path / "c.json")
    loaded = load_json(ModelConfig, tmp_path / "c.json")
    assert loaded == cfg and isinstance(loaded.vocabulary, tuple)
    with pytest.raises(ValueError, match="unknown config keys"):
        from_dict(ModelConfig, {**to_dict(cfg), "colour": 1})
    for bad in ({"variant": "diagonal"}, {"width": 36, "heads": 8}, {"width": 30, "heads": 2}, {"prediction_type": "score"}):
        with pytest.raises(ValueError):
            ModelConfig(**bad)
    with pytest.raises(ValueError, match="multiple of 4"):
        ModelConfig(width=30, heads=2)


def test_save_load_round_trip_identical(model, saved):
    assert (saved / CONFIG_NAME).is_file() and (saved / WEIGHTS_NAME).is_file()
    loaded = VideoModel.from_pretrained(saved)
    assert loaded.cfg == model.cfg and not loaded.training
    inp = make_inputs(model, batch=2, frames=3)
    # Encode with each model: the text and audio encoders are restored too.
    x, t, _ = inp
    ids, _ = model.text.tokenize(["a red circle", "a blue square moving up"])
    audio = 0.3 * torch.randn(2, 6000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = model(x, t, model.encode(ids, 3, audio))
        b = loaded(x, t, loaded.encode(ids, 3, audio))
    assert torch.equal(a, b)


def test_float16_checkpoint(model, tmp_path):
    path = model.save_pretrained(tmp_path / "half", dtype=torch.float16, metadata={"step": 7})
    with safe_open(str(path / WEIGHTS_NAME), "pt") as f:
        assert f.metadata() == {"step": "7"}
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    loaded = VideoModel.from_pretrained(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    inp = make_inputs(model, batch=2, frames=3)
    a = run(model, inp)
    b = run(loaded, inp)
    assert not torch.equal(a, b)  # really was rounded
    torch.testing.assert_close(b, a, rtol=0, atol=2e-2 * float(a.abs().max()))


def test_from_pretrained_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        VideoModel.from_pretrained(tmp_path / "nope")


def test_from_pretrained_refuses_pickles(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ValueError, match="pytorch_model.bin") as e:
        VideoModel.from_pretrained(tmp_path)
    assert "safetensors" in str(e.value)


def test_from_pretrained_missing_files(saved, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=WEIGHTS_NAME):
        VideoModel.from_pretrained(empty)
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    shutil.copy(saved / WEIGHTS_NAME, no_config / WEIGHTS_NAME)
    with pytest.raises(ValueError, match=CONFIG_NAME):
        VideoModel.from_pretrained(no_config)


def test_from_pretrained_truncated_weights(saved, tmp_path):
    bad = tmp_path / "truncated"
    shutil.copytree(saved, bad)
    data = (bad / WEIGHTS_NAME).read_bytes()
    for cut in (len(data) // 2, 20, 4):
        (bad / WEIGHTS_NAME).write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated"):
            VideoModel.from_pretrained(bad)


def test_from_pretrained_bad_config(saved, tmp_path):
    bad = tmp_path / "mismatch"
    shutil.copytree(saved, bad)
    cfg = json.loads((bad / CONFIG_NAME).read_text())
    (bad / CONFIG_NAME).write_text(json.dumps({**cfg, "width": 48}))
    with pytest.raises(ValueError, match="does not match"):
        VideoModel.from_pretrained(bad)
    (bad / CONFIG_NAME).write_text(json.dumps({**cfg, "depth": 2}))  # extra blocks: missing weights
    with pytest.raises(ValueError, match="missing"):
        VideoModel.from_pretrained(bad)
    (bad / CONFIG_NAME).write_text(json.dumps({**cfg, "colour": "red"}))
    with pytest.raises(ValueError, match="colour"):
        VideoModel.from_pretrained(bad)
    (bad / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=CONFIG_NAME):
        VideoModel.from_pretrained(bad)
