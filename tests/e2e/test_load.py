"""A short load test (5 concurrent clients x 2 generations) through gradio_client: every request
completes or gets gradio's clear "Queue is full" error; nothing else goes wrong.
The full run is benchmarks/load_test.py."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from load_test import run_load  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow, *[pytest.mark.filterwarnings(f) for f in (
    "ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated",
    "ignore:Examples will be cached but not all input components")]]


def test_concurrent_clients_get_results_or_queue_full(app_server, tmp_path):
    t0 = time.perf_counter()
    res = run_load(app_server[0], clients=5, requests=2, steps=2, timeout=50, download_dir=str(tmp_path))
    elapsed = time.perf_counter() - t0
    assert res["errors"] == 0, res["error_messages"]
    assert res["ok"] + res["queue_full"] == 10
    assert res["ok"] == 10, "5 clients never exceed the queue's max_size of 16"
    assert elapsed < 60, f"took {elapsed:.1f} s"
