"""Real HTTP on 127.0.0.1 for the tests: a free port, a local server answering every POST with JSON,
and one call of a launched Gradio app's API over plain HTTP (the way any visitor's script can)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import httpx

from paraclip.testing.mock_server import LocalHTTPServer

CHAT_REPLY = "A picture of a red circle."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_completion(text: str = CHAT_REPLY) -> tuple[int, dict, dict]:
    """A 200 answer shaped like an OpenAI chat completion."""
    return 200, {}, {"choices": [{"message": {"content": text}}]}


class JsonServer(LocalHTTPServer):
    """The project's local server (:class:`LocalHTTPServer`) answering every POST with ``respond(path)``:
    (status, headers, JSON body or None). ``paths`` records each request's path, so a refused URL is
    proven never contacted; ``url`` is its ``/v1`` base URL. Running from construction to ``close()``."""

    def __init__(self, respond: Callable[[str], tuple[int, dict, dict | None]] = lambda path: chat_completion(),
                 host: str = "127.0.0.1"):
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.paths.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, body = respond(self.path)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, **({"Content-Type": "application/json"} if payload else {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler, host)
        self.port = self._httpd.server_address[1]
        self.url = self.base_url
        self.start()

    @property
    def hits(self) -> int:
        return len(self.paths)

    def close(self):
        self.stop()


def call_api(url: str, api: str, data: list, timeout: float = 120) -> tuple[str, str]:
    """(last event name, the whole event stream as text) of one ``POST /gradio_api/call/<api>`` and
    its event stream; ("rejected", the reply) when the POST itself is refused."""
    with httpx.Client(timeout=timeout) as http:
        response = http.post(f"{url}gradio_api/call/{api}", json={"data": data})
        if response.status_code != 200:
            return "rejected", response.text
        event_id = response.json()["event_id"]
        text, last = "", ""
        with http.stream("GET", f"{url}gradio_api/call/{api}/{event_id}") as stream:
            for line in stream.iter_lines():
                text += line + "\n"
                if line.startswith("event:"):
                    last = line.split(":", 1)[1].strip()
                if last in ("complete", "error") and line.startswith("data:"):
                    break
    return last, text
