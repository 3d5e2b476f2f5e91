"""`paraclip paraphrase --dry-run`: with every backend (aliases included) it plans and prints, sends no request
to a real server on 127.0.0.1, loads no model and writes nothing."""

from __future__ import annotations

import json

import pytest

from paraclip.cli import main
from paraclip.paraphrase.backends import BACKENDS
from paraclip.paraphrase.dry_run import talks_http

from .conftest import CAPTIONS

ALL_NAMES = sorted(BACKENDS._items)  # every name the CLI accepts, aliases too: a new one is covered here
HTTP_NAMES = [n for n in ALL_NAMES if talks_http(n)]
LOCAL_NAMES = [n for n in ALL_NAMES if not talks_http(n)]


def _write_captions(tmp_path, captions=CAPTIONS[:3]):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(captions) + "\nx\n")  # "x" is outside the paper's length filter
    return path


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_the_backends_that_talk_http_are_the_openai_ones():
    assert {"openai", "api", "openai-batch", "batch"} <= set(HTTP_NAMES)
    assert {"local", "llama.cpp", "transformers"} <= set(LOCAL_NAMES)


@pytest.mark.parametrize("backend", HTTP_NAMES)
def test_http_backends_send_nothing(backend, chat_server, fake_openai, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PARACLIP_TEST_KEY", "sk-test")
    chat, files_api = chat_server(api_key="sk-test"), fake_openai(api_key="sk-test")  # would accept every request
    server = files_api if backend in ("openai-batch", "batch") else chat
    captions = _write_captions(tmp_path)
    before = _files(tmp_path)
    code = main(["paraphrase", str(captions), "--out", str(tmp_path / "o.jsonl"), "--backend", backend,
                 "--base-url", server.base_url, "--api-key-env", "PARACLIP_TEST_KEY", "--model", "gpt-4o-mini",
                 "--no-cache", "--dry-run"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert sum(chat.counts.values()) == 0 and sum(files_api.counts.values()) == 0  # not one request, any method
    assert not chat.bodies and not files_api.files
    assert _files(tmp_path) == before  # no records, no summary, no lock, no batch state
    assert "would paraphrase 3 captions" in printed and "6 requests" in printed and "1 filtered by" in printed
    assert "first request's messages:" in printed and CAPTIONS[0] in printed
    expected = "with the Batch API" if "batch" in backend else "realtime price"
    assert "cost estimate: " in printed and expected in printed


@pytest.mark.parametrize("backend", LOCAL_NAMES)
def test_local_backends_load_no_model(backend, tmp_path, capsys, monkeypatch):
    import paraclip.paraphrase as paraphrase
    import paraclip.paraphrase.backends as backends
    import paraclip.paraphrase.local.runtime as local_runtime

    def no_model(*args, **kwargs):
        raise AssertionError("a dry run built a backend (and so loaded a model)")

    for module, name in ((paraphrase, "make_backend"), (backends, "make_backend"),
                         (local_runtime, "make_local_backend"), (local_runtime, "resolve_local_model")):
        monkeypatch.setattr(module, name, no_model)
    captions = _write_captions(tmp_path)
    before = _files(tmp_path)
    assert main(["paraphrase", str(captions), "--out", str(tmp_path / "o.jsonl"), "--backend", backend,
                 "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "no model is loaded" in printed and "would paraphrase 3 captions" in printed and "6 requests" in printed
    assert "cost estimate" not in printed and "decided when it loads" in printed
    assert _files(tmp_path) == before


def test_a_resumed_output_is_counted_and_left_exactly_as_it_was(chat_server, tmp_path, capsys):
    server = chat_server()
    captions = _write_captions(tmp_path, CAPTIONS[:4])
    out = tmp_path / "o.jsonl"
    done = {"index": 0, "caption": CAPTIONS[0], "status": "ok", "paraphrase_1": "p", "paraphrase_2": "q"}
    failed = {"index": 1, "caption": CAPTIONS[1], "status": "failed", "error": "timeout"}
    content = (json.dumps(done) + "\n" + json.dumps(failed) + "\n" + '{"index": 2, "capt').encode()  # a torn tail
    out.write_bytes(content)
    argv = ["paraphrase", str(captions), "--out", str(out), "--backend", "openai", "--base-url", server.base_url,
            "--model", "mock-model", "--dry-run"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 already done" in printed and "would paraphrase 2 captions" in printed and "4 requests" in printed
    assert "No price is known for model 'mock-model'" in printed
    assert main([*argv, "--retry-failed"]) == 0
    assert "would paraphrase 3 captions" in capsys.readouterr().out
    assert out.read_bytes() == content and server.counts["requests"] == 0  # the torn line is not even cut off


def test_an_output_of_another_input_is_refused_as_by_a_run(tmp_path, capsys):
    captions = _write_captions(tmp_path)
    out = tmp_path / "o.jsonl"
    out.write_text(json.dumps({"index": 0, "caption": "something else", "status": "ok"}) + "\n")
    code = main(["paraphrase", str(captions), "--out", str(out), "--backend", "openai", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "belongs to another input" in err and "Traceback" not in err
