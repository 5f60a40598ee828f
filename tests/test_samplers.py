"""Samplers (DDIM, DDPM, DPM-Solver++(2M)) driven by oracle denoisers that know the answer."""

import pytest
import torch

from vidgen.samplers import SAMPLERS, StepInfo, get_sampler, sample
from vidgen.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule("cosine", 1000)
TIMESTEPS = SCHEDULE.timesteps(25)
# (sampler name, options): every sampler, plus stochastic DDIM.
CASES = [("ddim", {}), ("ddim", {"eta": 0.5}), ("ddim", {"eta": 1.0}), ("ddpm", {}), ("dpmpp", {})]
IDS = ["ddim", "ddim-eta0.5", "ddim-eta1", "ddpm", "dpmpp"]


def data(seed=0, shape=(2, 3, 4, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=g) * 2 - 1
    x_T = torch.randn(shape, generator=g)
    return x0, x_T


def gen(seed):
    return torch.Generator().manual_seed(seed)


def smooth_denoiser(x, t):
    """Depends on x_t, so the result depends on the path (and on injected noise)."""
    return torch.tanh(x)


def test_registry_and_unknown_name():
    assert set(SAMPLERS) == {"ddim", "ddpm", "dpmpp"}
    for name in SAMPLERS:
        assert get_sampler(name) is SAMPLERS[name]
    with pytest.raises(ValueError) as e:
        get_sampler("euler")
    assert all(name in str(e.value) for name in ("euler", "ddim", "ddpm", "dpmpp"))
    x0, x_T = data()
    with pytest.raises(ValueError, match="ddim"):
        sample("euler", lambda x, t: x0, x_T, TIMESTEPS, schedule=SCHEDULE)


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_oracle_denoiser_recovers_data(name, opts):
    x0, x_T = data()
    out = sample(name, lambda x, t: x0, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(0), **opts)
    assert out.shape == x0.shape and out.dtype == x0.dtype
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_slightly_wrong_v_oracle_stays_bounded(name, opts):
    """An oracle in v space plus 1% noise: no blow-up at the noisiest step, no clamping needed."""
    x0, x_T = data(seed=3)
    noise_gen = gen(123)

    def denoise(x_t, t):
        alpha, sigma = SCHEDULE.alpha_sigma(t, x_t)
        eps = (x_t - alpha * x0) / sigma
        v = alpha * eps - sigma * x0
        v_noisy = v + 0.01 * torch.randn(v.shape, generator=noise_gen)
        return SCHEDULE.to_x0(v_noisy, x_t, t, "v")

    infos: list[StepInfo] = []
    out = sample(name, denoise, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(0), callback=infos.append, **opts)
    assert len(infos) == len(TIMESTEPS)
    assert (infos[0].x0_pred - x0).abs().max() < 0.1  # close from the very first step (t = 999)
    for info in infos:
        assert torch.isfinite(info.x_prev).all()
        assert info.x_prev.abs().max() <= 5.0
        assert (info.x0_pred - x0).abs().max() < 0.1
    assert (out - x0).abs().max() < 0.1


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_gaussian_data_exact_denoiser_converges(name, opts):
    """Data N(0, s^2) has the closed-form posterior mean E[x0 | x_t] = alpha s^2 / (alpha^2 s^2 + sigma^2) x_t.
    Every sampler's output std approaches s as the number of steps grows."""
    s = 0.5

    def denoise(x, t):
        ab = float(SCHEDULE.alpha_bar(t))
        return ab**0.5 * s * s / (ab * s * s + 1 - ab) * x

    errors = []
    for n in (10, 100):
        x_T = torch.randn(20000, generator=gen(0), dtype=torch.float64)
        out = sample(name, denoise, x_T, SCHEDULE.timesteps(n), schedule=SCHEDULE, generator=gen(1), **opts)
        assert abs(float(out.mean())) < 0.02
        errors.append(abs(float(out.std()) - s))
    assert errors[1] < errors[0]
    assert errors[1] < 0.05 * s


def test_ddim_eta1_equals_ddpm():
    """With eta = 1, DDIM's injected noise is DDPM's posterior variance: same draws, same samples."""
    x_T = data()[1]
    a = sample("ddim", smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(5), eta=1.0)
    b = sample("ddpm", smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(5))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name,opts", [("ddim", {}), ("dpmpp", {})], ids=["ddim-eta0", "dpmpp"])
def test_deterministic_samplers_ignore_generator(name, opts):
    x_T = data()[1]
    a = sample(name, smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(1), **opts)
    b = sample(name, smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(2), **opts)
    c = sample(name, smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=None, **opts)
    assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize("name,opts", [("ddim", {"eta": 0.5}), ("ddim", {"eta": 1.0}), ("ddpm", {})],
                         ids=["ddim-eta0.5", "ddim-eta1", "ddpm"])
def test_stochastic_samplers_depend_on_seed(name, opts):
    x_T = data()[1]
    a = sample(name, smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(1), **opts)
    b = sample(name, smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(2), **opts)
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_same_seed_same_output(name, opts):
    x_T = data()[1]
    a = sample(name, smooth_denoiser, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(7), **opts)
    b = sample(name, smooth_denoiser, x_T.clone(), TIMESTEPS, schedule=SCHEDULE, generator=gen(7), **opts)
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_callback_once_per_step_with_that_steps_prediction(name, opts):
    x_T = data()[1]
    calls = []  # (x_t seen, t, x0_pred returned)

    def denoise(x, t):
        out = torch.tanh(x) * 0.9
        calls.append((x, t, out))
        return out

    infos: list[StepInfo] = []
    out = sample(name, denoise, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(0), callback=infos.append, **opts)
    n = len(TIMESTEPS)
    assert len(infos) == len(calls) == n
    for i, info in enumerate(infos):
        assert info.step == i and info.num_steps == n
        assert info.t == TIMESTEPS[i] == calls[i][1]
        assert info.t_prev == (TIMESTEPS[i + 1] if i + 1 < n else -1)
        assert torch.equal(info.x0_pred, calls[i][2])
        assert torch.equal(info.x_t, calls[i][0])
        if i + 1 < n:
            assert torch.equal(info.x_prev, infos[i + 1].x_t)
    assert torch.equal(infos[0].x_t, x_T)
    assert torch.equal(out, infos[-1].x_prev)
    # The last step lands on clean data, where every sampler returns x0_pred itself.
    torch.testing.assert_close(out, infos[-1].x0_pred, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_closing_the_step_generator_stops_denoising(name):
    x_T = data()[1]
    count = 0

    def denoise(x, t):
        nonlocal count
        count += 1
        return torch.tanh(x)

    steps = get_sampler(name)(denoise, x_T, TIMESTEPS, schedule=SCHEDULE, generator=gen(0))
    assert count == 0  # lazy: nothing runs before the first step is asked for
    for i, info in enumerate(steps):
        if i == 2:
            break
    steps.close()
    assert count == 3
    with pytest.raises(StopIteration):
        next(steps)
    assert count == 3


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_bad_timesteps(name):
    x_T = data()[1]
    fn = get_sampler(name)
    for bad in ([], [10, 10, 5], [5, 10]):
        with pytest.raises(ValueError):
            next(fn(smooth_denoiser, x_T, bad, schedule=SCHEDULE))


def test_single_step_returns_x0_pred():
    x0, x_T = data()
    for name in SAMPLERS:
        out = sample(name, lambda x, t: x0, x_T, [999], schedule=SCHEDULE, generator=gen(0))
        torch.testing.assert_close(out, x0, rtol=0, atol=1e-5)
