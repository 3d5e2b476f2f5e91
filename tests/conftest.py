"""Shared fixtures. Everything runs offline on CPU; ../shared is optional (tests skip without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Offline, deterministic, and never touching the user's real cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("PARACLIP_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PARACLIP_CACHE", str(tmp_path_factory.getbasetemp() / "paraclip-cache"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared not present at {SHARED_DIR} (only the project's CI and dev machines have it)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def sts_dir(shared_dir) -> Path:
    path = shared_dir / "data" / "sts"
    if not path.is_dir():
        pytest.skip(f"STS data not present at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_encoder():
    """A random-init open_clip model from the project's tiny config (builds in about a second)."""
    import torch

    from paraclip.models import load_encoder

    torch.manual_seed(0)
    return load_encoder("paraclip-tiny", device="cpu")
