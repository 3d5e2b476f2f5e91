"""A local fake of OpenAI's files + batches (+ chat completions) endpoints, with faults, on 127.0.0.1.

It follows the documented protocol: multipart upload to ``/v1/files`` (purpose ``batch``),
``/v1/batches`` (create, get, list; statuses validating -> in_progress -> finalizing ->
completed | failed | expired), ``/v1/files/{id}/content``, result lines with ``custom_id``,
``response.status_code``/``body`` or ``error``. Requests are answered by the mock server's
rule (``An image showing <caption>.`` / ``A photo depicting <text>.``), so outputs are checkable.

Faults: per batch, in creation order (``batch_faults=["expire", "partial", "fail_validation"]``);
per request, seeded (``p_fail`` 500s, ``p_copy`` outputs that copy their input); slow batches
(``polls_to_complete``); and ``delays`` that hold a stage open (``upload``, ``create``,
``download``: seconds the server waits before answering, or mid-answer for downloads) so a test
can kill the client there. ``events`` say when each stage was reached.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from paraclip.testing.mock_server import _QUOTED, LocalHTTPServer, rule_paraphrase

STAGES = ("upload", "create", "in_progress", "download", "step2")


class FakeOpenAI(LocalHTTPServer):
    """``with FakeOpenAI(polls_to_complete=3) as api: api.base_url``."""

    def __init__(self, api_key: str | None = None, polls_to_complete: int = 2, batch_faults=(), p_fail: float = 0.0,
                 p_copy: float = 0.0, seed: int = 0, max_requests_per_file: int = 50_000,
                 max_file_bytes: int = 200_000_000, known_models=None, delays: dict[str, float] | None = None):
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.batch_faults = list(batch_faults)
        self.p_fail, self.p_copy = p_fail, p_copy
        self.max_requests_per_file, self.max_file_bytes = max_requests_per_file, max_file_bytes
        self.known_models = set(known_models) if known_models else None
        self.delays = dict(delays or {})
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, str] = {}  # batch id -> its scripted fault
        self.polls: Counter = Counter()
        self.poll_times: dict[str, list[float]] = {}
        self.submitted: Counter = Counter()  # custom_id -> batches it was submitted in
        self.counts: Counter = Counter()
        self.events = {stage: threading.Event() for stage in STAGES}
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    # -- files ----------------------------------------------------------------------------------
    def add_file(self, name: str, content: bytes, purpose: str) -> dict[str, Any]:
        with self._lock:
            meta = {"id": self._new_id("file"), "object": "file", "bytes": len(content),
                    "created_at": int(time.time()), "filename": name, "purpose": purpose}
            self.files[meta["id"]] = meta
            self.contents[meta["id"]] = content
        return meta

    def list_page(self, items: list[dict], query: dict[str, list[str]]) -> dict[str, Any]:
        items = sorted(items, key=lambda x: (x["created_at"], x["id"]), reverse=True)  # newest first
        after = query.get("after", [None])[0]
        if after:
            ids = [x["id"] for x in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        limit = int(query.get("limit", ["20"])[0])
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}

    # -- batches --------------------------------------------------------------------------------
    def create_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return 400, {"error": {"message": f"no file {file_id}", "type": "invalid_request_error"}}
        if body.get("completion_window") != "24h" or body.get("endpoint") != "/v1/chat/completions":
            return 400, {"error": {"message": "unsupported endpoint or completion window"}}
        lines = self.contents[file_id].decode().splitlines()
        with self._lock:
            batch = {"id": self._new_id("batch"), "object": "batch", "endpoint": body["endpoint"],
                     "input_file_id": file_id, "completion_window": "24h", "status": "validating",
                     "created_at": int(time.time()), "metadata": body.get("metadata"), "errors": None,
                     "output_file_id": None, "error_file_id": None,
                     "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
            self.batches[batch["id"]] = batch
            self.faults[batch["id"]] = self.batch_faults.pop(0) if self.batch_faults else "ok"
            for line in lines:
                try:
                    self.submitted[json.loads(line)["custom_id"]] += 1
                except (ValueError, KeyError):
                    pass
        return 200, batch

    def poll(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches[batch_id]
            self.polls[batch_id] += 1
            self.poll_times.setdefault(batch_id, []).append(time.monotonic())
            polls = self.polls[batch_id]
            fault = self.faults[batch_id]
        if batch["status"] == "validating" and polls >= 1:
            errors = self._validate(batch, fault)
            if errors:
                batch.update(status="failed", errors={"object": "list", "data": errors}, failed_at=int(time.time()))
            else:
                batch.update(status="in_progress", in_progress_at=int(time.time()))
        if batch["status"] == "in_progress":
            if polls >= self.polls_to_complete:
                self._finish(batch, fault)
            else:
                self.events["in_progress"].set()
        return dict(batch)

    def _validate(self, batch: dict[str, Any], fault: str) -> list[dict[str, Any]]:
        if fault == "fail_validation":
            return [{"code": "invalid_request", "message": "scripted validation failure", "line": 1, "param": None}]
        content = self.contents[batch["input_file_id"]]
        lines = content.decode().splitlines()
        if len(lines) > self.max_requests_per_file:
            return [{"code": "too_many_requests", "message": f"{len(lines)} requests > {self.max_requests_per_file}"}]
        if len(content) > self.max_file_bytes:
            return [{"code": "file_too_large", "message": f"{len(content)} bytes > {self.max_file_bytes}"}]
        errors, seen = [], set()
        for n, line in enumerate(lines, 1):
            try:
                req = json.loads(line)
                model = req["body"]["model"]
                custom_id = req["custom_id"]
            except (ValueError, KeyError, TypeError):
                errors.append({"code": "invalid_json_line", "message": "not a request line", "line": n})
                continue
            if req.get("method") != "POST" or req.get("url") != batch["endpoint"]:
                errors.append({"code": "invalid_request", "message": "method/url mismatch", "line": n})
            if custom_id in seen:
                errors.append({"code": "duplicate_custom_id", "message": custom_id, "line": n})
            seen.add(custom_id)
            if self.known_models is not None and model not in self.known_models:
                errors.append({"code": "model_not_found", "message": f"The model '{model}' does not exist", "line": n})
        return errors

    def _finish(self, batch: dict[str, Any], fault: str) -> None:
        outputs, errors = [], []
        lines = self.contents[batch["input_file_id"]].decode().splitlines()
        for n, line in enumerate(lines):
            req = json.loads(line)
            rid = self._new_id("batch_req")
            with self._lock:
                r = self._rng.random()
            if fault == "expire" and n % 2 == 1:
                errors.append({"id": rid, "custom_id": req["custom_id"], "response": None, "error": {
                    "code": "batch_expired", "message": "This request could not be executed before the completion "
                                                        "window expired."}})
            elif (fault == "partial" and n % 3 == 0) or r < self.p_fail:
                errors.append({"id": rid, "custom_id": req["custom_id"], "error": None, "response": {
                    "status_code": 500, "request_id": rid, "body": {"error": {"message": "internal error",
                                                                              "type": "server_error"}}}})
            else:
                prompt = req["body"]["messages"][-1]["content"]
                quoted = _QUOTED.search(prompt)
                copy = quoted.group(1) if quoted else prompt  # a model that returns its input unchanged
                content = copy if r < self.p_fail + self.p_copy else rule_paraphrase(prompt)
                outputs.append({"id": rid, "custom_id": req["custom_id"], "error": None, "response": {
                    "status_code": 200, "request_id": rid, "body": {
                        "object": "chat.completion", "model": req["body"]["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}}}})
        for field, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                data = "".join(json.dumps(x) + "\n" for x in rows).encode()
                batch[field] = self.add_file(f"{batch['id']}_{field}.jsonl", data, "batch_output")["id"]
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        batch["status"] = "expired" if fault == "expire" else "completed"
        batch["completed_at" if batch["status"] == "completed" else "expired_at"] = int(time.time())

    # -- HTTP -----------------------------------------------------------------------------------
    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: Any, split_delay: float = 0.0):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if split_delay:  # half the body, a pause (a client can be killed mid-download), the rest
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        time.sleep(split_delay)
                        self.wfile.write(data[len(data) // 2:])
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _authorised(self) -> bool:
                if api.api_key and self.headers.get("Authorization") != f"Bearer {api.api_key}":
                    self._send(401, {"error": {"message": "invalid api key"}})
                    return False
                return True

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                parts = url.path.rstrip("/").split("/")[2:]  # after /v1
                if not self._authorised():
                    return
                with api._lock:
                    api.counts[f"GET /{parts[0] if parts else ''}"] += 1
                if parts == ["files"]:
                    purpose = query.get("purpose", [None])[0]
                    items = [f for f in api.files.values() if purpose in (None, f["purpose"])]
                    self._send(200, api.list_page(items, query))
                elif len(parts) == 3 and parts[0] == "files" and parts[2] == "content" and parts[1] in api.contents:
                    api.events["download"].set()
                    self._send(200, api.contents[parts[1]], split_delay=api.delays.get("download", 0.0))
                elif parts == ["batches"]:
                    self._send(200, api.list_page(list(api.batches.values()), query))
                elif len(parts) == 2 and parts[0] == "batches" and parts[1] in api.batches:
                    self._send(200, api.poll(parts[1]))
                else:
                    self._send(404, {"error": {"message": f"no such object: {url.path}"}})

            def do_POST(self):
                url = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self._authorised():
                    return
                path = url.path.rstrip("/")
                with api._lock:
                    api.counts[f"POST {path}"] += 1
                if path.endswith("/files"):
                    self._upload(raw)
                elif path.endswith("/batches"):
                    status, batch = api.create_batch(json.loads(raw))
                    api.events["create"].set()
                    time.sleep(api.delays.get("create", 0.0))
                    self._send(status, batch)
                elif path.endswith("/chat/completions"):
                    prompt = json.loads(raw)["messages"][-1]["content"]
                    self._send(200, {"object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": rule_paraphrase(prompt)}}],
                        "usage": {"total_tokens": 30}})
                else:
                    self._send(404, {"error": {"message": "no such endpoint"}})

            def _upload(self, raw: bytes):
                head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
                fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
                if "file" not in fields or fields.get("purpose") is None:
                    self._send(400, {"error": {"message": "need multipart fields 'file' and 'purpose'"}})
                    return
                purpose = fields["purpose"].get_content().strip()
                content = fields["file"].get_payload(decode=True)
                meta = api.add_file(fields["file"].get_filename(), content, purpose)
                api.events["upload"].set()
                if b"-s2-" in content:
                    api.events["step2"].set()
                time.sleep(api.delays.get("upload", 0.0))
                self._send(200, meta)

        return Handler

