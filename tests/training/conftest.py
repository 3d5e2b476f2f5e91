"""Fixtures for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_world


@pytest.fixture
def world(tmp_path) -> dict[str, Path]:
    return make_world(tmp_path / "world")
