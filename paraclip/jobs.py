"""Background jobs (training runs) as subprocesses, with their history in an embedded SQLite database.

The app starts ``paraclip train`` as a child process in its own process group (``torchrun`` when
several GPUs are asked for), so a request never waits on training, a page reload loses nothing,
and Cancel stops every process of the job (SIGTERM to the group: the trainer saves a checkpoint at
the next step boundary; SIGKILL after a grace period). Each job has a folder holding its config,
its log and its run directory; the database (``jobs.sqlite``) records what was started, by whom,
and how it ended, and survives app restarts. A small ``sh`` wrapper writes the exit code to
``exit_code`` in the job folder, so the outcome is known even when the app was restarted while
the job ran. The job's processes hold its folder's :class:`~paraclip.runlock.RunLock` (handed to
the child as an open descriptor), so a second start in the same folder is refused while any of them
lives, and the lock goes when they exit, killed or not.

No gradio here: the UI only calls :class:`JobRunner`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from paraclip.errors import ParaclipError
from paraclip.files import cache_root
from paraclip.runlock import RunLock

ACTIVE = ("queued", "running", "cancelling")
FINISHED = ("succeeded", "failed", "cancelled", "lost", "interrupted")  # interrupted: the app stopped
CANCEL_GRACE_S = 20.0

# `sh` waits for the command, then records its exit code. The trap keeps the wrapper alive on
# SIGTERM/SIGINT (a trap with a command is reset to the default in the child), so the exit code
# of a cancelled run is recorded too.
_WRAPPER = 'trap ":" TERM INT; "$@"; echo $? > "$PARACLIP_JOB_EXIT.tmp" && mv "$PARACLIP_JOB_EXIT.tmp" "$PARACLIP_JOB_EXIT"'

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    pid_start TEXT,
    command TEXT NOT NULL,
    job_dir TEXT NOT NULL,
    out_dir TEXT,
    config TEXT,
    returncode INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
"""


def default_app_dir() -> Path:
    """``$PARACLIP_APP_DIR``, else ``$PARACLIP_CACHE/app``, else ``~/.cache/paraclip/app``."""
    if os.environ.get("PARACLIP_APP_DIR"):
        return Path(os.environ["PARACLIP_APP_DIR"]).expanduser()
    return cache_root() / "app"


@dataclass
class Job:
    id: str
    kind: str
    name: str
    status: str
    created: float
    command: list[str]
    job_dir: str
    owner: str | None = None
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    pid_start: str | None = None
    out_dir: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    cancel_requested: bool = False
    message: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def log_path(self) -> Path:
        return Path(self.job_dir) / "log.txt"

    @property
    def exit_path(self) -> Path:
        return Path(self.job_dir) / "exit_code"

    @property
    def metrics_path(self) -> Path | None:
        return Path(self.out_dir) / "metrics.jsonl" if self.out_dir else None

    @property
    def final_checkpoint(self) -> Path | None:
        path = Path(self.out_dir) / "final.pt" if self.out_dir else None
        return path if path is not None and path.is_file() else None

    def checkpoints(self) -> list[Path]:
        """final.pt and the resumable step checkpoints, newest first."""
        if not self.out_dir:
            return []
        root = Path(self.out_dir)
        steps = sorted((root / "checkpoints").glob("step-*.pt"), reverse=True)
        return ([root / "final.pt"] if (root / "final.pt").is_file() else []) + steps

    def duration_s(self, now: float | None = None) -> float | None:
        if self.started is None:
            return None
        return (self.finished or now or time.time()) - self.started

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["command"] = json.dumps(self.command)
        row["config"] = json.dumps(self.config, default=str)
        row["cancel_requested"] = int(self.cancel_requested)
        return row

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        data["command"] = json.loads(data["command"])
        data["config"] = json.loads(data["config"] or "{}")
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


class JobStore:
    """Job records in SQLite (one connection per call: safe from any thread or process)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def add(self, job: Job) -> None:
        row = job.to_row()
        cols = ", ".join(row)
        with self._connect() as db:
            db.execute(f"INSERT INTO jobs ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))

    def update(self, job_id: str, **changes: Any) -> None:
        if not changes:
            return
        if "cancel_requested" in changes:
            changes["cancel_requested"] = int(changes["cancel_requested"])
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._connect() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*changes.values(), job_id])

    def delete(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list(self, limit: int = 200, owner: str | None = None) -> list[Job]:
        query, args = "SELECT * FROM jobs", []
        if owner is not None:
            query, args = query + " WHERE owner = ?", [owner]
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC LIMIT ?", [*args, limit]).fetchall()
        return [Job.from_row(r) for r in rows]


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live job from a reused pid); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


def _proc_alive(pid: int | None, start: str | None) -> bool:
    if not pid:
        return False
    now = _proc_start_time(pid)
    if now is None:
        return False
    try:  # a zombie is not alive
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (OSError, IndexError):
        pass
    return start in (None, "?") or now == "?" or now == start


def training_command(config_path: str | os.PathLike, gpus: int = 0, python: str | None = None) -> list[str]:
    """``python -m paraclip.cli train --config FILE``; with ``gpus > 1``, the same under torchrun."""
    python = python or sys.executable
    if gpus > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                "-m", "paraclip.cli", "train", "--config", str(config_path)]
    return [python, "-m", "paraclip.cli", "train", "--config", str(config_path)]


def visible_gpus() -> int:
    """Number of CUDA devices (0 without torch or CUDA); imported lazily."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no torch / broken driver: train on CPU
        return 0


class JobRunner:
    """Starts, watches and cancels jobs; one per app (holds no per-user state)."""

    def __init__(self, root: str | os.PathLike | None = None, max_active: int = 2,
                 cancel_grace_s: float = CANCEL_GRACE_S, env: dict[str, str] | None = None):
        self.root = Path(root) if root is not None else default_app_dir()
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.root / "jobs.sqlite")
        self.max_active = max_active
        self.cancel_grace_s = cancel_grace_s
        self.env = dict(env or {})
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- starting -----------------------------------------------------------------------------
    def start(self, kind: str, name: str, command: Sequence[str], owner: str | None = None,
              out_dir: str | os.PathLike | None = None, config: dict[str, Any] | None = None,
              job_id: str | None = None, cwd: str | os.PathLike | None = None) -> Job:
        """Run ``command`` in a new process group; stdout+stderr go to the job's log."""
        with self._lock:
            running = [j for j in self.list() if j.active]
            if len(running) >= self.max_active:
                raise ParaclipError(f"{len(running)} jobs are already running (the limit is {self.max_active}); "
                                    f"wait for one to finish or cancel one.")
            job_id = job_id or new_job_id()
            job_dir = self.jobs_dir / job_id
            job_dir.mkdir(parents=True, exist_ok=True)
            lock = RunLock.for_folder(job_dir, what="job folder", advice="start the job under another id")
            lock.acquire(command=shlex.join(map(str, command)))  # a live job there is named first
            if self.store.get(job_id) is not None:  # checked before anything starts: the id is the table's key
                lock.release()
                raise ParaclipError(f"job {job_id} exists already (see its history); start it under another id.")
            job = Job(id=job_id, kind=kind, name=name, status="running", created=time.time(),
                      command=list(map(str, command)), job_dir=str(job_dir), owner=owner,
                      out_dir=str(out_dir) if out_dir else None, config=dict(config or {}))
            env = {**os.environ, **self.env, "PARACLIP_JOB_EXIT": str(job.exit_path), "PYTHONUNBUFFERED": "1"}
            try:
                with open(job.log_path, "ab") as log:
                    log.write(f"$ {shlex.join(job.command)}\n".encode())
                    log.flush()
                    proc = subprocess.Popen(["/bin/sh", "-c", _WRAPPER, "sh", *job.command], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                            cwd=str(cwd) if cwd else None, start_new_session=True,
                                            pass_fds=(lock.fileno(),))
                lock.record(pid=proc.pid, command=shlex.join(job.command))
            finally:
                lock.detach()  # the job's processes hold it now; the kernel drops it when the last one exits
            job.pid, job.pid_start, job.started = proc.pid, _proc_start_time(proc.pid), time.time()
            self._procs[job_id] = proc
            self.store.add(job)
            return job

    def start_training(self, config: dict[str, Any], name: str | None = None, owner: str | None = None,
                       gpus: int | None = None) -> Job:
        """Write ``config`` (TrainConfig fields) as YAML into a new job folder and run ``paraclip train``.

        ``out_dir`` defaults to ``<job folder>/run``. ``gpus``: None = all visible GPUs
        (torchrun when more than one).
        """
        import yaml

        from paraclip.training.config import TrainConfig, apply_overrides, load_config

        config = {k: v for k, v in config.items() if v is not None}
        apply_overrides(TrainConfig(), config).validate()  # a bad value is refused, field named, before any folder
        job_id = new_job_id()
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        config.setdefault("out_dir", str(job_dir / "run"))
        config_path = job_dir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        load_config(config_path).validate()  # a bad config fails here, with the field named, not in the log
        gpus = visible_gpus() if gpus is None else gpus
        return self.start("train", name or f"train {job_id}", training_command(config_path, gpus), owner=owner,
                          out_dir=config["out_dir"], config=config, job_id=job_id)

    # -- watching -----------------------------------------------------------------------------
    def refresh(self, job: Job) -> Job:
        """Bring an active job's status up to date (exit code file, process liveness)."""
        if not job.active:
            return job
        proc = self._procs.get(job.id)
        if proc is not None:
            proc.poll()  # reap our own child so it is not a zombie
        changes: dict[str, Any] = {}
        # liveness first, then the exit file: a job that exits between the two checks has written its
        # exit code by the time it is seen dead, so it is never mistaken for a lost one
        gone = not _proc_alive(job.pid, job.pid_start) and not self._group_alive(job)
        if job.exit_path.is_file():
            try:
                code = int(job.exit_path.read_text().strip() or "1")
            except ValueError:
                code = 1
            status = "succeeded" if code == 0 else ("cancelled" if job.cancel_requested else "failed")
            changes = dict(status=status, returncode=code, finished=job.exit_path.stat().st_mtime,
                           message=job.message or self._failure_message(job, code))
        elif gone:
            status = "cancelled" if job.cancel_requested else "lost"
            changes = dict(status=status, finished=time.time(),
                           message=job.message or ("stopped before it wrote an exit code (killed, or the machine "
                                                   "restarted); rerun it to resume from its last checkpoint"))
        if changes:
            self.store.update(job.id, **changes)
            self._procs.pop(job.id, None)
            for key, value in changes.items():
                setattr(job, key, value)
        return job

    def _group_alive(self, job: Job) -> bool:
        if not job.pid:
            return False
        try:
            os.killpg(job.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return _proc_alive(job.pid, job.pid_start) or self._has_live_member(job.pid)

    @staticmethod
    def _has_live_member(pgid: int) -> bool:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False

    def _failure_message(self, job: Job, code: int) -> str | None:
        if code == 0:
            return None
        if job.cancel_requested:
            return "cancelled; its last checkpoint is kept (start it again to resume)"
        tail = self.log_tail(job, 4000).strip().splitlines()
        errors = [line for line in tail if "error" in line.lower()]
        return (errors[-1] if errors else (tail[-1] if tail else f"exit code {code}"))[-500:]

    def get(self, job_id: str) -> Job | None:
        job = self.store.get(job_id)
        return self.refresh(job) if job is not None else None

    def list(self, limit: int = 200, owner: str | None = None) -> list[Job]:
        return [self.refresh(j) for j in self.store.list(limit, owner)]

    def log_tail(self, job: Job, max_bytes: int = 20_000) -> str:
        try:
            with open(job.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def metrics(self, job: Job) -> list[dict[str, Any]]:
        """Rows of the run's metrics.jsonl (a half-written last line is ignored)."""
        path = job.metrics_path
        if path is None or not path.is_file():
            return []
        rows = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except (ValueError, RecursionError):  # a torn or absurd row: the curves skip it
                    continue
        return rows

    # -- stopping -----------------------------------------------------------------------------
    def cancel(self, job_id: str, wait: bool = False) -> Job:
        """SIGTERM to the job's process group, SIGKILL after ``cancel_grace_s``; ``wait`` blocks until gone."""
        job = self.get(job_id)
        if job is None:
            raise ParaclipError(f"no job {job_id!r}")
        if not job.active:
            return job
        self.store.update(job.id, cancel_requested=True, status="cancelling")
        job.cancel_requested, job.status = True, "cancelling"
        self._signal(job, signal.SIGTERM)
        killer = threading.Thread(target=self._kill_after_grace, args=(job,), daemon=True,
                                  name=f"paraclip-job-kill-{job.id}")
        killer.start()
        if wait:
            killer.join()
        return self.refresh(job)

    def _kill_after_grace(self, job: Job) -> None:
        deadline = time.monotonic() + self.cancel_grace_s
        while time.monotonic() < deadline:
            if not self._group_alive(job):
                break
            proc = self._procs.get(job.id)
            if proc is not None:
                proc.poll()
            time.sleep(0.1)
        else:
            self._signal(job, signal.SIGKILL)
            end = time.monotonic() + 5
            while self._group_alive(job) and time.monotonic() < end:
                time.sleep(0.05)
        proc = self._procs.get(job.id)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.refresh(self.store.get(job.id))

    @staticmethod
    def _signal(job: Job, sig: int) -> None:
        if not job.pid:
            return
        try:
            os.killpg(job.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def interrupt_all(self) -> list[Job]:
        """The app is stopping: SIGTERM to every active job (the trainer checkpoints at its next step and
        exits) and mark it ``interrupted``, so the history offers to resume it. Does not wait."""
        jobs = [j for j in self.list() if j.active]
        for job in jobs:
            self.store.update(job.id, status="interrupted", cancel_requested=True, finished=time.time(),
                              message="interrupted: the app stopped; its last checkpoint is kept (resume it)")
            self._signal(job, signal.SIGTERM)
        return jobs

    def resume(self, job_id: str, owner: str | None = None) -> Job:
        """A new job with the config of a stopped training job (same run folder: the trainer resumes
        from its newest checkpoint)."""
        job = self.get(job_id)
        if job is None or job.kind != "train" or job.active or not job.config:
            raise ParaclipError(f"job {job_id!r} cannot be resumed (only a stopped training job can)")
        return self.start_training(dict(job.config), name=job.name, owner=owner if owner is not None else job.owner)

    def cancel_all(self, jobs: Iterable[Job] | None = None) -> None:
        for job in list(jobs if jobs is not None else self.list()):
            if job.active:
                self.cancel(job.id, wait=True)


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


__all__ = ["ACTIVE", "FINISHED", "Job", "JobRunner", "JobStore", "default_app_dir", "new_job_id", "training_command",
           "visible_gpus"]
