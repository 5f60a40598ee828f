"""Serving hardening, against the real app on a free localhost port: no arbitrary file reads, no
monitoring dashboard, safe launch options, a gradio with the relevant fixes. (That a bad input still
reaches the client as a gr.Error with its sentence under show_error=False is covered by
test_app_client.py::test_bad_input_gives_a_clear_message.)"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest


pytestmark = [pytest.mark.e2e, *[pytest.mark.filterwarnings(f) for f in (
    "ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated",
    "ignore:Examples will be cached but not all input components")]]

APP_PY = Path(__file__).resolve().parents[2] / "app.py"
APP_TEXT = APP_PY.read_text()[:200]  # the module docstring and imports: unmistakable if leaked


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(1 << 20)
    except urllib.error.HTTPError as err:
        return err.code, err.read(1 << 20)


@pytest.mark.parametrize("path", [
    "/file=/etc/passwd", "/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd",
    "/gradio_api/file=..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/gradio_api/file=%2Fetc%2Fpasswd",
    f"/file={APP_PY}", f"/gradio_api/file={APP_PY}", "/gradio_api/file=app.py",
    "/gradio_api/file=../app.py",
])
def test_arbitrary_file_paths_are_refused(app_server, path):
    status, body = _get(app_server[0].rstrip("/") + path)
    text = body.decode("utf-8", "replace")
    assert "root:" not in text and APP_TEXT not in text, f"{path} leaked a file"
    assert status != 200, f"{path} answered 200"


def test_monitoring_dashboard_is_not_served(app_server):
    status, _ = _get(app_server[0].rstrip("/") + "/gradio_api/monitoring/summary")
    assert status != 200


def test_launch_options_are_safe():
    import app

    opts = app.launch_options()
    assert opts.get("max_file_size")
    assert opts.get("show_error") is False
    assert opts.get("enable_monitoring") is False
    assert not opts.get("allowed_paths")


def test_gradio_is_recent_enough():
    import gradio
    from packaging.version import Version

    assert Version(gradio.__version__) >= Version("6.31")
