"""OpenAI-compatible chat-completions backend (OpenAI, vLLM, TGI, Ollama, llama.cpp server, ...).

The official ParaCLIP client sends one request at a time and sleeps 10 s (+ up to 1 s) after
any error, up to 10 tries. Here requests run concurrently (the engine keeps ``concurrency``
in flight) and failures are retried with exponential back-off and jitter, honouring
``Retry-After`` on 429/503. The API key is read from an environment variable *name*, or given
as ``api_key`` (an app's password field); it is never printed, logged, written, or shown in
``repr``. ``timeout`` bounds each whole request (a server dripping bytes cannot hold a record
forever) and a reply is read up to :data:`MAX_REPLY_BYTES`. :meth:`cancel` aborts the requests in
flight (see :mod:`.http`), so a stopped run ends in well under a second instead of waiting for its
slowest request.

A hosted app passes ``transport=`` (e.g. :class:`paraclip.netguard.GuardedTransport`, which refuses
internal addresses) and ``show_bodies=False``: errors then carry the HTTP status and a short
sanitized reason, never text from the reply.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlparse

import httpx

from paraclip.errors import ParaclipError
from paraclip.netguard import BlockedAddressError
from paraclip.paraphrase.backends.base import CANCELLED, Backend, ChatRequest, Completion, StopCheck, check_number
from paraclip.paraphrase.backends.http import AbortableClient, ReplyCut, ReplyTooLarge, RequestAborted

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRIABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524}
# A chat completion of a caption is a few hundred bytes; 4 MB leaves room for any sane max_tokens while
# a server sending megabytes of junk (twelve 20 MB replies took 131 s) fails its record quickly.
MAX_REPLY_BYTES = 4_000_000
# More tokens than any model's context holds: a larger (or NaN, or negative) usage count is not believed.
MAX_BELIEVABLE_TOKENS = 10_000_000
log = logging.getLogger(__name__)


class OpenAIAccount(Backend):
    """What the realtime and the batch OpenAI backends share: the model, the server, the key (kept only
    for the header and to scrub it from server messages), the request body's extras, and one abortable
    HTTP client that :meth:`cancel` interrupts."""

    def _open_account(self, model: str, base_url: str | None, api_key_env: str | None, key: str | None,
                      extra_body: dict[str, Any] | None, send_seed: bool, timeout: float, max_connections: int,
                      transport: httpx.BaseTransport | None = None, deadline: float | None = None,
                      max_reply_bytes: int | None = None) -> None:
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.key_source = f"the environment variable {api_key_env}" if api_key_env and not key else "the API key given"
        self._key = api_key(api_key_env, self.base_url, key)
        self.extra_body = dict(extra_body or {})
        self.send_seed = send_seed
        self._cancel = threading.Event()
        self._client = AbortableClient(auth_headers(self._key), timeout=float(timeout), max_connections=max_connections,
                                       transport=transport, deadline=deadline, max_reply_bytes=max_reply_bytes)

    def scrub(self, text: str) -> str:
        """``text`` (from the server) with the key masked."""
        return text.replace(self._key, "***") if self._key else text

    def cancel(self) -> None:
        self._cancel.set()
        self._client.abort()

    def uncancel(self) -> None:
        self._cancel.clear()

    def close(self) -> None:
        self._cancel.set()
        self._client.close()


class OpenAICompatibleBackend(OpenAIAccount):
    kind = "openai"

    def __init__(
        self,
        model: str = "gpt-3.5-turbo",
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",  # None: only ``api_key``, never the environment
        api_key: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        send_seed: bool = False,
        transport: httpx.BaseTransport | None = None,
        show_bodies: bool = True,
    ):
        check_number("concurrency", concurrency, minimum=1, integer=True)
        check_number("timeout", timeout, minimum=0, inclusive=False)
        check_number("max_retries", max_retries, minimum=0, integer=True)
        self._open_account(model, base_url, api_key_env, api_key, extra_body, send_seed, timeout, int(concurrency),
                           transport, deadline=float(timeout), max_reply_bytes=MAX_REPLY_BYTES)
        self.url = self.base_url if self.base_url.endswith("/chat/completions") else self.base_url + "/chat/completions"
        self.parallelism = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.show_bodies = show_bodies
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend(model={self.model!r}, url={self.url!r}, api_key_env={self.api_key_env!r})"

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "url": self.url, "extra_body": self.extra_body}

    # -- requests -------------------------------------------------------------------------------
    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``: exactly the paper's fields unless ``extra_body`` adds some."""
        return chat_body(self.model, request, self.send_seed, self.extra_body)

    def generate(self, requests: Sequence[ChatRequest], should_stop: StopCheck | None = None) -> list[Completion]:
        if len(requests) == 1:
            return [self._complete(requests[0], should_stop)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallelism, thread_name_prefix="paraclip-api")
        return list(self._pool.map(lambda r: self._complete(r, should_stop), requests))

    def _stopping(self, should_stop: StopCheck | None) -> bool:
        return self._cancel.is_set() or bool(should_stop is not None and should_stop())

    def _complete(self, request: ChatRequest, should_stop: StopCheck | None = None) -> Completion:
        body = self.body(request)
        last_error = "no attempt made"
        connected = False  # never reaching the server is fatal: every other request would fail too
        for attempt in range(self.max_retries + 1):
            if self._stopping(should_stop):
                return Completion(None, error=CANCELLED, attempts=attempt)
            retry_after = None
            try:
                response = self._client.post(self.url, should_stop, json=body)
            except RequestAborted:
                return Completion(None, error=CANCELLED, attempts=attempt + 1)
            except httpx.TimeoutException:
                last_error = f"timeout after {self.timeout:g} s (no complete reply by then)"
            except ReplyTooLarge as exc:  # the same request would get the same flood: not retried
                return Completion(None, attempts=attempt + 1, error=(
                    f"{exc}; stopped reading it. The server at {self.url} sends far more than a chat completion: "
                    f"check --base-url and max_tokens."))
            except ReplyCut as exc:
                connected = True
                last_error = str(exc)
            except httpx.RemoteProtocolError:
                connected = True
                last_error = "the server closed the connection before replying"
            except httpx.TransportError as exc:
                if isinstance(exc.__cause__, BlockedAddressError):
                    return Completion(None, attempts=attempt + 1, fatal=True, error=(
                        f"refused to connect to {self.url}: {exc.__cause__}"))
                last_error = f"connection error: {type(exc).__name__}"
            else:
                connected = True
                status = response.status_code
                if status == 200:
                    parsed = _parse_completion(response, self.show_bodies)
                    if isinstance(parsed, Completion):
                        parsed.attempts = attempt + 1
                        return parsed
                    last_error = parsed  # malformed: retry
                elif status in (401, 403):
                    return Completion(None, attempts=attempt + 1, fatal=True, error=(
                        f"HTTP {status} from {self.url}: the server refused the credentials. Check the API "
                        f"key in {self.key_source}."))
                elif status == 404:
                    return Completion(None, attempts=attempt + 1, fatal=True, error=(
                        f"HTTP 404 from {self.url}: {self._snippet(response)} Check --base-url and "
                        f"--model ({self.model!r})."))
                elif status in RETRIABLE_STATUS:
                    last_error = f"HTTP {status}: {self._snippet(response)}"
                    retry_after = _retry_after_seconds(response.headers.get("retry-after"))
                else:  # other 4xx: this request is wrong; retrying cannot help
                    return Completion(None, attempts=attempt + 1, error=f"HTTP {status}: {self._snippet(response)}")
            if attempt < self.max_retries:
                deadline = time.monotonic() + self._delay(attempt, retry_after)
                while not self._stopping(should_stop) and (left := deadline - time.monotonic()) > 0:
                    self._cancel.wait(min(left, 0.2))  # back-off in slices, so a stop is seen quickly
        if not connected and last_error.startswith("connection error"):
            return Completion(None, attempts=self.max_retries + 1, fatal=True, error=(
                f"cannot connect to {self.url} ({last_error}, {self.max_retries + 1} attempts). Is the server "
                f"running? Check --base-url."))
        return Completion(None, error=f"gave up after {self.max_retries + 1} attempts; last: {last_error}",
                          attempts=self.max_retries + 1)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter; a server's Retry-After wins (capped at ``backoff_max``)."""
        if retry_after is not None:
            return min(self.backoff_max, retry_after) + random.uniform(0, 0.1 * max(retry_after, 0.1))
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    def _snippet(self, response: httpx.Response) -> str:
        if not self.show_bodies:
            return _sanitized_reason(response)
        return self.scrub(response.text[:200].replace("\n", " ").strip()) or "(empty body)"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        super().close()


def chat_body(model: str, request: ChatRequest, send_seed: bool = False,
              extra_body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A chat-completions request body: the paper's fields (model, messages, temperature, top_p, max_tokens)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": request.message_dicts(),
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    if send_seed and request.seed is not None:
        body["seed"] = request.seed
    body.update(extra_body or {})
    return body


def api_key(api_key_env: str | None, url: str, key: str | None = None) -> str | None:
    """``key`` if given, else the environment variable named ``api_key_env``; required for openai.com hosts."""
    key = key or (os.environ.get(api_key_env) if api_key_env else None) or None
    host = urlparse(url).hostname or ""
    if key is None and host.endswith("openai.com"):
        if not api_key_env:
            raise ParaclipError(f"No API key: {url} needs one; enter your key.")
        raise ParaclipError(
            f"No API key: the environment variable {api_key_env} is not set. Set it (export "
            f"{api_key_env}=...) or choose another variable with --api-key-env; the key is never "
            f"written to disk or printed."
        )
    return key


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


_CODE = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _sanitized_reason(response: httpx.Response) -> str:
    """The status's reason phrase, plus an OpenAI-style error ``code``/``type`` when it is a plain
    identifier: enough to act on, and nothing a server could use to smuggle out data."""
    reason = response.reason_phrase or "no reason given"
    try:
        error = json.loads(response.content).get("error")
        code = (error.get("code") or error.get("type")) if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        code = None
    return f"{reason} ({code})" if isinstance(code, str) and _CODE.fullmatch(code) else reason


def _parse_completion(response: httpx.Response, show_body: bool = True) -> Completion | str:
    """A Completion, or a string saying what is malformed (quoting the reply only when ``show_body``)."""
    try:
        data = json.loads(response.content)
    except ValueError:
        if not show_body:
            return "malformed response: not an OpenAI chat completion"
        return f"malformed response: {response.text[:120]!r}"
    return parse_chat_completion(data, response.text, show_body)


def parse_chat_completion(data: Any, raw: str = "", show_body: bool = True) -> Completion | str:
    """A Completion from a chat-completion JSON object, or a string saying what is malformed."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        if not show_body:
            return "malformed response: not an OpenAI chat completion"
        return f"malformed response: {(raw or json.dumps(data))[:120]!r}"
    if not isinstance(content, str):
        return f"malformed response: message content is {type(content).__name__}"
    usage = data.get("usage") or {}
    return Completion(content, tokens=believable_tokens(usage.get("total_tokens") if isinstance(usage, dict) else None))


def believable_tokens(count: Any) -> int:
    """A server's ``total_tokens`` as an int, or 0 when it is missing or not believable (NaN, infinite,
    negative, beyond :data:`MAX_BELIEVABLE_TOKENS`): usage is untrusted input, it never ends a run."""
    if count is None:
        return 0
    if isinstance(count, (int, float)) and not isinstance(count, bool) and math.isfinite(count) \
            and 0 <= count <= MAX_BELIEVABLE_TOKENS:
        return int(count)
    log.warning("Ignored a token count the server reported (%.40r): not a number between 0 and %d.",
                count, MAX_BELIEVABLE_TOKENS)
    return 0


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
