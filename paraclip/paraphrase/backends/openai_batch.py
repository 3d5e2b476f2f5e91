"""OpenAI Batch API backend: requests go in JSONL files that are run within 24 h at half price.

For web-scale caption sets (the paper paraphrased millions of captions) a realtime client
hits rate limits; the Batch API (https://platform.openai.com/docs/guides/batch) takes a file
of chat-completions requests, runs it within a 24 h window at 50 % of the realtime price and
returns an output file and an error file, matched to requests by ``custom_id``. Limits, from
the API reference ("Create batch", ``input_file_id``): at most 50,000 requests and 200 MB per
input file, uploaded to ``/v1/files`` with purpose ``batch``; ``completion_window`` "24h".

This module is the HTTP client (upload, create, look up, poll with back-off, download, parse
result lines). :mod:`paraclip.paraphrase.batch` drives a whole run through it (state, rounds,
follow-up batches, exact resume); the engine starts that run because the backend declares
``runs_batches``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import httpx

from paraclip.errors import ParaclipError
from paraclip.paraphrase.backends.base import CANCELLED, ChatRequest, Completion, StopCheck, check_number
from paraclip.paraphrase.backends.http import RequestAborted
from paraclip.paraphrase.batch import BatchAPIError
from paraclip.paraphrase.backends.openai_compat import (RETRIABLE_STATUS, OpenAIAccount, chat_body,
                                                        parse_chat_completion)

MAX_REQUESTS_PER_FILE = 50_000
MAX_FILE_BYTES = 190_000_000  # the documented limit is 200 MB; a margin for MB vs MiB
ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")


class TransientAPIError(BatchAPIError):
    """Connection errors, timeouts, 429 or 5xx, still failing after the retries."""


class OpenAIBatchBackend(OpenAIAccount):
    kind = "openai-batch"
    runs_batches = True  # a run goes through paraclip.paraphrase.batch.BatchRun (see the engine)

    def __init__(
        self,
        model: str = "gpt-3.5-turbo",
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        api_key: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 2,
        poll_interval: float = 10.0,
        poll_max: float = 300.0,
        http_retries: int = 6,
        max_requests_per_file: int = MAX_REQUESTS_PER_FILE,
        max_file_bytes: int = MAX_FILE_BYTES,
        prices: tuple[float, float] | None = None,
        confirm: Callable[[Any], bool] | None = None,
        dry_run: bool = False,
        extra_body: dict[str, Any] | None = None,
        send_seed: bool = False,
        concurrency: int | None = None,  # accepted for symmetry with the realtime backend; batches need none
    ):
        check_number("timeout", timeout, minimum=0, inclusive=False)
        check_number("max_retries", max_retries, minimum=0, integer=True)
        check_number("poll_interval", poll_interval, minimum=0, inclusive=False)
        check_number("max_requests_per_file", max_requests_per_file, minimum=1, integer=True)
        check_number("max_file_bytes", max_file_bytes, minimum=1024, integer=True)
        if max_requests_per_file > MAX_REQUESTS_PER_FILE or max_file_bytes > 200_000_000:
            raise ParaclipError(f"A batch file holds at most {MAX_REQUESTS_PER_FILE} requests and 200 MB (OpenAI's "
                                f"limits); got {max_requests_per_file} requests / {max_file_bytes} bytes.")
        self._open_account(model, base_url, api_key_env, api_key, extra_body, send_seed, timeout, 4)
        self.max_retries = int(max_retries)  # follow-up batches per failed request
        self.poll_interval = float(poll_interval)
        self.poll_max = max(float(poll_max), self.poll_interval)
        self.http_retries = int(http_retries)
        self.max_requests_per_file = int(max_requests_per_file)
        self.max_file_bytes = int(max_file_bytes)
        self.prices = prices
        self.confirm = confirm
        self.dry_run = dry_run

    def __repr__(self) -> str:
        return f"OpenAIBatchBackend(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def identity(self) -> dict[str, Any]:
        # the same as the realtime backend's for the same server and model: a completion cached by
        # either is reused by the other (same requests, same sampling)
        return {"kind": "openai", "model": self.model, "url": self.base_url + "/chat/completions",
                "extra_body": self.extra_body}

    # -- request files ------------------------------------------------------------------------
    def request_line(self, custom_id: str, request: ChatRequest) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT,
                "body": chat_body(self.model, request, self.send_seed, self.extra_body)}

    @staticmethod
    def parse_result_line(obj: dict[str, Any]) -> tuple[str, Completion, bool]:
        """(custom_id, completion, permanent) for one line of an output or error file.

        ``permanent``: the request itself is wrong (a 4xx other than 408/409/429): resending cannot help.
        """
        custom_id = str(obj.get("custom_id"))
        response = obj.get("response") or {}
        error = obj.get("error")
        status = response.get("status_code") if isinstance(response, dict) else None
        if status == 200 and not error:
            parsed = parse_chat_completion(response.get("body"))
            if isinstance(parsed, Completion):
                return custom_id, parsed, False
            return custom_id, Completion(None, error=parsed), False
        if isinstance(error, dict):
            message = f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
        else:
            body = response.get("body") if isinstance(response, dict) else None
            detail = body.get("error", {}).get("message") if isinstance(body, dict) and isinstance(
                body.get("error"), dict) else None
            message = f"HTTP {status}: {detail or 'no message'}"
        permanent = isinstance(status, int) and 400 <= status < 500 and status not in RETRIABLE_STATUS
        return custom_id, Completion(None, error=message), permanent

    # -- API calls ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, retries: int | None = None, **kwargs: Any) -> httpx.Response:
        """One API call, retried (``retries``, default ``http_retries``) with back-off on connection errors, 429, 5xx."""
        url = self.base_url + path
        retries = self.http_retries if retries is None else retries
        last = ""
        for attempt in range(retries + 1):
            if self._cancel.is_set():
                raise RequestAborted("stopped")
            try:
                response = self._client.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__} ({exc})"
            else:
                if response.status_code < 400:
                    return response
                snippet = response.text[:300].replace("\n", " ").strip()
                snippet = self.scrub(snippet)
                if response.status_code in (401, 403):
                    raise BatchAPIError(f"HTTP {response.status_code} from {url}: the server refused the "
                                        f"credentials. Check {self.key_source}.")
                if response.status_code not in RETRIABLE_STATUS:
                    raise BatchAPIError(f"HTTP {response.status_code} from {method} {url}: {snippet or '(empty)'}")
                last = f"HTTP {response.status_code}: {snippet}"
            if attempt < retries:
                self._backoff(attempt)
        raise TransientAPIError(f"{method} {url} failed {retries + 1} times; last: {last}. Is the server reachable? "
                                f"Rerun to resume: nothing finished is lost.")

    def _backoff(self, attempt: int) -> None:
        self._cancel.wait(random.uniform(0.5, 1.0) * min(30.0, 0.5 * 2 ** attempt))

    def _json(self, method: str, path: str, retries: int | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, path, retries, **kwargs)
        try:
            data = response.json()
        except ValueError:
            raise BatchAPIError(f"{method} {self.base_url + path}: the answer is not JSON: "
                                f"{response.text[:120]!r}") from None
        if not isinstance(data, dict):
            raise BatchAPIError(f"{method} {self.base_url + path}: expected a JSON object, got {type(data).__name__}.")
        return data

    def upload(self, path: Path, name: str) -> dict[str, Any]:
        with open(path, "rb") as f:
            return self._json("POST", "/files", data={"purpose": "batch"},
                              files={"file": (name, f, "application/jsonl")})

    def find_file(self, name: str, size: int) -> dict[str, Any] | None:
        """An uploaded batch file with this name and size (an upload whose answer was lost), or None."""
        after = None
        while True:
            params = {"purpose": "batch", "limit": 10000, **({"after": after} if after else {})}
            page = self._json("GET", "/files", params=params)
            data = page.get("data") or []
            for item in data:
                if item.get("filename") == name and item.get("bytes") == size:
                    return item
            if not page.get("has_more") or not data:
                return None
            after = data[-1].get("id")

    def create_batch(self, file_id: str, metadata: dict[str, str], since: float = 0.0) -> dict[str, Any]:
        """Create a batch (endpoint /v1/chat/completions, 24 h window).

        When a try fails without telling whether the batch was made (timeout, connection, 5xx), the
        batch is looked up before the next try, so one file never becomes two paid batches.
        """
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h", "metadata": metadata}
        attempt = 0
        while True:
            try:
                return self._json("POST", "/batches", retries=0, json=body)
            except TransientAPIError:
                found = self.find_batch(file_id, since)
                if found is not None:
                    return found
                if attempt >= self.http_retries:
                    raise
            self._backoff(attempt)
            attempt += 1

    def find_batch(self, file_id: str, since: float) -> dict[str, Any] | None:
        """The batch created from ``file_id`` (a create whose answer was lost), or None. Newest first."""
        after = None
        while True:
            page = self._json("GET", "/batches", params={"limit": 100, **({"after": after} if after else {})})
            data = page.get("data") or []
            for item in data:
                if item.get("input_file_id") == file_id:
                    return item
            if not page.get("has_more") or not data or min(b.get("created_at", 0) for b in data) < since - 3600:
                return None
            after = data[-1].get("id")

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        return self._json("GET", f"/batches/{batch_id}")

    def download(self, file_id: str, dest: Path) -> Path:
        """Write a file's content to ``dest`` atomically (a killed download leaves nothing half-written)."""
        content = self._call("GET", f"/files/{file_id}/content").content
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(content)
        os.replace(tmp, dest)
        return dest

    def wait(self, batch_id: str, should_stop: Callable[[], bool] | None = None,
             on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any] | None:
        """Poll until the batch is terminal (back-off from ``poll_interval`` to ``poll_max``); None if stopped."""
        delay = self.poll_interval
        while True:
            batch = self.get_batch(batch_id)
            if on_poll is not None:
                on_poll(batch)
            if batch.get("status") in TERMINAL:
                return batch
            if self._sleep(delay, should_stop):
                return None
            delay = min(self.poll_max, delay * 1.5)

    def _sleep(self, seconds: float, should_stop: Callable[[], bool] | None) -> bool:
        """Sleep, waking every 0.2 s to check for a stop; True when stopped."""
        deadline = time.monotonic() + seconds
        while True:
            if self._cancel.is_set() or (should_stop is not None and should_stop()):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._cancel.wait(min(0.2, left))

    # -- Backend interface --------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest], should_stop: StopCheck | None = None) -> list[Completion]:
        """One batch for these requests, waited for (minutes to hours): for a few requests; a run goes through
        :class:`~paraclip.paraphrase.batch.BatchRun` (the engine does that, as ``runs_batches`` says)."""
        try:
            with tempfile.TemporaryDirectory(prefix="paraclip-batch-") as tmp:
                path = Path(tmp) / "requests.jsonl"
                path.write_text("".join(json.dumps(self.request_line(f"r{i}", r)) + "\n"
                                        for i, r in enumerate(requests)))
                uploaded = self.upload(path, path.name)
                batch = self.wait(self.create_batch(uploaded["id"], {"paraclip": "generate"})["id"])
                if batch is None:
                    return [Completion(None, error=CANCELLED) for _ in requests]
                found: dict[str, Completion] = {}
                for key in ("output_file_id", "error_file_id"):
                    if batch.get(key):
                        for line in self.download(batch[key], Path(tmp) / key).read_text().splitlines():
                            if line.strip():
                                custom_id, completion, _ = self.parse_result_line(json.loads(line))
                                found[custom_id] = completion
        except RequestAborted:
            return [Completion(None, error=CANCELLED) for _ in requests]
        except BatchAPIError as exc:
            return [Completion(None, error=str(exc), fatal=True) for _ in requests]
        missing = Completion(None, error=f"no result (batch {batch.get('status')})")
        return [found.get(f"r{i}", missing) for i in range(len(requests))]
