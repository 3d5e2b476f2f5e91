import pytest

from paraclip.errors import ParaclipError
from paraclip.paraphrase import make_backend
from paraclip.paraphrase.backends.base import ChatRequest
from paraclip.paraphrase.backends.openai_batch import OpenAIBatchBackend
from paraclip.paraphrase.prompts import PRESETS


def _request(text: str) -> ChatRequest:
    preset = PRESETS.get("paper")
    return ChatRequest.from_messages(preset.messages(1, text), preset.sampling)


def test_generate_runs_one_batch_and_returns_completions_in_order(fake_openai, monkeypatch):
    api = fake_openai(polls_to_complete=3, api_key="sk-test")
    monkeypatch.delenv("PARACLIP_TEST_KEY", raising=False)
    options = dict(model="gpt-4o-mini", base_url=api.base_url, poll_interval=0.02, api_key_env="PARACLIP_TEST_KEY")
    with make_backend("openai-batch", **options) as backend:
        [refused] = backend.generate([_request("a dog runs")])  # no key: the server refuses, and says so
    assert refused.fatal and "PARACLIP_TEST_KEY" in refused.error
    monkeypatch.setenv("PARACLIP_TEST_KEY", "sk-test")
    with make_backend("openai-batch", **options) as backend:
        out = backend.generate([_request("a dog runs"), _request("two cats sleep")])
        assert "sk-test" not in repr(backend)
    assert [c.text for c in out] == ["An image showing a dog runs.", "An image showing two cats sleep."]
    assert len(api.batches) == 1 and out[0].tokens == 30


def test_result_lines_success_error_and_permanent_failures():
    parse = OpenAIBatchBackend.parse_result_line
    cid, completion, permanent = parse({"custom_id": "1-s1-n0", "response": {"status_code": 200, "body": {
        "choices": [{"message": {"content": "A dog."}}], "usage": {"total_tokens": 12}}}, "error": None})
    assert (cid, completion.text, completion.tokens, permanent) == ("1-s1-n0", "A dog.", 12, False)
    _, completion, permanent = parse({"custom_id": "2", "response": None, "error": {
        "code": "batch_expired", "message": "not run in time"}})
    assert completion.error == "batch_expired: not run in time" and not permanent
    _, completion, permanent = parse({"custom_id": "3", "response": {"status_code": 400, "body": {
        "error": {"message": "max_tokens is too large"}}}})
    assert completion.error == "HTTP 400: max_tokens is too large" and permanent  # resending cannot help
    _, completion, permanent = parse({"custom_id": "4", "response": {"status_code": 429, "body": {}}})
    assert completion.error == "HTTP 429: no message" and not permanent
    _, completion, _ = parse({"custom_id": "5", "response": {"status_code": 200, "body": {"choices": []}}})
    assert completion.error.startswith("malformed response")


def test_a_create_whose_answer_is_lost_is_found_instead_of_made_twice(fake_openai, tmp_path):
    api = fake_openai(delays={"create": 1.5})  # the answer comes after the client's timeout
    path = tmp_path / "r.jsonl"
    with make_backend("openai-batch", model="m", base_url=api.base_url, timeout=0.5, http_retries=2) as backend:
        path.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n')
        uploaded = backend.upload(path, "r.jsonl")
        assert backend.find_file("r.jsonl", uploaded["bytes"])["id"] == uploaded["id"]
        batch = backend.create_batch(uploaded["id"], {"k": "v"}, since=uploaded["created_at"])
    assert list(api.batches) == [batch["id"]]  # one batch, although the create timed out


@pytest.mark.parametrize("options,message", [
    ({"max_requests_per_file": 50_001}, "at most 50000 requests and 200 MB"),
    ({"poll_interval": 0}, "--poll-interval (poll_interval) must be > 0"),
    ({"max_retries": -1}, "--max-retries (max_retries) must be >= 0"),
    ({"timeout": 0}, "--timeout (timeout) must be > 0"),
])
def test_out_of_range_settings_are_refused(options, message):
    with pytest.raises(ParaclipError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OpenAIBatchBackend(base_url="http://127.0.0.1:9/v1", **options)


def test_result_lines_with_untrustworthy_usage_keep_the_answer():
    for tokens in (float("nan"), float("inf"), -3, 10**30):
        line = {"custom_id": "r-1", "response": {"status_code": 200, "body": {
            "choices": [{"message": {"content": "A photo of a dog."}}], "usage": {"total_tokens": tokens}}}}
        custom_id, completion, permanent = OpenAIBatchBackend.parse_result_line(line)
        assert custom_id == "r-1" and completion.ok and completion.text == "A photo of a dog." and not permanent
        assert completion.tokens == 0
