"""The batch driver against a local fake of OpenAI's files + batches endpoints: rounds, faults, resume, kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paraclip.cli import main
from paraclip.paraphrase import ParaphraseConfig, load_records, make_backend, run_paraphrasing
from paraclip.paraphrase.prompts import PAPER_STEP1

REPO = Path(__file__).resolve().parents[2]
CAPTIONS = [f"caption number {i} of a dog" for i in range(20)]


def _backend(api, **kw):
    kw.setdefault("poll_interval", 0.02)
    kw.setdefault("poll_max", 0.1)
    return make_backend("openai-batch", model=kw.pop("model", "gpt-4o-mini"), base_url=api.base_url, **kw)


def _config(tmp_path, **kw):
    kw.setdefault("cache_path", str(tmp_path / "cache.sqlite"))
    return ParaphraseConfig(**kw)


def _uploaded(api):
    return [f for f in api.files.values() if f["purpose"] == "batch"]


def test_two_rounds_of_files_within_the_limits_give_the_engines_records(fake_openai, tmp_path):
    api = fake_openai(max_requests_per_file=7, max_file_bytes=5000)  # batches over either limit fail validation
    out = tmp_path / "out.jsonl"
    with _backend(api, max_requests_per_file=7, max_file_bytes=5000) as backend:
        summary = run_paraphrasing(CAPTIONS, out, backend, _config(tmp_path))
    assert summary["complete"] and summary["ok"] == 20 and summary["requests"] == 40
    recs = load_records(out)
    assert [r["index"] for r in recs] == list(range(20))
    assert recs[3]["paraphrase_1"] == "An image showing caption number 3 of a dog."
    assert recs[3]["paraphrase_2"] == "A photo depicting an image showing caption number 3 of a dog."
    assert recs[3]["backend"] == "openai-batch" and recs[3]["status"] == "ok" and recs[3]["samples"] == [1, 1]
    # step 1 of every caption in round 1, step 2 in round 2; every request submitted exactly once
    assert sorted(api.submitted) == sorted([f"{i}-s1-n0" for i in range(20)] + [f"{i}-s2-n0" for i in range(20)])
    assert set(api.submitted.values()) == {1}
    rounds = [b["round"] for b in summary["batch"]["batches"]]
    assert rounds == [1, 1, 1, 2, 2, 2] and {b["status"] for b in summary["batch"]["batches"]} == {"completed"}
    files = _uploaded(api)
    assert all(f["bytes"] <= 5000 for f in files) and len({f["filename"] for f in files}) == len(files) == 6
    line = json.loads(api.contents[files[0]["id"]].decode().splitlines()[0])
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert line["body"] == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PAPER_STEP1.replace(
        "{}", CAPTIONS[int(line["custom_id"].split("-")[0])])}], "temperature": 1.0, "top_p": 0.1, "max_tokens": 512}
    assert all(b["completion_window"] == "24h" for b in api.batches.values())
    assert not list(Path(str(out) + ".batches").glob("*.jsonl"))  # request files are removed once collected


def test_expired_batch_and_partial_failures_are_retried_in_follow_up_batches(fake_openai, tmp_path):
    api = fake_openai(batch_faults=["expire", "partial"])
    with _backend(api, max_requests_per_file=10) as backend:
        summary = run_paraphrasing(CAPTIONS, tmp_path / "o.jsonl", backend, _config(tmp_path))
    assert summary["complete"] and summary["ok"] == 20 and summary["failed"] == 0
    statuses = [b["status"] for b in summary["batch"]["batches"]]
    assert statuses[:2] == ["expired", "completed"]
    expired = [f"{i}-s1-n0" for i in range(1, 10, 2)]  # every other request of the expired batch
    failed_500 = [f"{i}-s1-n0" for i in range(10, 20, 3)]  # every third of the partly failed one
    assert all(api.submitted[c] == 2 for c in expired + failed_500)
    assert sum(v == 2 for v in api.submitted.values()) == len(expired + failed_500)


def test_failures_past_the_retry_bound_are_failed_records_and_exit_1(fake_openai, tmp_path, capsys):
    api = fake_openai(p_fail=1.0)
    argv = ["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai-batch",
            "--model", "gpt-4o-mini", "--base-url", api.base_url, "--yes", "--poll-interval", "0.02",
            "--max-retries", "1"]
    (tmp_path / "c.txt").write_text("\n".join(CAPTIONS[:5]) + "\n")
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "5 x step 1: HTTP 500: internal error" in captured.out
    assert "nothing was paraphrased: 5 of 5 records failed" in captured.err and "Traceback" not in captured.err
    assert set(api.submitted.values()) == {2}  # the first try and one follow-up, then given up
    recs = load_records(tmp_path / "o.jsonl")
    assert [r["status"] for r in recs] == ["failed"] * 5 and recs[0]["error"] == "step 1: HTTP 500: internal error"


def test_a_batch_that_fails_validation_stops_with_its_reasons_then_a_fixed_rerun_completes(fake_openai, tmp_path,
                                                                                          capsys):
    api = fake_openai(known_models={"gpt-4o-mini"})
    (tmp_path / "c.txt").write_text("\n".join(CAPTIONS[:4]) + "\n")
    argv = ["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai-batch",
            "--base-url", api.base_url, "--yes", "--poll-interval", "0.02"]
    assert main(argv + ["--model", "gpt-4o-mny"]) == 2
    err = capsys.readouterr().err
    assert "failed validation: line 1: model_not_found: The model 'gpt-4o-mny' does not exist" in err
    assert "Nothing in it ran or was charged" in err and "Traceback" not in err
    assert main(argv + ["--model", "gpt-4o-mini"]) == 0
    assert [r["status"] for r in load_records(tmp_path / "o.jsonl")] == ["ok"] * 4


def test_a_repeated_caption_is_requested_once(fake_openai, tmp_path):
    api = fake_openai()
    with _backend(api) as backend:
        summary = run_paraphrasing(CAPTIONS[:3] + CAPTIONS[:2], tmp_path / "o.jsonl", backend, _config(tmp_path))
    recs = load_records(tmp_path / "o.jsonl")
    assert summary["complete"] and len(recs) == 5 and recs[3]["paraphrase_2"] == recs[0]["paraphrase_2"]
    assert len(api.submitted) == 6  # 3 distinct captions x 2 steps


def test_rejected_outputs_are_resampled_in_the_next_round(fake_openai, tmp_path):
    api = fake_openai(p_copy=0.3, seed=2)
    with _backend(api) as backend:
        summary = run_paraphrasing(CAPTIONS, tmp_path / "o.jsonl", backend, _config(tmp_path, max_resamples=2))
    recs = load_records(tmp_path / "o.jsonl")
    resampled = [r for r in recs if r["samples"][0] > 1]
    assert resampled and all(r["paraphrase_1"].startswith("An image showing") for r in resampled if r["status"] == "ok")
    assert any(c.endswith("-n1") for c in api.submitted)  # a re-sample is a new request (another seed)
    assert summary["complete"] and summary["ok"] + summary["failed"] == 20


def test_a_slow_batch_is_polled_with_back_off(fake_openai, tmp_path):
    api = fake_openai(polls_to_complete=8)
    with _backend(api, poll_interval=0.05, poll_max=0.4) as backend:
        run_paraphrasing(CAPTIONS[:2], tmp_path / "o.jsonl", backend, _config(tmp_path))
    first = api.poll_times[min(api.poll_times)]
    gaps = [b - a for a, b in zip(first, first[1:])]
    assert len(first) == 8 and gaps[-1] > 2.5 * gaps[0]  # 0.05 s growing x1.5 per poll, capped at 0.4 s


def test_dry_run_uploads_nothing_then_a_real_run_submits_fresh_files(fake_openai, tmp_path):
    api = fake_openai()
    out = tmp_path / "o.jsonl"
    with _backend(api, dry_run=True) as backend:
        summary = run_paraphrasing(CAPTIONS, out, backend, _config(tmp_path))
    info = summary["batch"]
    assert summary["stopped"] and summary["done"] == 0 and not api.files
    [path] = info["request_files"]
    assert len(Path(path).read_text().splitlines()) == 20
    estimate = info["estimate"]
    assert estimate["requests"] == 40 and estimate["price"] == [0.15, 0.6] or estimate["price"] == (0.15, 0.6)
    assert estimate["batch_usd"] == pytest.approx(estimate["realtime_usd"] / 2)
    with _backend(api) as backend:
        summary = run_paraphrasing(CAPTIONS, out, backend, _config(tmp_path))
    assert summary["complete"] and len(_uploaded(api)) == 2 and set(api.submitted.values()) == {1}
    assert not Path(path).exists()  # the dry run's file was never uploaded: rebuilt, not reused


def test_declined_confirmation_sends_nothing(fake_openai, tmp_path):
    api = fake_openai()
    shown = []
    with _backend(api, confirm=lambda estimate: shown.append(estimate) or False) as backend:
        summary = run_paraphrasing(CAPTIONS, tmp_path / "o.jsonl", backend, _config(tmp_path))
    assert summary["batch"]["declined"] and not api.files and shown[0].requests == 40
    assert "with the Batch API (50 % of the realtime" in shown[0].describe()


def test_completions_cached_by_the_realtime_backend_are_not_paid_for_again(fake_openai, tmp_path):
    api = fake_openai()
    realtime = make_backend("openai", model="gpt-4o-mini", base_url=api.base_url, concurrency=4)
    with realtime:
        run_paraphrasing(CAPTIONS[:5], tmp_path / "a.jsonl", realtime, _config(tmp_path))
    with _backend(api) as backend:
        summary = run_paraphrasing(CAPTIONS[:5], tmp_path / "b.jsonl", backend, _config(tmp_path))
    assert summary["complete"] and summary["cached_requests"] == 10 and not api.files


def test_stop_while_waiting_then_rerun_collects_the_same_batch(fake_openai, tmp_path):
    api = fake_openai(polls_to_complete=6)
    out = tmp_path / "o.jsonl"
    phases = []
    with _backend(api) as backend:
        first = run_paraphrasing(CAPTIONS, out, backend, _config(tmp_path), progress=phases.append,
                                 should_stop=lambda: any(p.get("phase") == "waiting" for p in phases))
    assert first["stopped"] and first["done"] == 0 and len(first["batch"]["in_flight"]) == 1
    with _backend(api) as backend:
        second = run_paraphrasing(CAPTIONS, out, backend, _config(tmp_path))
    assert second["complete"] and second["ok"] == 20
    assert set(api.submitted.values()) == {1} and len(api.batches) == 2  # step 1 once, then step 2


_STAGE_FAULTS = {
    "upload": {"delays": {"upload": 60}},  # the server has the file; its answer never arrives
    "create": {"delays": {"create": 60}},  # the batch exists; its id never arrives
    "in_progress": {"polls_to_complete": 5},
    "download": {"delays": {"download": 60}},  # half of the output file has arrived
    "step2": {},
}


@pytest.mark.parametrize("stage", list(_STAGE_FAULTS))
def test_kill_9_during_each_stage_then_rerun_gives_every_record_exactly_once(fake_openai, tmp_path, stage, capsys):
    api = fake_openai(**_STAGE_FAULTS[stage])
    n = 60
    (tmp_path / "c.txt").write_text("".join(f"caption number {i} of a dog\n" for i in range(n)))
    argv = ["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai-batch",
            "--model", "gpt-4o-mini", "--base-url", api.base_url, "--yes", "--poll-interval", "0.05",
            "--batch-max-requests", "25"]
    child = subprocess.Popen([sys.executable, "-c", "import sys; from paraclip.cli import main; sys.exit(main())",
                              *argv], env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not api.events[stage].is_set():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, f"stage {stage} never reached"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
        child.stderr.close()
    api.delays.clear()
    assert main(argv) == 0
    recs = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["index"] for r in recs] == list(range(n))  # none lost, none twice
    assert all(r["status"] == "ok" and r["paraphrase_1"] == f"An image showing caption number {r['index']} of a dog."
               for r in recs)
    assert sorted(api.submitted) == sorted([f"{i}-s1-n0" for i in range(n)] + [f"{i}-s2-n0" for i in range(n)])
    assert set(api.submitted.values()) == {1}  # no request was submitted (or paid for) twice
    names = [f["filename"] for f in _uploaded(api)]
    assert len(names) == len(set(names)) == len(api.batches)  # no file uploaded twice, one batch per file


def test_ctrl_c_while_a_batch_runs_leaves_it_running_and_a_rerun_collects_it(fake_openai, tmp_path):
    api = fake_openai(polls_to_complete=10_000)  # never finishes while the first run waits
    (tmp_path / "c.txt").write_text("\n".join(CAPTIONS) + "\n")
    argv = ["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai-batch",
            "--model", "gpt-4o-mini", "--base-url", api.base_url, "--yes", "--poll-interval", "0.05"]
    child = subprocess.Popen([sys.executable, "-c", "import sys; from paraclip.cli import main; sys.exit(main())",
                              *argv], env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert api.events["in_progress"].wait(60)
    start = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130 and time.monotonic() - start < 4  # the wait wakes every 0.2 s to check
    assert b"still running at the server: batch-" in out and b"Traceback" not in err
    api.polls_to_complete = 1
    assert main(argv) == 0
    assert len(load_records(tmp_path / "o.jsonl")) == 20 and set(api.submitted.values()) == {1}
