"""Noise schedules against their closed forms, the forward process and prediction conversions."""

import itertools
import math

import numpy as np
import pytest
import torch

from vidgen.schedules import PREDICTION_TYPES, NoiseSchedule, cosine_alphas_cumprod, linear_alphas_cumprod

T = 1000


def f_cos(t, s=0.008):
    return math.cos(((t / T + s) / (1 + s)) * math.pi / 2) ** 2


def test_cosine_matches_closed_form_away_from_clip():
    ab = cosine_alphas_cumprod(T)
    assert ab.shape == (T,) and ab.dtype == torch.float64
    # alpha_bar(t) = f(t + 1) / f(0) wherever no beta was clipped (the clip only bites at the very end).
    want = np.array([f_cos(t + 1) / f_cos(0) for t in range(T)])
    np.testing.assert_allclose(ab[: T - 1].numpy(), want[: T - 1], rtol=1e-10, atol=1e-14)
    # The last beta is clipped at 0.999: the schedule never reaches exactly pure noise.
    assert want[-1] < 1e-30 and ab[-1] > 0
    assert ab[-1] / ab[-2] == pytest.approx(1 - 0.999)


def test_linear_matches_closed_form():
    ab = linear_alphas_cumprod(T)
    want = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    np.testing.assert_allclose(ab.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_alpha_bar_monotone_and_clean_at_minus_one(kind):
    sch = NoiseSchedule(kind, T)
    ab = sch.alpha_bar(torch.arange(T))
    assert torch.all(ab[1:] < ab[:-1]), "alpha_bar must be strictly decreasing"
    assert torch.all((ab > 0) & (ab < 1))
    assert float(sch.alpha_bar(-1)) == 1.0
    mixed = sch.alpha_bar(torch.tensor([-1, 0, T - 1]))
    assert mixed[0] == 1.0 and mixed[1] == ab[0] and mixed[2] == ab[-1]
    assert ab[0] > 0.999  # t = 0 is nearly clean


def test_unknown_kind_and_prediction_type():
    with pytest.raises(ValueError, match="cosine"):
        NoiseSchedule("quadratic")
    sch = NoiseSchedule()
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError):
        sch.to_x0(x, x, 10, "score")
    with pytest.raises(ValueError):
        sch.to_eps(x, x, 10, "score")
    with pytest.raises(ValueError):
        sch.target(x, x, 10, "score")


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_add_noise_and_targets(kind):
    sch = NoiseSchedule(kind, T)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 2, 4, generator=g, dtype=torch.float64)
    noise = torch.randn(3, 2, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 400, 999])
    ab = sch.alphas_cumprod[t].view(3, 1, 1)
    a, s = ab.sqrt(), (1 - ab).sqrt()
    torch.testing.assert_close(sch.add_noise(x0, noise, t), a * x0 + s * noise, rtol=0, atol=1e-12)
    torch.testing.assert_close(sch.target(x0, noise, t, "v"), a * noise - s * x0, rtol=0, atol=1e-12)
    assert torch.equal(sch.target(x0, noise, t, "eps"), noise)
    assert torch.equal(sch.target(x0, noise, t, "x0"), x0)
    # A scalar t broadcasts over the batch; t = -1 is clean data.
    torch.testing.assert_close(sch.add_noise(x0, noise, 400), sch.add_noise(x0, noise, torch.full((3,), 400)))
    assert torch.equal(sch.add_noise(x0, noise, -1), x0)
    # float32 inputs stay float32.
    assert sch.add_noise(x0.float(), noise.float(), t).dtype == torch.float32


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_prediction_conversions_every_pair(kind):
    sch = NoiseSchedule(kind, T)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 3, 5, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([10, 250, 500, 900])  # mid-range: eps -> x0 is intentionally unstable at t = 999
    x_t = sch.add_noise(x0, eps, t)
    truth = {"x0": x0, "eps": eps, "v": sch.target(x0, eps, t, "v")}
    for a, b in itertools.product(PREDICTION_TYPES, repeat=2):
        got = sch.convert(truth[a], x_t, t, a, b)
        torch.testing.assert_close(got, truth[b], rtol=0, atol=1e-5, msg=f"{a} -> {b}")
        back = sch.convert(got, x_t, t, b, a)
        torch.testing.assert_close(back, truth[a], rtol=0, atol=1e-5, msg=f"{a} -> {b} -> {a}")
    for p in PREDICTION_TYPES:
        torch.testing.assert_close(sch.to_x0(truth[p], x_t, t, p), x0, rtol=0, atol=1e-5)
        torch.testing.assert_close(sch.to_eps(truth[p], x_t, t, p), eps, rtol=0, atol=1e-5)


def test_v_prediction_stays_bounded_at_the_noisiest_step():
    """The reason v is the default: recovering x0 from v never divides by alpha_t."""
    sch = NoiseSchedule("cosine", T)
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(1000, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(1000, generator=g, dtype=torch.float64)
    t = T - 1
    x_t = sch.add_noise(x0, eps, t)
    err = 0.01 * torch.randn(1000, generator=g, dtype=torch.float64)
    v_err = (sch.to_x0(sch.target(x0, eps, t, "v") + err, x_t, t, "v") - x0).abs().max()
    eps_err = (sch.to_x0(eps + err, x_t, t, "eps") - x0).abs().max()
    assert v_err <= err.abs().max() + 1e-12
    assert eps_err > 100 * v_err
    # The amplification is 1 / alpha_t: ~20,000x at t = 999 on the cosine schedule.
    assert 1 / float(sch.alpha_bar(t)) ** 0.5 == pytest.approx(20291, rel=1e-3)


def test_timesteps():
    sch = NoiseSchedule("cosine", T)
    ts = sch.timesteps(25)
    assert len(ts) == 25 and ts[0] == 999 and ts[-1] >= 0
    assert all(isinstance(t, int) for t in ts)
    assert all(a > b for a, b in zip(ts, ts[1:]))
    assert ts[:3] == [999, 959, 919] and ts[-1] == 39
    assert sch.timesteps(1) == [999]
    assert sch.timesteps(T) == list(range(T - 1, -1, -1))
    for n in (2, 3, 7, 50, 333, 999):
        ts = sch.timesteps(n)
        assert len(ts) == n and ts[0] == T - 1 and all(a > b for a, b in zip(ts, ts[1:])) and ts[-1] >= 0
    for bad in (0, -1, T + 1):
        with pytest.raises(ValueError):
            sch.timesteps(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_timesteps_on_the_gpu():
    sch = NoiseSchedule("cosine", T)
    x0 = torch.randn(2, 3, device="cuda")
    t = torch.tensor([5, 900], device="cuda")
    out = sch.add_noise(x0, torch.randn_like(x0), t)
    assert out.device.type == "cuda"
    assert sch.to_x0(sch.target(x0, x0, t, "v"), out, t, "v").device.type == "cuda"


@pytest.mark.parametrize("s", [1 / 9, 0.25, 4.0])
def test_snr_shift_multiplies_the_signal_to_noise_ratio(s):
    base, shifted = NoiseSchedule("cosine", 1000), NoiseSchedule("cosine", 1000, snr_shift=s)
    t = torch.arange(0, 999, 37)
    snr = lambda sch: sch.alpha_bar(t) / (1 - sch.alpha_bar(t))  # noqa: E731
    torch.testing.assert_close(snr(shifted), s * snr(base), rtol=1e-9, atol=0)
    assert float(shifted.alpha_bar(-1)) == 1.0  # clean data stays clean
    assert torch.all(shifted.alphas_cumprod[1:] < shifted.alphas_cumprod[:-1])


def test_snr_shift_of_one_is_the_plain_schedule_and_bad_shifts_are_refused():
    torch.testing.assert_close(NoiseSchedule(snr_shift=1.0).alphas_cumprod, NoiseSchedule().alphas_cumprod, rtol=0, atol=0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="snr_shift must be a positive number"):
            NoiseSchedule(snr_shift=bad)
