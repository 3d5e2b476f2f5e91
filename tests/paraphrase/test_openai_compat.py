import logging
import time

import pytest

from paraclip.errors import ParaclipError
from paraclip.paraphrase import ChatRequest, PRESETS, make_backend
from paraclip.paraphrase.backends.openai_compat import _retry_after_seconds

KEY = "sk-test-SECRET-0123456789"


def _request(text="a dog runs on the beach", step=1):
    paper = PRESETS.get("paper")
    return ChatRequest.from_messages(paper.messages(step, text), paper.sampling, seed=0)


def _backend(server, **kw):
    kw.setdefault("backoff_base", 0.01)
    return make_backend("openai", model="gpt-3.5-turbo-0301", base_url=server.base_url, **kw)


def test_body_is_exactly_the_papers_request(chat_server):
    server = chat_server()
    with _backend(server) as backend:
        [out] = backend.generate([_request()])
    assert out.ok and out.text == "An image showing a dog runs on the beach." and out.tokens > 0
    assert server.bodies == [{
        "model": "gpt-3.5-turbo-0301",
        "messages": [{"role": "user", "content":
                      'Paraphrase the given caption "a dog runs on the beach" concisely while preserving the meaning.'}],
        "temperature": 1.0, "top_p": 0.1, "max_tokens": 512,
    }]


def test_key_comes_from_the_named_env_var_and_is_never_shown(chat_server, monkeypatch, caplog, capsys):
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    server = chat_server(api_key=KEY)
    caplog.set_level(logging.DEBUG)
    with _backend(server, api_key_env="MY_LLM_KEY") as backend:
        assert backend.generate([_request()])[0].ok
        assert KEY not in repr(backend) and KEY not in str(backend.identity())
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    captured = capsys.readouterr()
    assert KEY not in caplog.text + captured.out + captured.err


def test_wrong_key_is_fatal_and_does_not_echo_it(chat_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = chat_server(api_key="another-key")
    with _backend(server) as backend:
        [out] = backend.generate([_request()])
    assert out.fatal and "OPENAI_API_KEY" in out.error and KEY not in out.error
    assert server.counts["401"] == 1  # not retried


def test_missing_key_for_openai_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ParaclipError, match="OPENAI_API_KEY is not set"):
        make_backend("openai", model="gpt-4o-mini")


def test_429_honours_retry_after(chat_server):
    server = chat_server(script=["429", "429"], retry_after=0.3)
    with _backend(server) as backend:
        start = time.monotonic()
        [out] = backend.generate([_request()])
        elapsed = time.monotonic() - start
    assert out.ok and out.attempts == 3
    assert elapsed >= 0.6  # two waits of Retry-After: 0.3 s, although backoff_base is 0.01 s


@pytest.mark.parametrize("fault", ["500", "garbage", "hang"])
def test_transient_faults_are_retried(chat_server, fault):
    server = chat_server(script=[fault], hang_s=1.5)
    with _backend(server, timeout=0.5) as backend:
        [out] = backend.generate([_request()])
    assert out.ok and out.attempts == 2
    assert server.counts[fault] == 1 and server.counts["ok"] == 1


def test_gives_up_after_max_retries(chat_server):
    server = chat_server(p500=1.0)
    with _backend(server, max_retries=2) as backend:
        [out] = backend.generate([_request()])
    assert not out.ok and not out.fatal and "gave up after 3 attempts" in out.error and "HTTP 500" in out.error
    assert server.counts["500"] == 3


def test_unreachable_server_is_fatal():
    with make_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", max_retries=1,
                      backoff_base=0.01) as backend:
        [out] = backend.generate([_request()])
    assert out.fatal and "cannot connect" in out.error


def test_many_requests_run_concurrently(chat_server):
    """Concurrency seen from the server (requests it held at once), not from a clock: true on any machine."""
    server = chat_server(latency=0.5)
    with _backend(server, concurrency=16) as backend:
        outs = backend.generate([_request(f"caption number {i}") for i in range(32)])
    assert all(o.ok for o in outs)
    assert [o.text for o in outs] == [f"An image showing caption number {i}." for i in range(32)]
    assert 2 <= server.max_in_flight <= 16  # several at once, never more than asked for


def test_retry_after_parsing():
    assert _retry_after_seconds("2") == 2.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after_seconds("soon") is None


# -- replies that cannot be trusted: dripped, cut, flooded, with nonsense usage -------------------------------

def test_timeout_bounds_the_whole_request_against_a_dripping_server(chat_server):
    server = chat_server(script=["drip"], drip_s=0.2)  # every read succeeds: httpx's per-read timeout never fires
    with _backend(server, timeout=1.0, max_retries=0) as backend:
        [out] = backend.generate([_request()])
        ended = time.monotonic()
    started = server.wait_for("drip started")
    assert not out.ok and not out.fatal and "timeout after 1 s (no complete reply by then)" in out.error
    # the request began before the server's first byte, so this bounds the whole request from above
    assert ended - started < 1.0 + 1.5


def test_a_reply_cut_mid_body_is_a_retried_record_failure_not_an_unreachable_server(chat_server):
    server = chat_server(script=["cut", "cut"])
    with _backend(server, max_retries=1) as backend:
        [out] = backend.generate([_request()])
    assert not out.ok and not out.fatal and out.attempts == 2
    assert "the server closed the connection mid-reply (" in out.error and "bytes read)" in out.error
    assert "cannot connect" not in out.error
    bytes_read = int(out.error.split("mid-reply (")[1].split()[0])
    assert bytes_read > 0
    server.faults.script = ["cut"]
    with _backend(server, max_retries=2) as backend:
        [out] = backend.generate([_request()])
    assert out.ok and out.attempts == 2  # the next try is answered


def test_a_huge_reply_is_cut_off_at_the_cap_and_fails_only_its_record(chat_server, monkeypatch):
    from paraclip.paraphrase.backends import openai_compat

    monkeypatch.setattr(openai_compat, "MAX_REPLY_BYTES", 100_000)
    server = chat_server(script=["huge", "ok"], huge_bytes=5_000_000)
    with _backend(server, concurrency=1) as backend:
        start = time.monotonic()
        first, second = backend.generate([_request("first caption"), _request("second caption")])
        elapsed = time.monotonic() - start
    assert not first.ok and not first.fatal and first.attempts == 1  # not retried: the same flood would follow
    assert "larger than 100000 bytes" in first.error
    assert second.ok
    assert server.counts["huge"] == 1 and elapsed < 10


@pytest.mark.parametrize("fault", ["nan_usage", "huge_usage"])
def test_untrustworthy_usage_is_ignored_with_a_note(chat_server, caplog, fault):
    server = chat_server(script=[fault])
    caplog.set_level(logging.WARNING)
    with _backend(server) as backend:
        [out] = backend.generate([_request()])
    assert out.ok and out.tokens == 0 and out.attempts == 1
    assert "Ignored a token count" in caplog.text


def test_believable_tokens():
    from paraclip.paraphrase.backends.openai_compat import believable_tokens

    assert believable_tokens(42) == 42 and believable_tokens(42.0) == 42 and believable_tokens(None) == 0
    for bad in (float("nan"), float("inf"), -1, 10**30, "12", True, [3]):
        assert believable_tokens(bad) == 0


def test_a_run_against_a_misbehaving_server_ends_with_each_records_reason(chat_server, tmp_path, monkeypatch):
    """Through the engine: the cut and the flooded records fail with their reasons, the one with NaN usage
    succeeds, and the run finishes (concurrency 1, so the script meets the captions in order)."""
    from paraclip.paraphrase import ParaphraseConfig, load_records, run_paraphrasing
    from paraclip.paraphrase.backends import openai_compat

    monkeypatch.setattr(openai_compat, "MAX_REPLY_BYTES", 100_000)
    server = chat_server(script=["cut", "cut", "huge", "nan_usage"], huge_bytes=1_000_000)
    captions = ["a dog runs on the beach", "two cats sleep on a red sofa", "a man rides a bike on a road"]
    with _backend(server, concurrency=1, max_retries=1) as backend:
        summary = run_paraphrasing(captions, tmp_path / "o.jsonl", backend,
                                   ParaphraseConfig(use_cache=False, cache_path=str(tmp_path / "c.sqlite")))
    records = sorted(load_records(tmp_path / "o.jsonl"), key=lambda r: r["index"])
    assert [r["status"] for r in records] == ["failed", "failed", "ok"] and summary["ok"] == 1
    assert "the server closed the connection mid-reply" in records[0]["error"]
    assert "larger than 100000 bytes" in records[1]["error"]
