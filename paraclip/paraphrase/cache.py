"""A request cache in SQLite: identical requests are never paid for twice, across runs.

The key is a SHA-256 of (backend identity, model, messages, sampling parameters, sample
number). Only successful completions are stored (the raw text, before post-processing, so
that a change in cleaning rules applies to cached outputs too). WAL mode lets several
runs share one cache file.
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

from paraclip.files import cache_root
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
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "tokens INTEGER NOT NULL, created REAL NOT NULL)"
        )

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._conn.execute("SELECT text, tokens FROM completions WHERE key = ?", (key,)).fetchone()
        return Completion(row[0], tokens=0, cached=True) if row else None

    def put(self, key: str, completion: Completion) -> None:
        if not completion.ok:
            return
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO completions (key, text, tokens, created) VALUES (?, ?, ?, ?)",
                (key, completion.text, completion.tokens, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
