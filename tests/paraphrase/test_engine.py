import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from paraclip.errors import DataError
from paraclip.paraphrase import ParaphraseConfig, load_records, make_backend, run_paraphrasing
from paraclip.paraphrase.engine import BackendFatalError
from paraclip.paraphrase.prompts import PAPER_STEP1, PAPER_STEP2

from .stopping import stop_one_of_two

REPO = Path(__file__).resolve().parents[2]


def _backend(server, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("concurrency", 4)
    return make_backend("openai", model="mock", base_url=server.base_url, **kw)


def _config(tmp_path, **kw):
    kw.setdefault("cache_path", str(tmp_path / "cache.sqlite"))
    return ParaphraseConfig(**kw)


def test_two_steps_with_the_papers_prompts_filter_and_record_format(chat_server, tmp_path):
    server = chat_server()
    captions = [("img1", "a dog runs on the beach"), ("img2", "dog"), ("img3", " ".join(["word"] * 16)),
                ("img4", "two cats sleeping on a red sofa"), ("img5", " ".join(["w"] * 15))]
    out = tmp_path / "out.jsonl"
    with _backend(server) as backend:
        summary = run_paraphrasing(captions, out, backend, _config(tmp_path))
    assert summary["filtered_by_length"] == 2 and summary["kept"] == 3 and summary["complete"]
    recs = load_records(out)
    assert [(r["index"], r["image_id"]) for r in recs] == [(0, "img1"), (1, "img4"), (2, "img5")]
    first = recs[0]
    assert first["paraphrase_1"] == "An image showing a dog runs on the beach."
    assert first["paraphrase_2"] == "A photo depicting an image showing a dog runs on the beach."
    assert first["status"] == "ok" and first["error"] is None and first["review"] == "unreviewed"
    assert first["backend"] == "openai" and first["model"] == "mock" and first["preset"] == "paper"
    assert set(first["quality"]) >= {"copy_1", "copy_2", "length_ratio_1", "novelty_1", "novelty_2"}
    # every request: one user message with the paper's prompt, the paper's sampling
    contents = sorted(b["messages"][0]["content"] for b in server.bodies)
    expected = sorted([PAPER_STEP1.replace("{}", r["caption"]) for r in recs]
                      + [PAPER_STEP2.replace("{}", r["paraphrase_1"]) for r in recs])
    assert contents == expected
    assert all(len(b["messages"]) == 1 and (b["temperature"], b["top_p"], b["max_tokens"]) == (1.0, 0.1, 512)
               for b in server.bodies)
    # the output is in index order and its lines are the official keys plus ours
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [l["index"] for l in lines] == [0, 1, 2]
    summary_file = json.loads(Path(str(out) + ".summary.json").read_text())
    assert summary_file["ok"] == 3


def test_copies_are_resampled_then_recorded_as_failed(chat_server, tmp_path, captions):
    server = chat_server(script=["copy", "ok", "ok"])  # record 0: step 1 copies once, then succeeds
    with _backend(server, concurrency=1) as backend:
        run_paraphrasing(captions[:1], tmp_path / "a.jsonl", backend, _config(tmp_path))
    [rec] = load_records(tmp_path / "a.jsonl")
    assert rec["status"] == "ok" and rec["samples"] == [2, 1]
    assert rec["raw"]["paraphrase_1"] == rec["paraphrase_1"]

    server = chat_server(p_copy=1.0)
    with _backend(server) as backend:
        summary = run_paraphrasing(captions[:2], tmp_path / "b.jsonl", backend, _config(tmp_path, max_resamples=2))
    recs = load_records(tmp_path / "b.jsonl")
    assert [r["status"] for r in recs] == ["failed", "failed"]  # never dropped
    assert recs[0]["error"] == "step 1: copy of the input (after 3 samples)"
    assert recs[0]["paraphrase_1"] is None and recs[0]["quality"]["copy_1"] is None
    assert summary["failure_reasons"] == {"step 1: copy of the input": 2}


def test_cache_serves_identical_requests_on_rerun(chat_server, tmp_path, captions):
    server = chat_server()
    config = _config(tmp_path)
    with _backend(server) as backend:
        run_paraphrasing(captions, tmp_path / "first.jsonl", backend, config)
        sent = server.counts["requests"]
        summary = run_paraphrasing(captions, tmp_path / "second.jsonl", backend, config)
    assert sent == 2 * len(captions)
    assert server.counts["requests"] == sent  # nothing paid twice
    assert summary["cached_requests"] == 2 * len(captions) and summary["requests"] == 0
    strip = lambda recs: [(r["caption"], r["paraphrase_1"], r["paraphrase_2"]) for r in recs]
    assert strip(load_records(tmp_path / "first.jsonl")) == strip(load_records(tmp_path / "second.jsonl"))
    # other sampling parameters are other requests
    with _backend(server) as backend:
        run_paraphrasing(captions[:1], tmp_path / "third.jsonl", backend, _config(tmp_path, temperature=0.5))
    assert server.counts["requests"] == sent + 2


def test_stop_then_resume_gives_every_caption_once(chat_server, tmp_path):
    server = chat_server(latency=0.02)
    captions = [f"caption number {i} here" for i in range(60)]
    out = tmp_path / "out.jsonl"
    seen = []
    with _backend(server) as backend:
        first = run_paraphrasing(captions, out, backend, _config(tmp_path, use_cache=False), progress=seen.append,
                                 should_stop=lambda: sum(e["event"] == "record" for e in seen) >= 10)
        assert first["stopped"] and not first["complete"] and 10 <= first["done"] < 60
        second = run_paraphrasing(captions, out, backend, _config(tmp_path, use_cache=False))
    assert second["resumed"] == first["done"] and second["complete"]
    indices = [json.loads(line)["index"] for line in out.read_text().splitlines()]
    assert indices == list(range(60))
    assert seen[-1]["done"] == first["done"] and "eta_s" in seen[-1]


def test_progress_starts_with_the_plan_then_counts_steps(chat_server, tmp_path, captions):
    server = chat_server(latency=0.01)
    events = []
    with _backend(server, concurrency=2) as backend:
        run_paraphrasing(captions[:4], tmp_path / "o.jsonl", backend, _config(tmp_path), progress=events.append)
    assert events[0]["event"] == "start" and events[0]["steps_total"] == 8 and events[0]["steps_done"] == 0
    assert events[0]["estimate_s"] is None  # an API backend cannot tell before it has answered
    steps = [e["steps_done"] for e in events]
    assert steps == sorted(steps) and steps[-1] == 8
    assert [e["event"] for e in events].count("record") == 4


def test_stopping_one_run_leaves_another_run_on_the_same_backend_alone(chat_server, tmp_path):
    server = chat_server(latency=0.05)
    captions = [f"caption number {i} here" for i in range(40)]
    summaries = {}
    with _backend(server, concurrency=4) as backend:
        def run(name, should_stop):
            summaries[name] = run_paraphrasing(captions, tmp_path / f"{name}.jsonl", backend,
                                               _config(tmp_path, use_cache=False), should_stop=should_stop)

        stop_one_of_two(run, stopped_join_s=30, other_join_s=120)
    assert summaries["stopped"]["stopped"] and not summaries["stopped"]["complete"]
    assert summaries["other"]["complete"] and not summaries["other"]["stopped"] and summaries["other"]["ok"] == 40
    assert len(load_records(tmp_path / "other.jsonl")) == 40


def test_resume_against_another_input_is_refused(chat_server, tmp_path, captions):
    server = chat_server()
    with _backend(server) as backend:
        run_paraphrasing(captions[:3], tmp_path / "o.jsonl", backend, _config(tmp_path))
        with pytest.raises(DataError, match="belongs to another input"):
            run_paraphrasing(list(reversed(captions)), tmp_path / "o.jsonl", backend, _config(tmp_path))


def test_retry_failed_redoes_only_failed_records(chat_server, tmp_path, captions):
    server = chat_server(script=["copy"] * 3)  # the first record processed fails step 1
    with _backend(server, concurrency=1) as backend:
        first = run_paraphrasing(captions[:3], tmp_path / "o.jsonl", backend, _config(tmp_path, use_cache=False))
        assert first["failed"] == 1
        again = run_paraphrasing(captions[:3], tmp_path / "o.jsonl", backend, _config(tmp_path, use_cache=False))
        assert again["written"] == 0 and again["failed"] == 1
        assert again["failure_reasons"] == {"step 1: copy of the input": 1}  # resumed failures are reported too
        fixed = run_paraphrasing(captions[:3], tmp_path / "o.jsonl", backend,
                                 _config(tmp_path, use_cache=False, retry_failed=True))
    assert fixed["written"] == 1 and fixed["failed"] == 0 and fixed["ok"] == 3
    assert [r["index"] for r in load_records(tmp_path / "o.jsonl")] == [0, 1, 2]


def test_fatal_backend_error_stops_and_keeps_finished_work(chat_server, tmp_path, captions, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    server = chat_server(api_key="right")
    with _backend(server) as backend:
        with pytest.raises(BackendFatalError, match="rerun to resume"):
            run_paraphrasing(captions, tmp_path / "o.jsonl", backend, _config(tmp_path))
    assert server.counts["401"] <= 8  # stopped early, not one failure per caption
    assert load_records(tmp_path / "o.jsonl") == []


_CHILD = textwrap.dedent("""
    import sys
    from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing
    url, out, cache = sys.argv[1:4]
    captions = [f"caption number {i} here" for i in range(300)]
    backend = make_backend("openai", model="mock", base_url=url, concurrency=8, backoff_base=0.01)
    run_paraphrasing(captions, out, backend, ParaphraseConfig(cache_path=cache))
""")


def test_kill_9_mid_run_then_resume_gives_exact_record_set(chat_server, tmp_path):
    server = chat_server(latency=0.03, p429=0.05, p500=0.02, retry_after=0.05, seed=3)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, server.base_url, str(out), str(tmp_path / "c.sqlite")],
                             env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 40):
        assert child.poll() is None, child.stderr.read().decode()
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    lines_before = out.read_bytes().count(b"\n")
    assert 40 <= lines_before < 300
    with _backend(server, concurrency=8) as backend:
        summary = run_paraphrasing([f"caption number {i} here" for i in range(300)], out, backend,
                                   _config(tmp_path, cache_path=str(tmp_path / "c.sqlite")))
    assert summary["complete"] and summary["resumed"] >= lines_before - 1
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in recs] == list(range(300))  # none lost, none duplicated
    assert all(r["paraphrase_1"] == f"An image showing caption number {r['index']} here." for r in recs)
    assert all(r["status"] == "ok" for r in recs)


def test_an_echoed_prompt_is_resampled_and_never_recorded_as_ok(chat_server, tmp_path):
    server = chat_server(script=["echo", "ok", "ok"])  # step 1 repeats the instruction once, then answers
    with _backend(server, concurrency=1) as backend:
        run_paraphrasing(["a dog runs on the beach"], tmp_path / "a.jsonl", backend, _config(tmp_path))
    [rec] = load_records(tmp_path / "a.jsonl")
    assert rec["status"] == "ok" and rec["samples"] == [2, 1]
    assert "concisely" not in rec["paraphrase_1"]

    server = chat_server(script=["echo"] * 3)
    with _backend(server, concurrency=1) as backend:
        run_paraphrasing(["a dog runs on the beach"], tmp_path / "b.jsonl", backend, _config(tmp_path))
    [rec] = load_records(tmp_path / "b.jsonl")
    assert rec["status"] == "failed"
    assert rec["error"] == "step 1: repeats the instruction prompt (after 3 samples)"


# --meaning-judge: the run's own LLM judges each paraphrase (judge-v2 prompt) and its verdict sets the flags
JUDGE_ASKS = "Is the rewrite faithful?"


def _judge_bodies(server):
    return [b for b in server.bodies if JUDGE_ASKS in b["messages"][-1]["content"]]


def test_meaning_judge_verdicts_set_the_flags_and_drop_changed_filters_on_them(chat_server, tmp_path):
    from paraclip.paraphrase.meaning.judge import JUDGE_PROMPTS

    server = chat_server(replies={'Caption: "a red car parked next to a brick building"': "No.", JUDGE_ASKS: "Yes"})
    captions = ["a dog runs along the beach", "a red car parked next to a brick building"]
    out = tmp_path / "out.jsonl"
    config = _config(tmp_path, meaning_judge=True, drop_changed=True)
    with _backend(server) as backend:
        summary = run_paraphrasing(captions, out, backend, config)
    judged = _judge_bodies(server)
    assert len(judged) == 4 and server.counts["requests"] == 8  # 2 steps + 2 questions per caption
    assert all(b["messages"][0] == {"role": "system", "content": JUDGE_PROMPTS["judge-v2"].system}
               and (b["temperature"], b["max_tokens"]) == (0.0, 4) for b in judged)
    kept, car = load_records(out)
    assert kept["status"] == "ok" and kept["quality"]["meaning_changed"] is False
    assert (kept["quality"]["meaning_judge_1"], kept["quality"]["meaning_judge_2"]) == ("Yes", "Yes")
    assert kept["quality"]["meaning_method"] == "llm-judge-v2 (openai:mock)"
    assert car["status"] == "filtered" and car["error"] == "meaning changed at steps 1 and 2 (--drop-changed)"
    assert car["quality"]["meaning_changed_1"] is True and car["quality"]["meaning_reason_1"]
    assert summary["ok"] == 1
    with _backend(server) as backend:  # a rerun asks nothing again: records are kept, replies are cached
        run_paraphrasing(captions, out, backend, config)
    assert server.counts["requests"] == 8


def test_meaning_judge_on_a_finished_output_judges_only_and_restores_what_the_lexical_flag_dropped(
        chat_server, tmp_path):
    # the model says "cat" for the dog: the lexical check flags it; the judge (asked later) says it is faithful
    server = chat_server(replies={JUDGE_ASKS: "Yes", "a dog runs along the beach": "A cat runs along the beach."})
    captions = ["a dog runs along the beach", "a cat sleeping on a sofa"]
    out = tmp_path / "out.jsonl"
    with _backend(server) as backend:
        run_paraphrasing(captions, out, backend, _config(tmp_path, drop_changed=True))
    dog = load_records(out)[0]
    assert dog["status"] == "filtered" and "object dog -> cat" in dog["quality"]["meaning_reason_1"]
    before = server.counts["requests"]
    with _backend(server) as backend:
        run_paraphrasing(captions, out, backend, _config(tmp_path, drop_changed=True, meaning_judge=True))
    assert server.counts["requests"] - before == 4 == len(_judge_bodies(server))  # questions only, no paraphrase
    dog, cat = load_records(out)
    assert dog["status"] == "ok" and dog["error"] is None and dog["quality"]["meaning_changed"] is False
    assert "object dog -> cat" in dog["quality"]["meaning_lexical_1"]  # the lexical reason stays, for review
    assert cat["quality"]["meaning_judge_2"] == "Yes"


def test_meaning_judge_is_refused_with_the_batch_api_saying_what_to_do(fake_openai, tmp_path):
    from paraclip.paraphrase.dry_run import plan_run

    api = fake_openai()
    config = _config(tmp_path, meaning_judge=True)
    backend = make_backend("openai-batch", model="gpt-4o-mini", base_url=api.base_url, api_key_env="NO_SUCH_KEY_X",
                           poll_interval=0.01, confirm=lambda estimate: True)
    with pytest.raises(DataError, match=r"--meaning-judge needs a realtime backend.*--backend openai --meaning-judge"):
        run_paraphrasing(["a dog runs along the beach"], tmp_path / "out.jsonl", backend, config)
    with pytest.raises(DataError, match="--meaning-judge needs a realtime backend"):
        plan_run(["a dog runs along the beach"], tmp_path / "out.jsonl", "openai-batch", config=config)
    assert not (tmp_path / "out.jsonl").exists() and api.counts == {}


def test_a_dry_run_counts_and_prices_the_judges_questions(tmp_path):
    from paraclip.paraphrase.dry_run import format_dry_run, plan_run

    captions = ["a dog runs along the beach", "two men playing chess in a park"]
    plain = plan_run(captions, tmp_path / "out.jsonl", "openai", "gpt-4o-mini", _config(tmp_path))
    judged = plan_run(captions, tmp_path / "out.jsonl", "openai", "gpt-4o-mini", _config(tmp_path, meaning_judge=True))
    assert (plain["requests"], judged["requests"]) == (4, 8) == (plain["estimate"]["requests"],
                                                                 judged["estimate"]["requests"])
    extra_out = judged["estimate"]["output_tokens"] - plain["estimate"]["output_tokens"]
    assert 0 < extra_out <= 4 * 4  # four questions, a few tokens each
    assert judged["estimate"]["input_tokens"] > plain["estimate"]["input_tokens"]
    assert "the meaning judge's question per paraphrase" in format_dry_run(judged)


def test_a_failed_judge_request_keeps_the_lexical_flag_and_a_rerun_asks_again(chat_server, tmp_path):
    # one caption, one request at a time: step 1, step 2, then the two questions, which fail (no retries)
    server = chat_server(script=["ok", "ok", "500", "500"], replies={JUDGE_ASKS: "Yes"})
    out, config = tmp_path / "out.jsonl", _config(tmp_path, meaning_judge=True)
    with _backend(server, concurrency=1, max_retries=0) as backend:
        run_paraphrasing(["a dog runs along the beach"], out, backend, config)
    (record,) = load_records(out)
    quality = record["quality"]
    assert record["status"] == "ok" and quality["meaning_judge_1"] is None and quality["meaning_judge_2"] is None
    assert quality["meaning_method"] == "llm-judge-v2 (openai:mock); lexical for 2 step(s) without a verdict"
    assert quality["meaning_changed"] is False  # the lexical check's flags, kept
    with _backend(server, concurrency=1, max_retries=0) as backend:  # the same command again: asks the judge only
        run_paraphrasing(["a dog runs along the beach"], out, backend, config)
    (record,) = load_records(out)
    assert server.counts["requests"] == 6 and record["quality"]["meaning_judge_1"] == "Yes"
    assert record["quality"]["meaning_method"] == "llm-judge-v2 (openai:mock)"
