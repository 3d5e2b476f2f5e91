"""Public mode, attacked over plain HTTP: the app launched on 127.0.0.1 as on a Space, and driven the
way any visitor's script can (``POST /gradio_api/call/<api>``, then the event stream).

Server files outside the allowed folders are refused without being read (``/etc/passwd``, a ``.env``
holding a key, ``..`` and symlink escapes), errors never quote a file, and the Paraphrase tab's API
base URL cannot reach loopback, a local server, the metadata address or a name resolving to
loopback — while the allowed folder and the allow-listed host work.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .api_client import call

FAKE_KEY = "sk-FAKE-7f3e9a1c2b8d4e6f0a5b"
BODY_SECRET = "internal-reply-body-3c9d"
ALLOWED_API_HOST = "127.0.0.2"  # the whole 127/8 is loopback on Linux: a second loopback host to allow-list


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingServer:
    """Answers every request: ``mode="chat"`` a chat completion, ``"teapot"`` a 418 whose body must
    never reach the visitor. ``hits`` counts requests, so a refused URL is proven never contacted."""

    def __init__(self, host: str, mode: str):
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if mode == "teapot":
                    status, body = 418, {"error": {"message": BODY_SECRET, "code": "teapot_error"}}
                else:
                    status, body = 200, {"choices": [{"message": {"content": "A picture of a red circle."}}]}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An allowed data folder (PARACLIP_APP_DATA_DIRS) and, outside it, a .env with a fake key."""
    root = tmp_path_factory.mktemp("public")
    allowed, outside = root / "allowed", root / "outside"
    allowed.mkdir()
    outside.mkdir()
    env_file = outside / ".env"
    env_file.write_text(f"OPENAI_API_KEY={FAKE_KEY}\n", encoding="utf-8")
    (allowed / "pairs.csv").write_text("original,paraphrase\na small red circle,one little red circle\n"
                                       "two blue squares,a pair of blue squares\n", encoding="utf-8")
    (allowed / "keys.csv").write_text(f"OPENAI_API_KEY={FAKE_KEY}\nline two\n", encoding="utf-8")
    (allowed / "escape.csv").symlink_to(env_file)
    return {"allowed": allowed, "outside": outside, "env": env_file}


@pytest.fixture(scope="module")
def public_app(files, tmp_path_factory):
    from workbench.app import build_demo, launch_kwargs
    from workbench.services import AppConfig, Services

    saved = {k: os.environ.get(k) for k in ("PARACLIP_APP_DATA_DIRS", "PARACLIP_APP_ALLOWED_API_HOSTS")}
    os.environ["PARACLIP_APP_DATA_DIRS"] = str(files["allowed"])
    os.environ["PARACLIP_APP_ALLOWED_API_HOSTS"] = ALLOWED_API_HOST
    try:
        services = Services(AppConfig(app_dir=tmp_path_factory.mktemp("public-app"), public=True, gallery_size=24,
                                      build_defaults=False, max_jobs=1))
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    demo = build_demo(services)
    assert services.defaults.wait(300), services.defaults.message
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_kwargs(services))
    yield services, f"http://127.0.0.1:{port}/"
    demo.close()
    services.runner.cancel_all()


def first_output(stream: str) -> str:
    """The first output (the status message) of the last data line."""
    data = [line[5:].strip() for line in stream.splitlines() if line.startswith("data:")]
    return json.loads(data[-1])[0]


def defaults(services) -> tuple[str, str, str]:
    models = services.defaults.model_choices()
    return models[0].label, models[1].label, next(iter(services.defaults.gallery_choices()))


def compare_call(url, services, pairs="", gallery=None, baseline=None, task="paraphrased-retrieval"):
    base, other, default_gallery = defaults(services)
    label = {"paraphrased-retrieval": "paraphrased retrieval AO@k / JS@k (gallery + pairs)",
             "retrieval": "zero-shot retrieval (gallery)"}[task]
    return call(url, "compare", [baseline or base, [other], [label], gallery or default_gallery, pairs, "1,5", 48])


def assert_refused(event: str, stream: str):
    assert FAKE_KEY not in stream and "root:x:0" not in stream
    assert event == "complete", stream[-2000:]
    message = first_output(stream)
    assert message.startswith("❌") and "public" in message, message


@pytest.mark.parametrize("target", ["/etc/passwd", "env", "dotdot", "symlink"])
def test_compare_pairs_box_reads_no_server_file(public_app, files, target):
    services, url = public_app
    path = {"/etc/passwd": "/etc/passwd", "env": str(files["env"]),
            "dotdot": f"{files['allowed']}/../outside/.env", "symlink": str(files["allowed"] / "escape.csv")}[target]
    assert_refused(*compare_call(url, services, pairs=path))


def test_a_file_in_the_allowed_folder_works_and_errors_never_quote_it(public_app, files):
    services, url = public_app
    event, stream = compare_call(url, services, pairs=str(files["allowed"] / "pairs.csv"))
    assert event == "complete" and first_output(stream).startswith("✅"), stream[-2000:]
    assert "AO@" in stream
    # a readable file that is not a pairs file: the message names file and line, not the line's text
    event, stream = compare_call(url, services, pairs=str(files["allowed"] / "keys.csv"))
    message = first_output(stream)
    assert FAKE_KEY not in stream and "OPENAI_API_KEY" not in stream
    assert message.startswith("❌") and "keys.csv:2" in message and "file content hidden" in message, message


@pytest.mark.parametrize("box", ["gallery", "baseline", "baseline-pretrained"])
def test_compare_model_and_gallery_boxes_read_no_server_file(public_app, files, box):
    services, url = public_app
    env = str(files["env"])
    kwargs = {"gallery": {"gallery": str(files["outside"])}, "baseline": {"baseline": env},
              "baseline-pretrained": {"baseline": f"paraclip-mini@{env}"}}[box]
    assert_refused(*compare_call(url, services, task="retrieval", **kwargs))


@pytest.mark.parametrize("box", ["gallery", "model"])
def test_explore_boxes_read_no_server_file(public_app, files, box):
    services, url = public_app
    base, other, gallery = defaults(services)
    if box == "gallery":
        gallery = "/etc"
    else:
        base = str(files["env"])
    event, stream = call(url, "explore", [base, other, gallery, "a red circle", "one red circle", 5])
    assert FAKE_KEY not in stream and event == "complete"
    assert "public" in first_output(stream) and "❌" in first_output(stream)


@pytest.mark.parametrize("field", ["data", "images", "model"])
def test_train_boxes_read_no_server_file(public_app, files, field):
    services, url = public_app
    base, _, gallery = defaults(services)
    data, images, model = str(files["allowed"] / "pairs.csv"), gallery, base
    if field == "data":
        data = str(files["env"])
    elif field == "images":
        images = str(files["outside"])
    else:
        model = f"{files['allowed']}/../outside/.env"
    before = len(services.runner.list())
    event, stream = call(url, "start_training", [model, data, None, images, 5, 4, 1e-4, "paraclip", "", 0, "cpu",
                                                 "attack"])
    assert_refused(event, stream)
    assert len(services.runner.list()) == before, "no job may start"


def test_an_upload_cannot_name_a_server_file(public_app):
    services, url = public_app
    base, _, gallery = defaults(services)
    event, stream = call(url, "start_training", [base, "", {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
                                                 gallery, 5, 4, 1e-4, "paraclip", "", 0, "cpu", "upload"])
    assert "root:x:0" not in stream
    assert event == "error" or first_output(stream).startswith("❌"), stream[-2000:]


def paraphrase_call(url, base_url, local_model=""):
    backend = "OpenAI-compatible API" if base_url else "local (offline LLM)"
    return call(url, "paraphrase", ["a small red circle\ntwo blue squares", None, backend, local_model, base_url,
                                    "mock", "", "paper", "", "", 1.0, 0.1, 64, 0, "all"])


def test_paraphrase_local_model_box_reads_no_server_file(public_app, files):
    _, url = public_app
    assert_refused(*paraphrase_call(url, "", local_model=str(files["env"])))


@pytest.fixture(scope="module")
def local_server():
    server = RecordingServer("127.0.0.1", "chat")
    yield server
    server.close()


@pytest.mark.parametrize("target", ["loopback", "local-server", "ipv6-loopback", "localhost", "metadata",
                                    "metadata-name", "private", "file"])
def test_api_base_url_cannot_reach_internal_addresses(public_app, local_server, target):
    _, url = public_app
    port = local_server.url.split(":")[2].split("/")[0]
    base_url = {"loopback": f"http://127.0.0.1:{port}/v1", "local-server": local_server.url,
                "ipv6-loopback": f"http://[::1]:{port}/v1", "localhost": f"http://localhost:{port}/v1",
                "metadata": "http://169.254.169.254/latest/meta-data", "metadata-name": "http://metadata.google.internal/",
                "private": "http://10.0.0.1/v1", "file": "file:///etc/passwd"}[target]
    event, stream = paraphrase_call(url, base_url)
    assert_refused(event, stream)
    assert local_server.hits == 0


def test_allow_listed_host_works_and_reply_bodies_are_never_shown(public_app):
    _, url = public_app
    chat, teapot = RecordingServer(ALLOWED_API_HOST, "chat"), RecordingServer(ALLOWED_API_HOST, "teapot")
    try:
        event, stream = paraphrase_call(url, chat.url)
        assert event == "complete" and first_output(stream).startswith("✅"), stream[-2000:]
        assert chat.hits >= 4  # two captions, two steps (and retries of copies)
        event, stream = paraphrase_call(url, teapot.url)
        assert teapot.hits > 0 and BODY_SECRET not in stream
        assert "418" in stream and "teapot_error" in stream, stream[-2000:]
    finally:
        chat.close()
        teapot.close()


def test_exposed_endpoints_are_the_ones_checked_here(public_app):
    """Every endpoint callable over HTTP that takes a path or URL is attacked above; a new one must be too."""
    _, url = public_app
    info = httpx.get(f"{url}gradio_api/info", timeout=30).json()
    exposed = set(info["named_endpoints"])
    checked = {"/paraphrase", "/start_training", "/cancel_training", "/compare", "/explore"}
    assert exposed <= checked, f"new endpoint(s) {exposed - checked}: attack their path/URL inputs in this file"


def test_visitors_see_only_their_own_jobs(public_app):
    from workbench.app import refresh_choices

    services, _ = public_app
    alice, bob = {}, {}
    owner = services.owner(alice)
    job = services.runner.start("train", "alice's job", [sys.executable, "-c", "pass"], owner=owner)
    assert [j.id for j in services.jobs(alice)] == [job.id]
    assert services.jobs(bob) == [] and services.owner(bob) != owner
    out = refresh_choices(services, {}, bob, *[None] * 9)
    assert not any("alice" in str(choice) for update in out[2:] for choice in (update.get("choices") or []))
    assert services.allowed_roots(bob) == services.allowed_roots({})
    assert Path(job.job_dir) in services.allowed_roots(alice)
