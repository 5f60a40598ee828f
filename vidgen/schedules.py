"""Noise schedules and conversions between the three ways a denoiser can parametrize its output.

Forward process: x_t = alpha_t * x0 + sigma_t * eps, with alpha_t = sqrt(alpha_bar_t) and
sigma_t = sqrt(1 - alpha_bar_t). Discrete timesteps t = 0 .. T-1; t = -1 stands for clean data
(alpha_bar = 1), which is where every sampler ends.

v-prediction (Salimans & Ho, 2022): v = alpha_t * eps - sigma_t * x0. Recovering x0 from v,
x0 = alpha_t * x_t - sigma_t * v, never divides by alpha_t, so it stays bounded at the noisiest
step, where the cosine schedule's alpha_bar is ~2.4e-9 (t = 999, after the beta clip; ~2.4e-6 at
t = 998): eps-prediction divides by alpha_t there and amplifies errors ~20,000x (~640x at t = 998).
"""

from __future__ import annotations

import math

import torch

PREDICTION_TYPES = ("v", "eps", "x0")


def cosine_alphas_cumprod(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021): alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) * pi/2).

    Returns alpha_bar for t = 0 .. T-1 (float64, (T,)); betas are clipped at `max_beta` so the last
    step is not exactly pure noise.
    """
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64)
    f = torch.cos(((steps / num_timesteps + s) / (1 + s)) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


def linear_alphas_cumprod(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. (2020): betas linear in t; alpha_bar = prod(1 - beta). (T,) float64."""
    betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def shift_snr(alphas_cumprod: torch.Tensor, snr_shift: float) -> torch.Tensor:
    """alpha_bar of the schedule whose signal-to-noise ratio is `snr_shift` times the given one:
    snr' = s * snr, i.e. alpha_bar' = s * ab / (s * ab + 1 - ab).

    Hoogeboom et al. (2023, "simple diffusion"): a schedule tuned for small images leaves a large
    video almost readable at high noise, since averaging over many pixels and frames beats the
    noise. The model then reads colour and shape off x_t and never learns to take them from the
    prompt. s < 1 (e.g. (32 / 64)^2 per doubling of resolution) moves those timesteps to lower SNR."""
    if not (math.isfinite(snr_shift) and snr_shift > 0):
        raise ValueError(f"snr_shift must be a positive number, got {snr_shift!r}")
    if snr_shift == 1.0:
        return alphas_cumprod
    return snr_shift * alphas_cumprod / (snr_shift * alphas_cumprod + 1 - alphas_cumprod)


class NoiseSchedule:
    """A discrete schedule: alpha_bar for t in [0, T), plus add_noise and prediction conversions."""

    def __init__(self, kind: str = "cosine", num_timesteps: int = 1000, snr_shift: float = 1.0) -> None:
        if kind == "cosine":
            alphas_cumprod = cosine_alphas_cumprod(num_timesteps)
        elif kind == "linear":
            alphas_cumprod = linear_alphas_cumprod(num_timesteps)
        else:
            raise ValueError(f"unknown schedule {kind!r}; expected 'cosine' or 'linear'")
        self.kind = kind
        self.num_timesteps = num_timesteps
        self.snr_shift = snr_shift
        self.alphas_cumprod = shift_snr(alphas_cumprod, snr_shift)  # (T,) float64

    def alpha_bar(self, t: int | torch.Tensor) -> torch.Tensor:
        """alpha_bar at integer timesteps (any shape); t < 0 means clean data (alpha_bar = 1)."""
        t = torch.as_tensor(t, dtype=torch.long).cpu()  # the table lives on the CPU; t may be on a GPU
        table = torch.cat([self.alphas_cumprod, torch.ones(1, dtype=torch.float64)])
        return table[torch.where(t < 0, torch.full_like(t, self.num_timesteps), t)]

    def alpha_sigma(self, t: int | torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t) shaped to broadcast against `like` ((B, ...) with t of shape (B,) or scalar)."""
        ab = self.alpha_bar(t).to(device=like.device)
        if ab.dim() == 1:  # one t per batch element
            ab = ab.view(-1, *([1] * (like.dim() - 1)))
        return ab.sqrt().to(like.dtype), (1 - ab).sqrt().to(like.dtype)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """q(x_t | x0): alpha_t * x0 + sigma_t * noise."""
        alpha, sigma = self.alpha_sigma(t, x0)
        return alpha * x0 + sigma * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: int | torch.Tensor, prediction_type: str) -> torch.Tensor:
        """The regression target for a model that predicts `prediction_type`."""
        if prediction_type == "eps":
            return noise
        if prediction_type == "x0":
            return x0
        if prediction_type == "v":
            alpha, sigma = self.alpha_sigma(t, x0)
            return alpha * noise - sigma * x0
        raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")

    def to_x0(self, output: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor, prediction_type: str) -> torch.Tensor:
        """Turn a model output of `prediction_type` into x0_pred."""
        alpha, sigma = self.alpha_sigma(t, x_t)
        if prediction_type == "v":
            return alpha * x_t - sigma * output
        if prediction_type == "eps":
            return (x_t - sigma * output) / alpha
        if prediction_type == "x0":
            return output
        raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")

    def to_eps(self, output: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor, prediction_type: str) -> torch.Tensor:
        """Turn a model output of `prediction_type` into eps_pred."""
        alpha, sigma = self.alpha_sigma(t, x_t)
        if prediction_type == "v":
            return sigma * x_t + alpha * output
        if prediction_type == "eps":
            return output
        if prediction_type == "x0":
            return (x_t - alpha * output) / sigma
        raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")

    def convert(
        self, output: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor, from_type: str, to_type: str
    ) -> torch.Tensor:
        """Convert a prediction between the eps / x0 / v parametrizations."""
        if from_type == to_type:
            return output
        x0 = self.to_x0(output, x_t, t, from_type)
        eps = self.to_eps(output, x_t, t, from_type)
        if to_type == "x0":
            return x0
        if to_type == "eps":
            return eps
        return self.target(x0, eps, t, to_type)

    def timesteps(self, num_inference_steps: int) -> list[int]:
        """Evenly spaced inference timesteps, from T-1 down ("trailing" spacing, so the first step sees
        pure noise and the last lands near t = 0)."""
        if not 1 <= num_inference_steps <= self.num_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {self.num_timesteps}], got {num_inference_steps}")
        stride = self.num_timesteps / num_inference_steps
        # e.g. T=1000, 25 steps: 999, 959, ..., 39; the last step then goes from 39 to clean data (t = -1).
        return [int(round(self.num_timesteps - i * stride)) - 1 for i in range(num_inference_steps)]
