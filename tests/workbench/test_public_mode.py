"""Public mode, attacked over plain HTTP: the app launched on 127.0.0.1 as on a Space, and driven the
way any visitor's script can (``POST /gradio_api/call/<api>``, then the event stream).

Server files outside the allowed folders are refused without being read (``/etc/passwd``, a ``.env``
holding a key, ``..`` and symlink escapes), errors never quote a file, and the Paraphrase tab's API
base URL cannot reach loopback, a local server, the metadata address or a name resolving to
loopback — while the allowed folder and the allow-listed host work.

Issue 22 §5–7 over the same HTTP: a visitor reads only their own uploads (never another visitor's in
Gradio's shared upload folder), a refused and a missing path get one message, nothing shown names a
server path, pasted captions and training jobs obey the quotas.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.local_http import JsonServer, free_port
from tests.local_http import call_api as call
from workbench import compare

FAKE_KEY = "sk-FAKE-7f3e9a1c2b8d4e6f0a5b"
BODY_SECRET = "internal-reply-body-3c9d"
ALLOWED_API_HOST = "127.0.0.2"  # the whole 127/8 is loopback on Linux: a second loopback host to allow-list


def _teapot(path: str):
    """A 418 whose body must never reach the visitor."""
    return 418, {}, {"error": {"message": BODY_SECRET, "code": "teapot_error"}}


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
                                      build_defaults=False, max_jobs=1, max_upload_mb=1, max_captions=20,
                                      max_train_samples=4000, jobs_per_visitor=1))
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
    services.close()


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
    return call(url, "compare", [baseline or base, [other], [label], gallery or default_gallery, pairs, "1,5", 48,
                                 "miniworld-shape", ""])  # the zero-shot dataset and templates (unused here)


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
    # the task is skipped with a note (the other ticked tasks would still run); the note names file and line
    assert message.startswith("❌"), message
    assert "keys.csv:2" in stream and "file content hidden" in stream, stream[-2000:]


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
                                    "mock", "", "paper", "", "", 1.0, 0.1, 64, 0, "all", False])


def test_paraphrase_local_model_box_reads_no_server_file(public_app, files):
    _, url = public_app
    assert_refused(*paraphrase_call(url, "", local_model=str(files["env"])))


@pytest.fixture(scope="module")
def local_server():
    server = JsonServer()
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
    chat, teapot = JsonServer(host=ALLOWED_API_HOST), JsonServer(_teapot, ALLOWED_API_HOST)
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
    checked = {"/paraphrase", "/start_training", "/cancel_training", "/resume_training", "/compare", "/explore"}
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


# -- issue 22 §5: isolation ------------------------------------------------------------------------
def upload(url: str, name: str, data: bytes) -> str:
    """A file uploaded the way the browser does (``POST /gradio_api/upload``); its server path."""
    reply = httpx.post(f"{url}gradio_api/upload", files={"files": (name, data)}, timeout=30)
    reply.raise_for_status()
    return reply.json()[0]


def train_call(url, services, data="", data_upload=None, images=None, steps=5, batch=4):
    base, _, gallery = defaults(services)
    return call(url, "start_training", [base, data, data_upload, images or gallery, steps, batch, 1e-4, "paraclip",
                                        "", 0, "cpu", "visitor"])


def test_another_visitors_upload_is_not_readable(public_app, files):
    """Visitor A uploads; visitor B knows the path (B trained on A's photo before this fix) and tries
    it in every box: typed as data, its folder as images, and as B's own upload of data or captions."""
    services, url = public_app
    a_jsonl = upload(url, "a-private.jsonl", b'{"caption": "a secret caption", "image_id": "1"}\n')
    a_photo = upload(url, "a-photo.png", b"not really a png")
    before, ok_data = len(services.runner.list()), str(files["allowed"] / "pairs.csv")
    for event, stream in (train_call(url, services, data=a_jsonl),
                          train_call(url, services, data=ok_data, images=str(Path(a_photo).parent)),
                          train_call(url, services, data=ok_data, images=str(Path(a_photo).parent.parent))):
        assert_refused(event, stream)
        assert "a-photo" not in stream and "secret" not in stream
    file_data = {"path": a_jsonl, "meta": {"_type": "gradio.FileData"}}
    event, stream = train_call(url, services, data_upload=file_data)
    assert event == "complete" and "did not arrive" in first_output(stream), stream[-2000:]
    event, stream = call(url, "paraphrase", ["", file_data, "local (offline LLM)", "", "", "mock", "", "paper",
                                             "", "", 1.0, 0.1, 64, 0, "all", False])
    assert event == "complete" and "did not arrive" in first_output(stream), stream[-2000:]
    assert "secret" not in stream and len(services.runner.list()) == before


def test_a_refused_and_a_missing_path_get_one_message(public_app, files):
    services, url = public_app
    messages = []
    for target, name in ((f"{files['allowed']}/../../../../../../etc/shadow", "shadow"),
                         (f"{files['allowed']}/nonexistent", "nonexistent"),
                         (f"{files['allowed']}/../outside/.env", ".env"), ("/etc/passwd", "passwd")):
        event, stream = compare_call(url, services, pairs=target)
        assert_refused(event, stream)
        messages.append(first_output(stream).replace(name, "NAME"))
    assert len(set(messages)) == 1, messages
    assert str(files["allowed"]) not in messages[0], "the message names no server folder"


def test_nothing_shown_names_a_server_path(public_app):
    """Example data, an uploaded image folder, a job's status, checkpoint and log: named relative to the
    app's data or the visitor's uploads, and such a name is accepted back."""
    from workbench.train import job_view, upload_images, use_example_data

    services, _ = public_app
    session: dict = {}
    owner = services.owner(session)
    data, images, *_ = use_example_data(services)
    assert data == "examples/paraphrases.jsonl" and images == "examples/images"
    assert services.check_path(data, "Training data", session) == services.check_path(
        str(Path(services.config.app_dir) / "defaults" / "example-training" / "paraphrases.jsonl"), "x", session)
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("000001.png", b"png")
    zip_path = Path(services.session_dir(session)) / "in.zip"
    zip_path.write_bytes(buf.getvalue())
    shown, message, session = upload_images(services, session, [str(zip_path)])
    assert shown.startswith("uploads/images-") and "✅" in message
    assert services.check_path(shown, "Images", session).is_dir()
    script = "import sys, pathlib; print('loading', sys.argv[1]); pathlib.Path(sys.argv[2]).mkdir(parents=True)"
    job = services.runner.start("train", "paths", [sys.executable, "-c", script, str(services.config.app_dir),
                                                   str(Path(services.config.app_dir) / "x")], owner=owner)
    for _ in range(600):
        if not services.runner.get(job.id).active:
            break
        import time

        time.sleep(0.05)
    status, _, _, log, _ = job_view(services, job.id, session)
    for text in (status, log):
        assert str(services.config.app_dir) not in text and sys.executable not in text, text
        assert "/tmp" not in text
    assert "app-data" in log and "python -c" in log


# -- issue 22 §6: quotas ---------------------------------------------------------------------------
def test_pasted_captions_obey_the_upload_limit_and_the_caption_cap(public_app):
    services, url = public_app
    many = "\n".join(f"caption number {i}" for i in range(21))
    event, stream = call(url, "paraphrase", [many, None, "local (offline LLM)", "", "", "mock", "", "paper", "",
                                             "", 1.0, 0.1, 64, 0, "all", False])
    assert event == "complete" and "21 captions" in first_output(stream) and "20" in first_output(stream)
    big = "x" * (1024 * 1024 + 10)
    event, stream = call(url, "paraphrase", [big, None, "local (offline LLM)", "", "", "mock", "", "paper", "",
                                             "", 1.0, 0.1, 64, 0, "all", False])
    assert event == "complete" and "1 MB limit" in first_output(stream), first_output(stream)[:300]


def test_a_training_job_has_a_compute_budget(public_app, files):
    services, url = public_app
    before = len(services.runner.list())
    event, stream = train_call(url, services, data=str(files["allowed"] / "pairs.csv"), steps=20_000, batch=512)
    message = first_output(stream)
    assert event == "complete" and message.startswith("❌") and "budget of 4,000" in message, message
    assert len(services.runner.list()) == before


def test_one_visitor_cannot_take_every_job_slot_and_a_left_job_stops(public_app):
    from workbench.upkeep import QuotaError, check_visitor_quota

    services, _ = public_app
    session: dict = {}
    owner = services.owner(session)
    job = services.runner.start("train", "long", [sys.executable, "-c", "import time; time.sleep(120)"], owner=owner)
    try:
        with pytest.raises(QuotaError, match="limit per visitor is 1"):
            check_visitor_quota(services, owner)
        check_visitor_quota(services, services.owner({}))  # another visitor is not blocked by this cap
        services.jobs(session)  # the owner's page polls
        now = job.started + 60
        assert services.upkeep.reap(now) == []
        left = now + services.config.abandoned_job_minutes * 60 + 1
        assert services.upkeep.reap(left) == [job.id]
        services.runner.cancel(job.id, wait=True)
        done = services.runner.get(job.id)
        assert done.status == "cancelled" and "no page of its owner" in done.message
    finally:
        services.runner.cancel_all()


def test_another_visitor_cannot_resume_a_job(public_app):
    services, url = public_app
    job = services.runner.start("train", "alice", [sys.executable, "-c", "pass"], owner=services.owner({}))
    event, stream = call(url, "resume_training", [job.id, {}])
    assert event == "error" or first_output(stream).startswith("❌"), stream[-2000:]
    assert len([j for j in services.runner.list() if j.name == "alice"]) == 1


def test_a_comparisons_downloads_name_no_server_folder(public_app):
    """Issue 22 §5: results.csv / results.json said where the gallery lies on the server ("folder
    /srv/app/assets/gallery + captions.csv"); a visitor's downloads now name only the folder's last part."""
    import httpx

    services, url = public_app
    event, stream = compare_call(url, services, task="retrieval")
    assert event == "complete" and first_output(stream).startswith("✅"), stream[-2000:]
    outputs = json.loads([line for line in stream.splitlines() if line.startswith("data:")][-1][5:])
    files = outputs[compare.CompareOutputs._fields.index("files")]
    texts = {Path(f["orig_name"]).name: httpx.get(f["url"], timeout=30).text for f in files}
    assert set(texts) == {"results.csv", "deltas.csv", "results.json"}
    assert "gallery" in texts["results.csv"]  # the source is still named ...
    roots = {str(services.config.assets_dir), str(services.config.app_dir), tempfile.gettempdir(), "/work", "/home"}
    for name, text in texts.items():
        assert not [root for root in roots if root in text], (name, text[:500])

