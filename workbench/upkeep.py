"""Keeping a public app within bounds: job quotas, jobs nobody watches, and what visitors leave behind.

* **per-visitor cap** — :func:`check_visitor_quota`: a visitor may run ``jobs_per_visitor`` jobs at
  once, so one visitor cannot fill ``PARACLIP_APP_MAX_JOBS`` for everyone.
* **reaper** — a training job running longer than ``max_job_minutes``, or whose owner has had no
  page of the app open for ``abandoned_job_minutes`` (pages poll; :meth:`Upkeep.seen` notes it), is
  cancelled; the trainer keeps its last checkpoint, so the owner can resume it.
* **sweeper** — scratch folders (uploads, paraphrase runs), Gradio's uploads and finished jobs of
  visitors expire after ``expire_hours``, and above ``scratch_max_mb`` in all the oldest go first.

All of it runs in public mode only, on one daemon thread (every ``PERIOD_S``), and as
:meth:`Upkeep.run_once` for tests.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from paraclip.errors import ParaclipError

log = logging.getLogger("paraclip.workbench")
PERIOD_S = 30.0


class QuotaError(ParaclipError):
    """A request over one of the public app's quotas; the message says which and what to do."""


def check_visitor_quota(services, owner: str | None) -> None:
    if not services.config.public or owner is None:
        return
    mine = [j for j in services.runner.list(owner=owner) if j.active]
    cap = services.config.jobs_per_visitor
    if len(mine) >= cap:
        raise QuotaError(f"you already have {len(mine)} running job(s), this app's limit per visitor is {cap}; wait "
                         f"for it to finish or cancel it.")


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


class Upkeep:
    """The reaper and the sweeper of one app (``Services`` makes it; :meth:`start` in public mode)."""

    def __init__(self, services):
        self.services = services
        self._seen: dict[str, float] = {}  # job owner -> when a page of theirs last polled (job control)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seen(self, owner: str | None) -> None:
        if owner:
            with self._lock:
                self._seen[owner] = time.time()

    def start(self) -> None:
        if self._thread is None and self.services.config.public:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="paraclip-wb-upkeep")
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD_S):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - upkeep must never stop the app; next round tries again
                log.exception("upkeep round failed")

    def run_once(self, now: float | None = None) -> dict[str, list[str]]:
        now = time.time() if now is None else now
        return {"cancelled": self.reap(now), "deleted": self.sweep(now)}

    # -- jobs ------------------------------------------------------------------------------------
    def reap(self, now: float) -> list[str]:
        cfg, runner = self.services.config, self.services.runner
        cancelled = []
        for job in runner.list():
            if not job.active or job.status == "cancelling" or not job.owner:
                continue
            with self._lock:
                seen = self._seen.setdefault(job.owner, job.started or now)
            why = None
            if job.started and now - job.started > cfg.max_job_minutes * 60:
                why = f"ran over this app's limit of {cfg.max_job_minutes:g} min"
            elif now - seen > cfg.abandoned_job_minutes * 60:
                why = f"no page of its owner was open for {cfg.abandoned_job_minutes:g} min"
            if why:
                runner.store.update(job.id, message=f"cancelled: {why}; its last checkpoint is kept (resume it)")
                runner.cancel(job.id)
                cancelled.append(job.id)
        return cancelled

    # -- files -----------------------------------------------------------------------------------
    def _candidates(self) -> list[tuple[float, Path, str | None]]:
        """(last change, path, job id) of everything that may expire."""
        from workbench.policy import gradio_upload_dir

        out: list[tuple[float, Path, str | None]] = []
        for root in (self.services.config.work_root, gradio_upload_dir()):
            if root.is_dir():
                out += [(p.stat().st_mtime, p, None) for p in root.iterdir()]
        for job in self.services.runner.list(10_000):
            if job.owner and not job.active and Path(job.job_dir).is_dir():
                out.append((job.finished or job.created, Path(job.job_dir), job.id))
        return sorted(out, key=lambda c: c[0])

    def sweep(self, now: float) -> list[str]:
        cfg = self.services.config
        deleted = []
        entries = [(mtime, path, job, _tree_size(path)) for mtime, path, job in self._candidates()]
        total = sum(e[3] for e in entries)
        for mtime, path, job_id, size in entries:  # oldest first
            if now - mtime <= cfg.expire_hours * 3600 and total <= cfg.scratch_max_mb * 1024 * 1024:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            if job_id:
                self.services.runner.store.delete(job_id)
            total -= size
            deleted.append(str(path))
        return deleted
