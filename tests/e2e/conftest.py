"""Fixtures for the end-to-end app tests: a tiny random checkpoint and the app launched on a free
localhost port. Nothing leaves the machine: the server binds 127.0.0.1 and analytics are off."""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # app.py lives at the repository root
    sys.path.insert(0, str(ROOT))

TINY_APP = dict(width=32, heads=2, depth=2, conv_channels=16, text_width=32, text_layers=1, text_heads=2,
                context_length=16, sample_size=32, num_frames=4, max_frames=8)


def save_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny random model (4 frames of 32x32, the shapes-world vocabulary) saved as a checkpoint."""
    from vidgen.checkpoint import VideoModel
    from vidgen.config import ModelConfig
    from vidgen.world import VOCABULARY

    torch.manual_seed(seed)
    model = VideoModel(ModelConfig(**TINY_APP, vocabulary=VOCABULARY))
    with torch.no_grad():  # zero-initialised output layers would make every step look the same
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(folder)
    (folder / "card.md").write_text("# tiny test model\nRandom weights, for tests only.\n")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched(checkpoint: Path, tmp: Path, **defaults):
    """build_demo(checkpoint) launched on 127.0.0.1:<free port> with the app's own serving options;
    yields (url, demo). Gradio's temp and example-cache dirs go to `tmp`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp / "gradio"))
        mp.setenv("GRADIO_EXAMPLES_CACHE", str(tmp / "examples"))
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        import app
        from vidgen.ui.engine import Defaults

        demo = app.build_demo(str(checkpoint), defaults=Defaults(**defaults))
        demo.queue(**app.QUEUE)
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                                quiet=True, **app.launch_options())
        try:
            yield url, demo
        finally:
            demo.close(verbose=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-ckpt"))


@pytest.fixture(scope="session")
def launch_app():
    """The `launched` context manager, for modules that need their own app instance."""
    return launched


@pytest.fixture(scope="module")
def app_server(tiny_checkpoint, tmp_path_factory):
    """(url, demo) of the app on the tiny checkpoint, 3 denoising steps by default."""
    with launched(tiny_checkpoint, tmp_path_factory.mktemp("app"), steps=3) as served:
        yield served


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each test's call report on the item, so fixtures can react to a failure (screenshots)."""
    outcome = yield
    if call.when == "call":
        item.rep_call = outcome.get_result()


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
