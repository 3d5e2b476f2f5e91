import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from paraclip.cli import main
from paraclip.paraphrase.lock import RunLock


def test_cli_paraphrases_resumes_and_summarises(chat_server, tmp_path, capsys):
    server = chat_server()
    (tmp_path / "captions.txt").write_text("a dog runs on the beach\nx\ntwo cats sleep on a sofa\n")
    (tmp_path / "ids.txt").write_text("10\n11\n12\n")
    argv = ["paraphrase", str(tmp_path / "captions.txt"), "--image-ids", str(tmp_path / "ids.txt"),
            "--out", str(tmp_path / "out.jsonl"), "--backend", "openai", "--model", "mock",
            "--base-url", server.base_url, "--concurrency", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 filtered by length" in out and "2/2 records" in out and "2 ok, 0 failed" in out
    recs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["index"], r["image_id"]) for r in recs] == [(0, "10"), (1, "12")]
    assert main(argv) == 0  # same command again: nothing to do
    assert "(2 from before, 0 new)" in capsys.readouterr().out
    assert server.counts["requests"] == 4


def test_cli_bad_input_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text('{"caption": "a dog runs"}\n{"caption": \n')
    code = main(["paraphrase", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--base-url", "http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 2 and "d.jsonl:2: malformed JSON" in err and "--skip-bad-lines" in err
    assert "Traceback" not in err


def test_cli_meaning_judge_with_the_batch_api_is_exit_2_before_any_key_or_request(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the judge's problem is named, not the missing key
    (tmp_path / "c.txt").write_text("a dog runs on the beach\n")
    code = main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend",
                 "openai-batch", "--base-url", "http://127.0.0.1:9/v1", "--meaning-judge", "--yes"])
    err = capsys.readouterr().err
    assert code == 2 and "--meaning-judge needs a realtime backend" in err and "Traceback" not in err
    assert "API key" not in err and not (tmp_path / "o.jsonl").exists()


def test_cli_config_file_sets_prompts(chat_server, tmp_path, capsys):
    server = chat_server()
    (tmp_path / "c.txt").write_text("a dog runs on the beach\n")
    (tmp_path / "cfg.yaml").write_text('step1_prompt: "Reword: \\"{}\\""\ntemperature: 0.7\n')
    assert main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--base-url", server.base_url, "--config", str(tmp_path / "cfg.yaml"), "--no-cache"]) == 0
    first = server.bodies[0]
    assert first["messages"][0]["content"] == 'Reword: "a dog runs on the beach"' and first["temperature"] == 0.7
    (tmp_path / "bad.yaml").write_text("temprature: 0.7\n")
    assert main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o2.jsonl"), "--backend", "openai",
                 "--base-url", server.base_url, "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "Did you mean 'temperature'" in capsys.readouterr().err


REPO = Path(__file__).resolve().parents[2]

_CLI = "import sys; from paraclip.cli import main; sys.exit(main())"


def _start_cli(argv, code=_CLI):
    return subprocess.Popen([sys.executable, "-c", code, *argv], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_lines(path, n, child, timeout=60):
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().count("\n") >= n):
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_ctrl_c_stops_within_two_seconds_keeping_finished_records(chat_server, tmp_path):
    server = chat_server(script=["ok"] * 6, p_hang=1.0, hang_s=60)  # 6 answers, then every request hangs
    (tmp_path / "c.txt").write_text("".join(f"caption number {i} here\n" for i in range(20)))
    out = tmp_path / "o.jsonl"
    child = _start_cli(["paraphrase", str(tmp_path / "c.txt"), "--out", str(out), "--backend", "openai",
                        "--base-url", server.base_url, "--concurrency", "4", "--timeout", "90", "--no-cache"])
    _wait_for_lines(out, 2, child)
    server.wait_for("hang", timeout=30, count=4)  # all four requests in flight are hanging
    written = out.read_text().count("\n")
    start = time.monotonic()
    child.send_signal(signal.SIGINT)
    code = child.wait(timeout=30)
    seconds = time.monotonic() - start
    err = child.stderr.read().decode()
    child.stderr.close()
    assert code == 130 and seconds < 2.5, (code, seconds, err)
    assert "stopping" in err and "Traceback" not in err
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == written and all(r["status"] == "ok" for r in recs)  # nothing half-done was written


def _read_until(child, marker: bytes, timeout: float = 30) -> bytes:
    """The child's stderr up to and including ``marker`` (read as it comes; no guessed sleep)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline and child.poll() is None, seen.decode(errors="replace")
        chunk = os.read(child.stderr.fileno(), 4096)
        assert chunk, seen.decode(errors="replace")
        seen += chunk
    return seen


_SLEEPY = textwrap.dedent("""
    import sys, threading, time
    from paraclip.cli import main
    from paraclip.paraphrase.backends import BACKENDS
    from paraclip.paraphrase.backends.base import Backend, Completion

    class Sleepy(Backend):  # a generation that cannot be interrupted, like a local model mid-batch
        kind = model = "sleepy"
        parallelism = 2

        def __init__(self, **options):
            self.calls, self.lock = 0, threading.Lock()

        def generate(self, requests, should_stop=None):
            with self.lock:
                self.calls += 1
                n = self.calls
            if n > 4:
                time.sleep(60)
            return [Completion(f"reworded sentence variant {n}") for _ in requests]

    BACKENDS.register("sleepy", "__main__:Sleepy")
    sys.exit(main())
""")


def test_a_second_ctrl_c_quits_at_once(tmp_path):
    (tmp_path / "c.txt").write_text("".join(f"caption number {i} here\n" for i in range(10)))
    out = tmp_path / "o.jsonl"
    child = _start_cli(["paraphrase", str(tmp_path / "c.txt"), "--out", str(out), "--backend", "sleepy",
                        "--no-cache"], code=_SLEEPY)
    _wait_for_lines(out, 2, child)
    child.send_signal(signal.SIGINT)
    seen = _read_until(child, b"stopping")  # the first Ctrl-C was handled ...
    assert child.poll() is None  # ... and the run waits for the generation in flight
    child.send_signal(signal.SIGINT)
    # the generation in flight sleeps 60 s: ending well inside that is quitting at once, on a slow machine too
    code = child.wait(timeout=30)
    err = (seen + child.stderr.read()).decode()
    child.stderr.close()
    assert code == 130
    assert "second Ctrl-C: quitting now" in err and "Traceback" not in err
    assert sorted(json.loads(line)["index"] for line in out.read_text().splitlines()) == [0, 1]  # 2 in flight
    assert not Path(str(out) + ".lock").exists() or RunLock(out).holder() is None  # the kernel dropped the lock


def test_cli_prints_the_plan_before_the_run(chat_server, tmp_path, capsys):
    server = chat_server()
    (tmp_path / "c.txt").write_text("a dog runs on the beach\ntwo cats sleep on a sofa\na red car near a wall\n")
    argv = ["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
            "--base-url", server.base_url, "--limit", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "2 captions x 2 steps"  # an API backend gives no estimate before it answers
    (tmp_path / "o.jsonl").write_text((tmp_path / "o.jsonl").read_text().splitlines()[0] + "\n")
    assert main(argv[:-2]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "2 captions x 2 steps (1 of 3 already done)"


def test_format_plan_with_an_estimate():
    from paraclip.commands.paraphrase import format_plan

    assert format_plan({"total": 3, "done": 0, "estimate_s": 39.6}) == "3 captions x 2 steps, about 40 s on this machine"


def test_cli_an_unset_api_key_env_is_refused_before_any_request(chat_server, tmp_path, capsys, monkeypatch):
    server = chat_server()
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    (tmp_path / "c.txt").write_text("a dog runs on the beach\n")
    code = main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--model", "mock", "--base-url", server.base_url, "--api-key-env", "NO_SUCH_KEY_VAR"])
    err = capsys.readouterr().err
    assert code == 2 and "--api-key-env NO_SUCH_KEY_VAR" in err and "not set" in err
    assert server.counts["requests"] == 0 and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "not a url", "http://", "127.0.0.1:8000/v1"])
def test_cli_a_base_url_that_is_not_http_is_a_usage_error_at_once(tmp_path, capsys, url):
    (tmp_path / "c.txt").write_text("a dog runs on the beach\n")
    with pytest.raises(SystemExit) as info:
        main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
              "--model", "m", "--base-url", url])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--base-url" in err and "is not an http(s) URL" in err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("text", ["", "\n  \n\t\n", "x\ny\n"], ids=["empty", "blank-lines", "all-too-short"])
def test_cli_an_input_with_no_caption_to_paraphrase_is_exit_2_naming_it(chat_server, tmp_path, capsys, text):
    server = chat_server()
    (tmp_path / "c.txt").write_text(text)
    code = main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--model", "mock", "--base-url", server.base_url])
    err = capsys.readouterr().err
    assert code == 2 and "no captions to paraphrase in" in err and "c.txt" in err, err
    assert server.counts["requests"] == 0


def test_cli_an_unknown_dtype_is_refused_even_in_a_dry_run(tmp_path, capsys):
    (tmp_path / "c.txt").write_text("a dog runs on the beach\n")
    with pytest.raises(SystemExit) as info:
        main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "transformers",
              "--dtype", "fp7", "--dry-run"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--dtype" in err and "unknown dtype 'fp7'" in err, err
