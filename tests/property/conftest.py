"""Hypothesis keeps its own files (constants read from our sources, unicode tables) under ``.hypothesis`` in
the working folder, from collection on; the property tests point it at a temporary folder when this file is
imported (before collection ends), since tests write only to temporary folders."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis import configuration

_HOME = tempfile.mkdtemp(prefix="paraclip-hypothesis-")
configuration.set_hypothesis_home_dir(_HOME)


@pytest.fixture(scope="session", autouse=True)
def _remove_hypothesis_files():
    yield
    shutil.rmtree(_HOME, ignore_errors=True)
