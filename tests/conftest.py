"""Fixtures for the core tests; the helpers themselves live in support.py."""

from __future__ import annotations

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
