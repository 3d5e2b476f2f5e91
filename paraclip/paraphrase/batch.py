"""A paraphrasing run through a batch API: request files, polling, follow-up batches, exact resume.

Each *round* puts every request that is due into JSONL files (within the API's per-file
limits), one batch per file, and waits for them. Round 1 holds step 1 of every caption;
outputs are checked exactly as in the realtime engine (:meth:`StepResult.take`), and the
next round holds step 2 of the accepted ones (built from step-1 results), re-samples of
rejected outputs, and the requests that failed or expired (at most ``max_retries`` more
times each). Records are built by the engine's :meth:`Paraphraser.build_record` and
appended as soon as both steps are decided.

State is SQLite next to the output (``OUT.batches.sqlite``; request files in ``OUT.batches/``)
and every stage is committed before the next starts: *prepared* (request file written) ->
*uploaded* (file id) -> *submitted* (batch id) -> *collected* (output and error files parsed
into the results table in one transaction). A run killed between a server call and the
commit of its answer finds the object again on resume, an upload by its unique file name and
a batch by its input file id, so nothing is submitted twice; the output file remains the
record of finished captions, so each is written exactly once.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from paraclip.errors import ParaclipError
from paraclip.paraphrase.backends.base import ChatRequest, Completion
from paraclip.paraphrase.backends.http import RequestAborted
from paraclip.paraphrase.cache import request_key
from paraclip.paraphrase.steps import BackendFatalError, StepResult
from paraclip.paraphrase.pricing import CostEstimate, estimate_cost


class BatchAPIError(ParaclipError):
    """A files / batches endpoint answered with an error that retrying does not fix."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, round INTEGER NOT NULL, name TEXT UNIQUE NOT NULL, path TEXT NOT NULL,
    requests INTEGER NOT NULL, bytes INTEGER NOT NULL, file_id TEXT, uploaded_at REAL, batch_id TEXT,
    status TEXT NOT NULL DEFAULT 'prepared', collected INTEGER NOT NULL DEFAULT 0, message TEXT);
CREATE TABLE IF NOT EXISTS sent (chunk INTEGER NOT NULL, custom_id TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (chunk, custom_id));
CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, text TEXT NOT NULL, tokens INTEGER NOT NULL,
    cached INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, permanent INTEGER NOT NULL,
    last_error TEXT NOT NULL);
"""


@dataclass
class Chunk:
    id: int
    round: int
    name: str
    path: str
    requests: int
    bytes: int
    file_id: str | None
    uploaded_at: float | None
    batch_id: str | None
    status: str


class Due(NamedTuple):
    """A request that has no result yet."""
    custom_id: str
    key: str
    request: ChatRequest
    text: str  # what it rewrites (for the cost estimate)
    step: int


class BatchState:
    """What was sent in which file and batch, and what came back (SQLite, one file per output)."""

    def __init__(self, out_path: Path):
        self.path = Path(str(out_path) + ".batches.sqlite")
        self.files_dir = Path(str(out_path) + ".batches")
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(_SCHEMA)
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
        if row is None:  # names this output's files on the server (file names are looked up on resume)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('token', ?)", (secrets.token_hex(4),))
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
        self.token = row[0]

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def chunks(self, open_only: bool = True) -> list[Chunk]:
        where = "WHERE collected = 0" if open_only else ""
        rows = self.conn.execute(f"SELECT id, round, name, path, requests, bytes, file_id, uploaded_at, batch_id, "
                                 f"status FROM chunks {where} ORDER BY id").fetchall()
        return [Chunk(*row) for row in rows]

    def next_round(self) -> int:
        return (self.conn.execute("SELECT MAX(round) FROM chunks").fetchone()[0] or 0) + 1

    def add_chunk(self, round_no: int, name: str, path: Path, size: int, sent: list[tuple[str, str]]) -> Chunk:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO chunks (round, name, path, requests, bytes) VALUES (?, ?, ?, ?, ?)",
                             (round_no, name, str(path), len(sent), size))
            db.executemany("INSERT INTO sent VALUES (?, ?, ?)", [(cur.lastrowid, c, k) for c, k in sent])
        return Chunk(cur.lastrowid, round_no, name, str(path), len(sent), size, None, None, None, "prepared")

    def update(self, chunk: Chunk, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE chunks SET {sets} WHERE id = ?", (*fields.values(), chunk.id))
        for k, v in fields.items():
            setattr(chunk, k, v)

    def drop(self, chunk: Chunk) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sent WHERE chunk = ?", (chunk.id,))
            db.execute("DELETE FROM chunks WHERE id = ?", (chunk.id,))
        Path(chunk.path).unlink(missing_ok=True)

    def sent(self, chunk: Chunk) -> dict[str, str]:
        return dict(self.conn.execute("SELECT custom_id, key FROM sent WHERE chunk = ?", (chunk.id,)).fetchall())

    def result(self, key: str) -> Completion | None:
        row = self.conn.execute("SELECT text, tokens, cached FROM results WHERE key = ?", (key,)).fetchone()
        return Completion(row[0], tokens=row[1], cached=bool(row[2])) if row else None

    def add_cached(self, key: str, text: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO results VALUES (?, ?, 0, 1)", (key, text))

    def failure(self, key: str) -> tuple[int, bool, str] | None:
        row = self.conn.execute("SELECT count, permanent, last_error FROM failures WHERE key = ?", (key,)).fetchone()
        return (row[0], bool(row[1]), row[2]) if row else None

    def collect(self, chunk: Chunk, status: str, successes, failures, message: str | None = None) -> None:
        """Store a finished batch's results and mark it collected, all in one transaction."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, 0)", successes)
            for key, error, permanent in failures:
                db.execute("INSERT INTO failures VALUES (?, 1, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                           "count = count + 1, permanent = MAX(permanent, excluded.permanent), "
                           "last_error = excluded.last_error", (key, int(permanent), error))
            db.execute("UPDATE chunks SET status = ?, collected = 1, message = ? WHERE id = ?",
                       (status, message, chunk.id))
        chunk.status = status

    def clear_failures(self) -> None:
        self.conn.execute("DELETE FROM failures")

    def close(self) -> None:
        self.conn.close()


class BatchRun:
    """One paraphrasing run through a batch backend (``backend.runs_batches``), started by the engine:
    rounds of batches until every caption of ``todo`` is decided. ``record_done`` receives each
    :class:`~paraclip.paraphrase.records.ParaphraseRecord`; ``info`` goes into the run summary."""

    def __init__(self, backend, todo, paraphraser, out_path: Path, record_done, should_stop, report):
        self.backend = backend
        self.todo = todo
        self.paraphraser = paraphraser
        self.config = paraphraser.config
        self.out_path = out_path
        self.record_done = record_done
        self.should_stop = should_stop or (lambda: False)
        self.report = report
        self.state: BatchState | None = None
        self.info: dict[str, Any] = {"dry_run": backend.dry_run, "declined": False, "estimate": None}

    def run(self) -> tuple[bool, bool, Exception | None]:
        """(stopped, interrupted, fatal error or None), as the engine expects."""
        self.state = BatchState(self.out_path)
        self.info["state"] = str(self.state.path)
        try:
            if self.config.retry_failed:
                self.state.clear_failures()
            return self._rounds()
        except RequestAborted:  # the backend was cancelled: a stop
            return True, False, None
        except KeyboardInterrupt:
            return False, True, None
        except BatchAPIError as exc:
            return False, False, BackendFatalError(str(exc))
        finally:
            chunks = self.state.chunks(open_only=False)
            self.info["batches"] = [{"round": c.round, "file": c.name, "requests": c.requests, "batch_id": c.batch_id,
                                     "status": c.status} for c in chunks]
            self.info["in_flight"] = [c.batch_id for c in self.state.chunks() if c.batch_id]
            self.state.close()

    def _rounds(self) -> tuple[bool, bool, Exception | None]:
        pending = dict(self.todo)
        fresh: set[int] = set()  # chunks prepared by this call (so not possibly uploaded by a killed run)
        approved = False
        while True:
            if self._finish_open(fresh):
                return True, False, None
            due = self._advance(pending)
            if not due:
                return False, False, None
            if not approved:
                estimate = self._estimate(due)
                self.info["estimate"] = estimate.to_dict()
                self.info["estimate_text"] = estimate.describe()
                if self.backend.dry_run:
                    self.info["request_files"] = [c.path for c in self._prepare(due)]
                    return True, False, None
                if self.backend.confirm is not None and not self.backend.confirm(estimate):
                    self.info["declined"] = True
                    return True, False, None
                approved = True
            fresh.update(c.id for c in self._prepare(due))

    # -- deciding records from results --------------------------------------------------------
    def _advance(self, pending: dict) -> list[Due]:
        """Write every record whose steps are decided; return the requests still needed."""
        due: list[Due] = []
        keys: set[str] = set()  # identical requests (repeated captions) are sent once and shared
        for index, item in list(pending.items()):
            s1, need = self._step(index, 1, item.caption, [item.caption])
            s2 = None
            if need is None and s1.text is not None:
                s2, need = self._step(index, 2, s1.text, [s1.text, item.caption])
            if need is not None:
                if need.key not in keys:
                    keys.add(need.key)
                    due.append(need)
                continue
            self.record_done(self.paraphraser.build_record(index, item, s1, s2))
            del pending[index]
        return due

    def _step(self, index: int, step: int, text: str, sources: list[str]) -> tuple[StepResult, Due | None]:
        result = StepResult(None, None, None)
        for sample in range(self.config.max_resamples + 1):
            request = self.paraphraser.request(step, text, sample)
            key = request_key(self.paraphraser.identity, request)
            completion = self._known(key)
            if completion is None:
                return result, Due(f"{index}-s{step}-n{sample}", key, request, text, step)
            if result.take(step, completion, sources, self.config.max_output_words,
                           self.paraphraser.preset.instructions()):
                return result, None
        result.give_up(step)
        return result, None

    def _known(self, key: str) -> Completion | None:
        """A result, a cache hit, or a failure past its retries; None when the request must be sent."""
        found = self.state.result(key)
        if found is not None:
            return found
        cache = self.paraphraser.cache
        if cache is not None and (hit := cache.get(key)) is not None:
            self.state.add_cached(key, hit.text)
            return hit
        failure = self.state.failure(key)
        if failure is not None and (failure[1] or failure[0] > self.backend.max_retries):
            return Completion(None, error=failure[2])
        return None

    def _estimate(self, due: list[Due]) -> CostEstimate:
        pairs = []
        for d in due:
            pairs.append((d.request, d.text))
            if d.step == 1:  # step 2 will rewrite step 1's output, about as long as the caption
                pairs.append((self.paraphraser.request(2, d.text, 0), d.text))
        return estimate_cost(pairs, self.backend.model, self.backend.prices)

    # -- request files and batches ------------------------------------------------------------
    def _prepare(self, due: list[Due]) -> list[Chunk]:
        """Write the due requests into files within the per-file limits and record them (not yet uploaded)."""
        state, backend = self.state, self.backend
        round_no = state.next_round()
        chunks: list[Chunk] = []
        lines: list[tuple[str, str, bytes]] = []
        size = 0

        def flush() -> None:
            name = f"{self.out_path.name}.{state.token}.r{round_no}.{len(chunks) + 1}.jsonl"
            path = state.files_dir / name
            tmp = path.with_name(name + ".part")
            with open(tmp, "wb") as f:
                f.writelines(line for _, _, line in lines)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            chunks.append(state.add_chunk(round_no, name, path, size, [(c, k) for c, k, _ in lines]))

        for d in due:
            line = (json.dumps(backend.request_line(d.custom_id, d.request), ensure_ascii=False) + "\n").encode()
            if lines and (len(lines) >= backend.max_requests_per_file or size + len(line) > backend.max_file_bytes):
                flush()
                lines, size = [], 0
            lines.append((d.custom_id, d.key, line))
            size += len(line)
        flush()
        return chunks

    def _finish_open(self, fresh: set[int]) -> bool:
        """Upload, submit, wait for and collect every chunk not yet collected; True when stopped."""
        state, backend = self.state, self.backend
        chunks = state.chunks()
        for chunk in chunks:
            if chunk.file_id is None and not self._upload(chunk, chunk.id in fresh):
                continue
            if chunk.batch_id is None:
                self._submit(chunk, chunk.id in fresh)
        for chunk in state.chunks():
            batch = backend.wait(chunk.batch_id, self.should_stop, on_poll=lambda b, c=chunk: self._polled(c, b))
            if batch is None:
                return True
            self._collect(chunk, batch)
        return False

    def _upload(self, chunk: Chunk, fresh: bool) -> bool:
        """Upload a prepared file, or adopt the upload a killed run made; False when the chunk was dropped."""
        found = None if fresh else self.backend.find_file(chunk.name, chunk.bytes)
        if found is None and not fresh:  # never uploaded: rebuilt from the current settings instead
            self.state.drop(chunk)
            return False
        if found is None:
            self._say("uploading", chunk)
            found = self.backend.upload(Path(chunk.path), chunk.name)
        self.state.update(chunk, file_id=found["id"], uploaded_at=float(found.get("created_at") or time.time()),
                          status="uploaded")
        return True

    def _submit(self, chunk: Chunk, fresh: bool) -> None:
        batch = None if fresh else self.backend.find_batch(chunk.file_id, chunk.uploaded_at or 0)
        if batch is None:
            batch = self.backend.create_batch(chunk.file_id, {"paraclip_file": chunk.name},
                                              since=chunk.uploaded_at or 0)
        self.state.update(chunk, batch_id=batch["id"], status=batch.get("status", "validating"))
        self._say("submitted", chunk)

    def _polled(self, chunk: Chunk, batch: dict[str, Any]) -> None:
        if batch.get("status") != chunk.status:
            self.state.update(chunk, status=batch.get("status"))
        counts = batch.get("request_counts") or {}
        self._say("waiting", chunk, completed=counts.get("completed", 0), failed=counts.get("failed", 0))

    def _collect(self, chunk: Chunk, batch: dict[str, Any]) -> None:
        status = batch.get("status")
        if status == "failed":  # rejected before anything ran (validation): nothing was charged
            errors = (batch.get("errors") or {}).get("data") or []
            detail = "; ".join((f"line {e['line']}: " if e.get("line") else "") + f"{e.get('code')}: {e.get('message')}"
                               for e in errors[:5]) or "no reason given"
            self.state.collect(chunk, "failed", [], [], message=detail)
            raise BatchAPIError(f"batch {batch.get('id')} ({chunk.name}, {chunk.requests} requests) failed "
                                f"validation: {detail}. Nothing in it ran or was charged; fix the cause (e.g. "
                                f"--model) and rerun.")
        self._say("downloading", chunk)
        sent = self.state.sent(chunk)
        seen: set[str] = set()
        successes, failures = [], []
        for field in ("output_file_id", "error_file_id"):
            if not batch.get(field):
                continue
            dest = self.backend.download(batch[field], self.state.files_dir / f"{chunk.name}.{field}")
            for raw in dest.read_text(encoding="utf-8").splitlines():
                try:
                    custom_id, completion, permanent = self.backend.parse_result_line(json.loads(raw))
                except (ValueError, AttributeError, RecursionError):
                    continue  # an unreadable line: its request counts as without result
                key = sent.get(custom_id)
                if key is None or custom_id in seen:
                    continue
                seen.add(custom_id)
                if completion.ok:
                    successes.append((key, completion.text, completion.tokens))
                else:
                    failures.append((key, completion.error, permanent))
        failures += [(key, f"no result in batch {batch.get('id')} ({status})", False)
                     for custom_id, key in sent.items() if custom_id not in seen]
        self.state.collect(chunk, status, successes, failures)
        cache = self.paraphraser.cache
        if cache is not None:
            for key, text, tokens in successes:
                cache.put(key, Completion(text, tokens=tokens))
        for path in [Path(chunk.path), *(self.state.files_dir / f"{chunk.name}.{f}"
                                         for f in ("output_file_id", "error_file_id"))]:
            path.unlink(missing_ok=True)
        self._say("collected", chunk, completed=len(successes), failed=len(failures))

    def _say(self, phase: str, chunk: Chunk, **counts: int) -> None:
        if self.report is not None:
            self.report(phase=phase, batch={"round": chunk.round, "file": chunk.name, "batch_id": chunk.batch_id,
                                            "status": chunk.status, "requests": chunk.requests, **counts})
