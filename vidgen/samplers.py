"""Samplers: DDPM (ancestral), DDIM (with eta) and DPM-Solver++(2M).

Each sampler is a small generator over denoising steps with one signature (k-diffusion style):

    ddim_steps(denoise, x_T, timesteps, *, schedule, generator=None, **options) -> Iterator[StepInfo]

`denoise(x_t, t) -> x0_pred` is any function: the caller folds classifier-free guidance and the
model's prediction type into it, so samplers never see a model. The generator form lets a caller
stream every step and cancel by closing it; `sample(...)` runs one to the end with a callback.
Every sampler ends at clean data (t = -1), where its last update returns x0_pred itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence

import torch

from .schedules import NoiseSchedule

Denoiser = Callable[[torch.Tensor, int], torch.Tensor]


@dataclasses.dataclass
class StepInfo:
    """One denoising step: `x_t` is the input at timestep `t`, `x_prev` the sample after the step
    (at `t_prev`, where -1 means clean data), `x0_pred` the denoiser's estimate of clean data."""

    step: int
    num_steps: int
    t: int
    t_prev: int
    x_t: torch.Tensor
    x0_pred: torch.Tensor
    x_prev: torch.Tensor


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _coeffs(schedule: NoiseSchedule, t: int) -> tuple[float, float]:
    """(alpha_t, sigma_t) as floats (float64 math, so no precision is lost near t = 0)."""
    ab = float(schedule.alpha_bar(t))
    return math.sqrt(ab), math.sqrt(1.0 - ab)


def _pairs(timesteps: Sequence[int]) -> list[tuple[int, int]]:
    ts = [int(t) for t in timesteps]
    if not ts:
        raise ValueError("timesteps is empty")
    if any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError("timesteps must be strictly decreasing")
    return list(zip(ts, ts[1:] + [-1]))


def ddim_steps(
    denoise: Denoiser,
    x_T: torch.Tensor,
    timesteps: Sequence[int],
    *,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
) -> Iterator[StepInfo]:
    """DDIM (Song et al., 2021). eta = 0 is deterministic; eta = 1 matches DDPM's posterior variance."""
    pairs = _pairs(timesteps)
    x = x_T
    for i, (t, s) in enumerate(pairs):
        x0 = denoise(x, t)
        a_t, sig_t = _coeffs(schedule, t)
        a_s, sig_s = _coeffs(schedule, s)
        eps = (x - a_t * x0) / sig_t
        # sigma of the injected noise; zero at the last step because sig_s = 0 there.
        noise_std = eta * (sig_s / sig_t) * math.sqrt(max(0.0, 1 - (a_t / a_s) ** 2))
        x_prev = a_s * x0 + math.sqrt(max(0.0, sig_s**2 - noise_std**2)) * eps
        if noise_std > 0:
            x_prev = x_prev + noise_std * _randn_like(x, generator)
        yield StepInfo(i, len(pairs), t, s, x, x0, x_prev)
        x = x_prev


def ddpm_steps(
    denoise: Denoiser,
    x_T: torch.Tensor,
    timesteps: Sequence[int],
    *,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> Iterator[StepInfo]:
    """Ancestral sampling from the true posterior q(x_s | x_t, x0_pred) between consecutive
    timesteps t > s (Ho et al., 2020; with skipped steps the posterior uses alpha_bar_t / alpha_bar_s)."""
    pairs = _pairs(timesteps)
    x = x_T
    for i, (t, s) in enumerate(pairs):
        x0 = denoise(x, t)
        ab_t = float(schedule.alpha_bar(t))
        ab_s = float(schedule.alpha_bar(s))
        beta = 1 - ab_t / ab_s  # beta_{t|s}
        mean = (math.sqrt(ab_s) * beta / (1 - ab_t)) * x0 + (math.sqrt(ab_t / ab_s) * (1 - ab_s) / (1 - ab_t)) * x
        var = beta * (1 - ab_s) / (1 - ab_t)
        x_prev = mean + math.sqrt(var) * _randn_like(x, generator) if var > 0 else mean
        yield StepInfo(i, len(pairs), t, s, x, x0, x_prev)
        x = x_prev


def dpmpp_2m_steps(
    denoise: Denoiser,
    x_T: torch.Tensor,
    timesteps: Sequence[int],
    *,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> Iterator[StepInfo]:
    """DPM-Solver++(2M) (Lu et al., 2022): a deterministic second-order multistep solver in
    log-SNR time, using x0 predictions. First and last steps are first order (the last lands on
    sigma = 0, where the update reduces to x0_pred). `generator` is unused; kept for the signature."""
    del generator
    pairs = _pairs(timesteps)
    x = x_T
    x0_last, h_last = None, None
    for i, (t, s) in enumerate(pairs):
        x0 = denoise(x, t)
        a_t, sig_t = _coeffs(schedule, t)
        a_s, sig_s = _coeffs(schedule, s)
        # exp(-h) with h = lambda_s - lambda_t, lambda = log(alpha / sigma); written as a ratio so
        # the last step (sigma_s = 0, h = inf) gives exactly 0.
        exp_neg_h = (sig_s / a_s) * (a_t / sig_t)
        d = x0
        if x0_last is not None and sig_s > 0:
            h = math.log(a_s / sig_s) - math.log(a_t / sig_t)
            r = h_last / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_last
        x_prev = (sig_s / sig_t) * x - a_s * (exp_neg_h - 1) * d
        yield StepInfo(i, len(pairs), t, s, x, x0, x_prev)
        if sig_s > 0:
            h_last = math.log(a_s / sig_s) - math.log(a_t / sig_t)
        x0_last, x = x0, x_prev


SAMPLERS: dict[str, Callable[..., Iterator[StepInfo]]] = {
    "ddim": ddim_steps,
    "ddpm": ddpm_steps,
    "dpmpp": dpmpp_2m_steps,
}


# Names that run a registered sampler with settings the caller takes from the checkpoint, kept out
# of SAMPLERS because they only apply to some checkpoints: "fast" is DDIM on a distilled model's own
# step grid (ModelConfig.distilled_steps, unguided; see vidgen.distill and VideoPipeline.settings).
ALIASES: dict[str, str] = {"fast": "ddim"}


def get_sampler(name: str) -> Callable[..., Iterator[StepInfo]]:
    """The step generator for a sampler name (or an alias); ValueError listing the known names otherwise."""
    try:
        return SAMPLERS[ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)} "
                         f"(or {', '.join(map(repr, ALIASES))} for a distilled checkpoint)") from None


def sample(
    sampler: str | Callable[..., Iterator[StepInfo]],
    denoise: Denoiser,
    x_T: torch.Tensor,
    timesteps: Sequence[int],
    *,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    **options,
) -> torch.Tensor:
    """Run a sampler to the end and return x_0; `callback(StepInfo)` fires once per step."""
    steps_fn = get_sampler(sampler) if isinstance(sampler, str) else sampler
    x = x_T
    for info in steps_fn(denoise, x_T, timesteps, schedule=schedule, generator=generator, **options):
        if callback is not None:
            callback(info)
        x = info.x_prev
    return x


def sample_ddim(denoise, x_T, timesteps, *, schedule, generator=None, callback=None, eta: float = 0.0):
    """DDIM to the end; see `ddim_steps`."""
    return sample(ddim_steps, denoise, x_T, timesteps, schedule=schedule, generator=generator, callback=callback, eta=eta)


def sample_ddpm(denoise, x_T, timesteps, *, schedule, generator=None, callback=None):
    """Ancestral DDPM to the end; see `ddpm_steps`."""
    return sample(ddpm_steps, denoise, x_T, timesteps, schedule=schedule, generator=generator, callback=callback)


def sample_dpmpp_2m(denoise, x_T, timesteps, *, schedule, generator=None, callback=None):
    """DPM-Solver++(2M) to the end; see `dpmpp_2m_steps`."""
    return sample(dpmpp_2m_steps, denoise, x_T, timesteps, schedule=schedule, generator=generator, callback=callback)
