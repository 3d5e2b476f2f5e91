"""A local OpenAI-compatible chat-completions server with fault injection, for tests, benchmarks and demos.

It "paraphrases" by rule (so results are deterministic and checkable, not meaningful):
step 1 answers ``An image showing <caption>.``, step 2 (a prompt that mentions avoiding
existing words) answers ``A photo depicting <text>.`` Faults are drawn per request from a
seeded RNG (latency, 429 with Retry-After, 500, hangs past the client's timeout, garbage
JSON, verbatim copies, an echo of the whole prompt) or scripted with ``script=["429", "echo",
...]`` for the next requests. Scripted-only faults of the reply itself: ``drip`` (one byte every
``drip_s``), ``cut`` (half the body, then the connection is closed), ``huge`` (a valid reply of
``huge_bytes``), ``nan_usage`` / ``huge_usage`` (an untrustworthy token count). ``events`` records
(name, time.monotonic()) for what the server did (``hang``, ``drip started``, ``cut``), so tests
wait for it and measure against the server's clock. ``replies={"fire hydrant": "A fire truck ..."}``
answers any prompt containing a key with its text. Every request body is recorded so tests can
check exactly what was sent.

    python -m paraclip.testing.mock_server --port 8000 --latency 0.2 --p429 0.05 --p500 0.02
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_QUOTED = re.compile(r'"(.*)"', re.S)


@dataclass
class Faults:
    latency: float = 0.0
    p429: float = 0.0
    retry_after: float = 0.2
    p500: float = 0.0
    p_hang: float = 0.0
    hang_s: float = 5.0
    p_garbage: float = 0.0
    p_copy: float = 0.0
    seed: int = 0
    drip_s: float = 0.5
    huge_bytes: int = 20_000_000
    script: list[str] = field(default_factory=list)  # forced outcomes for the next requests, consumed in order
    replies: dict[str, str] = field(default_factory=dict)  # prompt substring -> canned answer


def rule_paraphrase(prompt: str) -> str:
    found = _QUOTED.search(prompt)
    text = (found.group(1) if found else prompt.rsplit(":", 1)[-1]).strip().rstrip(".")
    if "existing words" in prompt or "different words" in prompt:
        return f"A photo depicting {text[0].lower() + text[1:] if text else text}."
    return f"An image showing {text}."


class LocalHTTPServer:
    """The one local HTTP server of the tests, benchmarks and demos: a threading server on 127.0.0.1 (port 0
    = a free one) answering with ``handler_class``. ``with Server(...) as server: server.base_url``.

    The OpenAI-compatible chat mock below, the Batch API fake and the tests' JSON and hub stand-ins are
    subclasses that only supply their handler.
    """

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        self._httpd = ThreadingHTTPServer((host, port), handler_class)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class MockChatServer(LocalHTTPServer):
    """Start with ``with MockChatServer(faults) as server: server.base_url``."""

    def __init__(self, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0,
                 record_bodies: bool = True, api_key: str | None = None):
        self.faults = faults or Faults()
        self.record_bodies = record_bodies
        self.api_key = api_key
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.counts: Counter = Counter()
        self.events: list[tuple[str, float]] = []
        self.event_seen = threading.Condition()
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        super().__init__(self._handler_class(), host, port)

    def _outcome(self) -> str:
        with self._lock:
            if self.faults.script:
                return self.faults.script.pop(0)
            r = self._rng.random()
        f = self.faults
        for name, p in (("429", f.p429), ("500", f.p500), ("hang", f.p_hang), ("garbage", f.p_garbage),
                        ("copy", f.p_copy)):
            if r < p:
                return name
            r -= p
        return "ok"

    def note(self, name: str) -> None:
        """Record that ``name`` happened now; :meth:`wait_for` wakes up."""
        with self.event_seen:
            self.events.append((name, time.monotonic()))
            self.event_seen.notify_all()

    def wait_for(self, name: str, timeout: float = 10.0, count: int = 1) -> float:
        """The server-clock time of the ``count``-th event ``name``, waiting up to ``timeout`` s for it."""
        with self.event_seen:
            if not self.event_seen.wait_for(lambda: sum(n == name for n, _ in self.events) >= count, timeout):
                raise TimeoutError(f"the server saw {name!r} fewer than {count} times in {timeout:g} s")
            return [t for n, t in self.events if n == name][count - 1]

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "no such endpoint"}}')
                    return
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    with server._lock:
                        server.counts["401"] += 1
                    self._send(401, b'{"error": {"message": "invalid api key"}}')
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, b'{"error": {"message": "body is not JSON"}}')
                    return
                outcome = server._outcome()
                with server._lock:
                    server.counts[outcome] += 1
                    server.counts["requests"] += 1
                    if server.record_bodies:
                        server.bodies.append(body)
                        server.headers.append(dict(self.headers))
                if server.faults.latency:
                    with server._lock:  # how many requests the server holds at once (the client's real concurrency)
                        server.in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    time.sleep(server.faults.latency)
                    with server._lock:
                        server.in_flight -= 1
                if outcome == "429":
                    self._send(429, b'{"error": {"message": "rate limited"}}',
                               {"Retry-After": f"{server.faults.retry_after:g}"})
                    return
                if outcome == "500":
                    self._send(500, b'{"error": {"message": "internal error"}}')
                    return
                if outcome == "hang":
                    server.note("hang")
                    time.sleep(server.faults.hang_s)  # the fault itself: a server that does not answer
                if outcome == "garbage":
                    self._send(200, b'{"choices": [{"mess')
                    return
                prompt = body["messages"][-1]["content"]
                canned = [v for k, v in server.faults.replies.items() if k in prompt]
                if outcome == "copy":
                    found = _QUOTED.search(prompt)
                    content = found.group(1) if found else prompt
                elif outcome == "echo":  # a small model repeating the instruction instead of answering
                    content = prompt
                elif canned:
                    content = canned[0]
                else:
                    content = rule_paraphrase(prompt)
                reply = {
                    "id": f"mock-{server.counts['requests']}",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content.split()),
                              "total_tokens": len(prompt.split()) + len(content.split())},
                }
                if outcome == "nan_usage":
                    reply["usage"]["total_tokens"] = float("nan")  # json.dumps writes NaN, as some servers do
                elif outcome == "huge_usage":
                    reply["usage"]["total_tokens"] = 10**30
                elif outcome == "huge":
                    reply["choices"][0]["message"]["content"] = "x" * server.faults.huge_bytes
                payload = json.dumps(reply).encode()
                if outcome == "drip":
                    self._drip(payload)
                elif outcome == "cut":
                    self._cut(payload)
                else:
                    self._send(200, payload)

            def _drip(self, payload: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                server.note("drip started")
                try:
                    for i in range(len(payload)):
                        self.wfile.write(payload[i:i + 1])
                        time.sleep(server.faults.drip_s)  # the fault itself: a slow server, not a test wait
                except (BrokenPipeError, ConnectionResetError):
                    server.note("drip abandoned by the client")
                self.close_connection = True

            def _cut(self, payload: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                server.note("cut")

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible mock server with fault injection.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    for name in ("latency", "p429", "retry_after", "p500", "p_hang", "hang_s", "p_garbage", "p_copy"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(Faults(), name))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    faults = Faults(**{k: v for k, v in vars(args).items() if k not in ("host", "port")})
    server = MockChatServer(faults, args.host, args.port, record_bodies=False)
    print(f"serving {server.base_url}", flush=True)
    server._httpd.serve_forever()


if __name__ == "__main__":
    main()
