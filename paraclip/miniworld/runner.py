"""The reproduction's run folder and stage runner: stages, their markers and fingerprints, progress.

A :class:`Stage` says what it makes (``outputs``), how (``work``) and from what (``fingerprint``:
its settings and the fingerprints of the stages it reads). :meth:`Run.run_stage` runs ``work``
unless the stage's marker (``stages/NAME.json``) holds the same fingerprint and every output
exists; a stage whose fingerprint changed is redone with its old outputs removed first, so
results of other settings never mix with this run's. One process runs stages in a folder at a time:
:meth:`Run.locked` holds the folder's :class:`~paraclip.runlock.RunLock` (the CLI and the app may share
the default folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from paraclip.errors import DataError
from paraclip.files import atomic_write_text, note_damaged_cache, parse_json
from paraclip.miniworld.config import MiniWorldConfig, default_root
from paraclip.runlock import RunLock

ProgressFn = Callable[[int, int, str], None]  # (done, total, message), as the app's builders take


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Stage:
    """One cached step of a reproduction.

    ``fingerprint(fingerprints)`` returns the parts the stage's fingerprint is the digest of, given the
    fingerprints of the stages run before it; ``skip()``, asked when the stage's turn comes, returns
    why it is skipped (None: it runs). ``message`` may be a callable for text known only then.
    """

    name: str
    weight: float  # ~ expected minutes on 2 cores: the stage's share of the progress bar
    message: str | Callable[[], str]
    fingerprint: Callable[[Mapping[str, str]], dict]
    outputs: list[Path]
    work: Callable[[], dict]
    skip: Callable[[], str | None] | None = None

    def describe(self) -> str:
        return self.message() if callable(self.message) else self.message

    def fingerprint_of(self, fingerprints: Mapping[str, str]) -> tuple[str, dict]:
        """(fingerprint, the parts it is the digest of), given the fingerprints of the stages before."""
        parts = self.fingerprint(fingerprints)
        return _digest(parts), parts


class Progress:
    """Stage-level progress: a line per stage on stderr (CLI) and/or ``callback(done, total, message)``.

    Work is counted in stage weights; within a stage ``update(fraction)`` moves the total.
    """

    def __init__(self, callback: ProgressFn | None = None, verbose: bool = False):
        self.callback, self.verbose = callback, verbose
        self.total = 1.0
        self.done = 0.0
        self.current: tuple[str, float] | None = None

    def plan(self, weights: list[tuple[str, float]]) -> None:
        self.total = sum(w for _, w in weights) or 1.0
        self.done = 0.0

    def start(self, name: str, weight: float, message: str, index: int, count: int) -> None:
        self.current = (name, weight)
        if self.verbose:
            print(f"[{index}/{count}] {message}", file=sys.stderr, flush=True)
        self._emit(0.0, message)

    def update(self, fraction: float, message: str) -> None:
        self._emit(fraction, message)

    def finish(self, message: str) -> None:
        if self.current is not None:
            self.done += self.current[1]
        self.current = None
        self._emit(0.0, message)

    def _emit(self, fraction: float, message: str) -> None:
        if self.callback is None:
            return
        weight = self.current[1] if self.current else 0.0
        done = self.done + weight * max(0.0, min(1.0, fraction))
        self.callback(min(1000, int(1000 * done / self.total + 1e-6)), 1000, message)  # float sums: 0.9999…


class Run:
    """A reproduction's folder: its paths, the stage markers, and the stage runner.

    ``fingerprints`` and ``infos`` hold, by stage name, what the stages run so far (in order)
    recorded; a skipped stage has neither."""

    def __init__(self, config: MiniWorldConfig, root: str | os.PathLike | None = None,
                 progress: Progress | None = None):
        self.config = config
        self.root = Path(root).expanduser() if root else default_root() / "default"
        self.progress = progress or Progress()
        self.fingerprints: dict[str, str] = {}
        self.infos: dict[str, dict] = {}
        self.world = self.root / "world"
        self.gallery_dir = self.world / "eval-images"  # the test world's scenes
        self.val_gallery_dir = self.world / "val-images"
        self.train_images = self.world / "train-images"
        self.paraphrases = self.root / "data" / "paraphrases.jsonl"
        self.evalsets = self.root / "evalsets"
        self.report_dir = self.root / "report"
        self.test_world_scored = self.root / "test-world-scored.json"  # when the test world was first scored
        self._lock = RunLock.for_folder(self.root, what="mini-world run folder",
                                        advice="give this run another folder (--out)")
        self._lock_depth = 0

    @contextmanager
    def locked(self):
        """Hold the run folder's lock (nested uses share it); refused while another run writes the folder."""
        if self._lock_depth == 0:
            self._lock.acquire()
        self._lock_depth += 1
        try:
            yield self
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                self._lock.release()

    def run_dir(self, kind: str, seed: int) -> Path:
        return self.root / "runs" / f"{kind}-s{seed}"

    def results_dir(self, seed: int) -> Path:
        return self.root / "results" / f"seed{seed}"

    def marker(self, stage: str) -> Path:
        return self.root / "stages" / f"{stage}.json"

    def read_marker(self, stage: str) -> dict | None:
        """The stage's marker (None: never finished). A damaged one is stale, never trusted: ``{}``, which
        matches no fingerprint, so the stage's outputs are removed and it runs again (with a note)."""
        path = self.marker(stage)
        if not path.is_file():
            return None
        try:
            marker = parse_json(path.read_bytes(), str(path))
        except DataError as exc:
            note_damaged_cache(path, str(exc).removeprefix(f"{path}: ").rstrip("."))
            return {}
        if not isinstance(marker, dict) or not isinstance(marker.get("fingerprint"), str):
            note_damaged_cache(path, "not a stage marker")
            return {}
        return marker

    def run_stages(self, stages: list[Stage]) -> dict[str, dict]:
        """Run (or find cached) every stage in order; returns ``infos``."""
        with self.locked():
            self.progress.plan([(stage.name, stage.weight) for stage in stages])
            for index, stage in enumerate(stages, 1):
                self.run_stage(stage, index, len(stages))
        return self.infos

    def run_stage(self, stage: Stage, index: int = 1, count: int = 1) -> dict | None:
        """Run ``stage.work`` unless a marker with the same fingerprint says it is done; returns its
        info (None when skipped)."""
        with self.locked():
            return self._run_stage(stage, index, count)

    def _run_stage(self, stage: Stage, index: int, count: int) -> dict | None:
        name = stage.name
        reason = stage.skip() if stage.skip else None
        if reason is not None:
            self.progress.start(name, stage.weight, f"{name}: skipped ({reason})", index, count)
            self.progress.finish(f"{name}: skipped")
            return None
        fingerprint, _ = stage.fingerprint_of(self.fingerprints)
        self.fingerprints[name] = fingerprint
        marker = self.read_marker(name)
        self.progress.start(name, stage.weight, stage.describe(), index, count)
        if marker is not None and marker.get("fingerprint") == fingerprint and all(p.exists() for p in stage.outputs):
            self.progress.finish(f"{name}: done earlier (cached)")
            if self.progress.verbose:
                print(f"      cached ({_number(marker.get('seconds')):.0f} s when it ran)", file=sys.stderr)
            self.infos[name] = marker
            return marker
        if marker is not None and marker.get("fingerprint") != fingerprint:
            for path in stage.outputs:  # outputs of other settings: never mix them with this run's
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            self.marker(name).unlink(missing_ok=True)
        start, cpu_start, load_start = time.perf_counter(), _cpu_seconds(), _load()
        info = stage.work() or {}
        # CPU time next to wall time: on a shared machine the wall time says little on its own
        info = {"stage": name, "fingerprint": fingerprint, "seconds": round(time.perf_counter() - start, 2),
                "cpu_seconds": round(_cpu_seconds() - cpu_start, 2), "load_before": load_start, "load_after": _load(),
                "threads": _threads(), "finished": time.time(), **info}
        atomic_write_text(self.marker(name), json.dumps(info, indent=1, default=str))
        self.progress.finish(f"{name}: done in {info['seconds']:.0f} s")
        self.infos[name] = info
        return info


def _number(value) -> float:
    """A marker's number, 0 when an edit left something else there (it is only printed)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _threads() -> int:
    import torch

    return torch.get_num_threads()
