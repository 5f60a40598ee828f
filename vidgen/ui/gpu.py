"""Optional Hugging Face ZeroGPU support, without depending on the `spaces` package.

On a ZeroGPU Space, `spaces.GPU(duration=...)` borrows a GPU for the decorated function; off
ZeroGPU (or when `spaces` is not installed) `on_gpu` returns the function unchanged. Import this
module before anything initialises CUDA (`spaces` refuses to load after that).
"""

from __future__ import annotations

import os
from collections.abc import Callable

try:  # present on Hugging Face Spaces; a no-op decorator elsewhere
    import spaces  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    spaces = None

# Seconds of GPU time per (frame x step) for the default 64x64 model with guidance, plus fixed
# overhead (model warm-up, encoding, previews). Deliberately generous: exceeding the requested
# duration aborts the run, and a request is refused only if it exceeds the visitor's quota.
SECONDS_PER_FRAME_STEP = 0.02
OVERHEAD_SECONDS = 10.0
MIN_SECONDS, MAX_SECONDS = 15, 120


def zero_gpu() -> bool:
    """True on a ZeroGPU Space (the `spaces` package is there and SPACES_ZERO_GPU is set)."""
    return spaces is not None and os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def estimate_seconds(num_frames: int, num_steps: int) -> int:
    """GPU seconds to request for one generation of `num_frames` x `num_steps`."""
    seconds = OVERHEAD_SECONDS + SECONDS_PER_FRAME_STEP * max(1, num_frames) * max(1, num_steps)
    return int(min(MAX_SECONDS, max(MIN_SECONDS, round(seconds))))


def on_gpu(duration: Callable[..., int] | int) -> Callable[[Callable], Callable]:
    """`spaces.GPU(duration=duration)` when `spaces` is importable, else the identity decorator.
    `duration` may be a function of the decorated function's arguments."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)
