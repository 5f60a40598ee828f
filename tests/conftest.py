"""Fixtures for the core tests; the helpers themselves live in support.py."""

from __future__ import annotations

import socket

import huggingface_hub.constants
import pytest

from support import make_inputs, randomize, tiny_config


@pytest.fixture
def tiny_cfg():
    return tiny_config()


@pytest.fixture(name="tiny_config")
def tiny_config_fixture():
    """The factory itself, so a test can ask for variants: `tiny_config(variant="joint")`."""
    return tiny_config


@pytest.fixture(name="randomize")
def randomize_fixture():
    return randomize


@pytest.fixture(name="make_inputs")
def make_inputs_fixture():
    return make_inputs


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network: offline Hub, an empty private cache, sockets that refuse to connect, and the
    pipeline cache cleared around the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from vidgen.pipeline import VideoPipeline

    VideoPipeline.clear_cache()
    yield tmp_path / "hub"
    VideoPipeline.clear_cache()
