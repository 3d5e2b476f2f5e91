"""Shared fixtures. Everything runs offline on CPU; ../shared is optional (tests skip without it).

Tests never write into the user's real caches: before any test module or fixture (session-scoped
ones included) runs, HOME, XDG_CACHE_HOME and PARACLIP_CACHE point into a temporary folder, and
PARACLIP_APP_DIR is unset. At the end of the session :func:`leaked_cache_files` lists anything
that was written under that temporary HOME's ``.cache/paraclip`` — code that ignored
PARACLIP_CACHE and fell back to ``~/.cache/paraclip`` — and the session fails if there is any.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Offline and deterministic.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("PARACLIP_SHARED", REPO_ROOT.parent / "shared"))

# Set at import, so session- and module-scoped fixtures (which run before any function-scoped
# fixture) are isolated too; subprocesses inherit it.
SESSION_ROOT = Path(tempfile.mkdtemp(prefix="paraclip-tests-"))
TEST_HOME = SESSION_ROOT / "home"
TEST_CACHE = SESSION_ROOT / "paraclip-cache"
TEST_HOME.mkdir()
os.environ["HOME"] = str(TEST_HOME)
os.environ["XDG_CACHE_HOME"] = str(TEST_HOME / ".cache")
os.environ["PARACLIP_CACHE"] = str(TEST_CACHE)
os.environ.pop("PARACLIP_APP_DIR", None)


def leaked_cache_files(home: Path) -> list[Path]:
    """Files written under ``home/.cache/paraclip``: code that ignored PARACLIP_CACHE."""
    root = home / ".cache" / "paraclip"
    return sorted(p for p in root.rglob("*") if p.is_file() or (p.is_dir() and not any(p.iterdir()))) \
        if root.exists() else []


def pytest_sessionfinish(session, exitstatus):
    leaked = leaked_cache_files(TEST_HOME)
    if leaked:
        shown = "\n".join(f"  {p}" for p in leaked[:20])
        print(f"\nFAILED: {len(leaked)} file(s) were written under ~/.cache/paraclip (the tests' temporary HOME) "
              f"instead of $PARACLIP_CACHE; outside the tests they would land in the user's real cache:\n{shown}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch):
    # per test as well, so a test that changes these gets them back
    monkeypatch.setenv("PARACLIP_CACHE", str(TEST_CACHE))
    monkeypatch.setenv("HOME", str(TEST_HOME))
    monkeypatch.delenv("PARACLIP_APP_DIR", raising=False)


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
