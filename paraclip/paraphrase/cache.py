"""A request cache in SQLite: identical requests are never paid for twice, across runs.

The key is a SHA-256 of the whole request: the backend's identity (kind, model, base URL and
extra body fields, or the local model's source and dtype), the messages (the prompt), the
sampling parameters and the sample number. Only successful completions are stored (the raw
text, before post-processing, so that a change in cleaning rules applies to cached outputs
too). WAL mode lets several runs share one cache file. A damaged file is set aside and the
cache started afresh (see :class:`RequestCache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from paraclip.files import cache_root, note_damaged_cache
from paraclip.paraphrase.backends.base import ChatRequest, Completion


def default_cache_path() -> Path:
    return cache_root() / "paraphrase" / "requests.sqlite"


def request_key(identity: dict[str, Any], request: ChatRequest) -> str:
    payload = {
        "backend": identity,
        "messages": request.messages,
        "sampling": request.sampling_key,
        "sample": request.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RequestCache:
    """Completions by request key in one SQLite file. A file that is not a healthy SQLite database
    (garbage, truncated, malformed pages) is noted, moved aside to ``<name>.damaged`` and started
    afresh: a cache only saves money, so losing it must never stop a run, nor be read from."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = None
        with self._lock:
            self._run(lambda conn: None)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                "tokens INTEGER NOT NULL, created REAL NOT NULL)"
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, query):
        """``query(connection)``; a damaged file is set aside and the query run on a fresh one."""
        for attempt in (1, 2):
            try:
                if self._conn is None:
                    self._conn = self._open()
                return query(self._conn)
            except sqlite3.OperationalError:
                raise  # locked, disk full, permissions: not damage, and not ours to discard
            except sqlite3.DatabaseError as exc:
                if attempt == 2:
                    raise
                self._set_aside(exc)

    def _set_aside(self, exc: Exception) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        note_damaged_cache(self.path, f"request cache is not a healthy SQLite database: {exc}; it is moved to "
                                      f"{self.path.name}.damaged and started empty")
        os.replace(self.path, self.path.with_name(self.path.name + ".damaged"))
        for suffix in ("-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._run(lambda c: c.execute("SELECT text, tokens FROM completions WHERE key = ?",
                                                (key,)).fetchone())
        return Completion(row[0], tokens=0, cached=True) if row else None

    def put(self, key: str, completion: Completion) -> None:
        if not completion.ok:
            return
        with self._lock:
            self._run(lambda c: c.execute(
                "INSERT OR REPLACE INTO completions (key, text, tokens, created) VALUES (?, ?, ?, ?)",
                (key, completion.text, completion.tokens, time.time()),
            ))

    def __len__(self) -> int:
        with self._lock:
            return self._run(lambda c: c.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
