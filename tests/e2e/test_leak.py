"""A short leak check: 20 sequential generations; the serving process's RSS grows < 5% after the
first 10, and gradio's temp dir stays bounded. The longer run is benchmarks/leak_test.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from leak_test import run_leak  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow, *[pytest.mark.filterwarnings(f) for f in (
    "ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated",
    "ignore:Examples will be cached but not all input components")]]


def test_no_leak_over_20_generations(tiny_checkpoint, launch_app, tmp_path):
    with launch_app(tiny_checkpoint, tmp_path, steps=2) as (url, _demo):
        res = run_leak(url, tmp_path / "gradio", runs=20, warmup=10, steps=2, download_dir=str(tmp_path / "dl"))
    assert res["rss_growth_pct"] < 5, res
    assert res["temp_end_mb"] < 50, res  # tiny videos: a few KB each
