"""Fixtures for the evaluation tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Small score blocks run far faster on one thread than on two contended ones (CI has 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
