"""Bad inputs and faults against ``paraclip paraphrase``, table-driven.

Each case runs the real CLI (``main(argv)``) against a real HTTP server on 127.0.0.1 where one is
needed, and asserts: the exit status (2 for bad input, 1 when nothing was paraphrased), no Python
traceback, a message naming the option / file / line / field, and that a finished output from an
earlier run comes out of the failed command byte for byte as it went in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from paraclip.cli import main
from paraclip.testing.mock_server import Faults, MockChatServer

REPO = Path(__file__).resolve().parents[2]
CAPTIONS = ["a dog runs on the beach", "two cats sleep on a sofa", "a red car parked on a street",
            "children fly kites on a hill"]


@dataclass
class Case:
    id: str
    extra: list[str]  # appended to: paraphrase {dir}/c.txt --out {dir}/o.jsonl --backend openai --base-url ...
    code: int
    says: list[str]  # each must appear in the output
    files: dict[str, str | bytes] = field(default_factory=dict)
    faults: dict | None = None  # a mock server with these faults; None: an address nothing listens on
    replace: dict[str, str] = field(default_factory=dict)  # argv items to replace (e.g. the input file)
    keep_output: bool = True  # an earlier run's finished records sit in o.jsonl and must survive
    hold_lock: bool = False  # another live process holds the output's lock


def _records(n: int) -> str:
    return "".join(json.dumps({"index": i, "image_id": None, "caption": c, "paraphrase_1": f"first {i}",
                               "paraphrase_2": f"second {i}", "status": "ok", "error": None, "review": "unreviewed"})
                   + "\n" for i, c in enumerate(CAPTIONS[:n]))


CASES = [
    # option ranges, checked at parse time
    Case("max-retries-negative", ["--max-retries", "-1"], 2, ["argument --max-retries: must be >= 0 (got -1)"]),
    Case("concurrency-zero", ["--concurrency", "0"], 2, ["argument --concurrency: must be >= 1 (got 0)"]),
    Case("concurrency-negative", ["--concurrency", "-5"], 2, ["argument --concurrency: must be >= 1 (got -5)"]),
    Case("limit-negative", ["--limit", "-1"], 2, ["argument --limit: must be >= 1 (got -1)"]),
    Case("limit-zero", ["--limit", "0"], 2, ["argument --limit: must be >= 1"]),
    Case("timeout-zero", ["--timeout", "0"], 2, ["argument --timeout: must be > 0 (got 0)"]),
    Case("timeout-not-a-number", ["--timeout", "soon"], 2, ["argument --timeout: expected a number > 0, got 'soon'"]),
    Case("timeout-nan", ["--timeout", "nan"], 2, ["argument --timeout: must be a finite number > 0 (got nan)"]),
    Case("threads-zero", ["--threads", "0"], 2, ["argument --threads: must be >= 1"]),
    Case("min-similarity-out-of-range", ["--min-similarity", "2"], 2, ["argument --min-similarity: must be in [-1, 1] "
                                                                        "(got 2)"]),
    Case("backend-typo", ["--backend", "opena"], 2, ["argument --backend", "Did you mean 'openai'"]),
    Case("gguf-that-is-not-there", ["--backend", "llama.cpp", "--model", "{dir}/missing.gguf"], 2,
         ["missing.gguf: no such file", "--setup-llm-pack"]),
    Case("preset-typo", ["--preset", "papr"], 2, ["--preset must be one of paper, small-model (got 'papr')",
                                                  "Did you mean 'paper'"]),
    Case("batch-file-over-the-api-limit", ["--batch-max-requests", "50001"], 2,
         ["argument --batch-max-requests: must be in [1, 50000]"]),
    Case("poll-interval-zero", ["--poll-interval", "0"], 2, ["argument --poll-interval: must be > 0"]),
    Case("price-input-alone", ["--backend", "openai-batch", "--price-input", "0.1"], 2,
         ["give both --price-input and --price-output"]),
    Case("batch-without-yes-or-terminal", ["--backend", "openai-batch"], 2, ["pass --yes to submit", "--dry-run"],
         replace={"{dir}/o.jsonl": "{dir}/batch.jsonl"}, keep_output=False),
    # config files
    Case("template-without-placeholder", ["--config", "{dir}/cfg.yaml"], 2,
         ["cfg.yaml:1: step1_prompt must be text with '{}' exactly once"],
         files={"cfg.yaml": "step1_prompt: Reword it\n"}),
    Case("max-words-not-a-number", ["--config", "{dir}/cfg.yaml"], 2,
         ["cfg.yaml:1: max_words must be an integer >= 1 (got 'many')"], files={"cfg.yaml": "max_words: many\n"}),
    Case("temperature-out-of-range", ["--config", "{dir}/cfg.yaml"], 2,
         ["cfg.yaml:1: temperature must be in [0, 2] (got -1)"], files={"cfg.yaml": "temperature: -1\n"}),
    Case("min-words-above-max-words", ["--config", "{dir}/cfg.yaml"], 2,
         ["cfg.yaml: max_words (3) must be larger than min_words (5)"],
         files={"cfg.yaml": "min_words: 5\nmax_words: 3\n"}),
    Case("unknown-setting", ["--config", "{dir}/cfg.yaml"], 2, ["cfg.yaml:1: unknown paraphrase setting 'max_wrods'",
                                                                "Did you mean 'max_words'"],
         files={"cfg.yaml": "max_wrods: 9\n"}),
    Case("config-not-utf8", ["--config", "{dir}/cfg.yaml"], 2, ["cfg.yaml:1: not valid UTF-8 (byte 0xe9"],
         files={"cfg.yaml": b"temperature: 0.5 # caf\xe9\n"}),
    Case("config-not-a-mapping", ["--config", "{dir}/cfg.yaml"], 2, ["cfg.yaml: expected a mapping of settings"],
         files={"cfg.yaml": "- 1\n- 2\n"}),
    # output paths, checked before any work
    Case("out-is-a-directory", [], 2, ["--out {dir}/outdir is a folder; give a file name in it"],
         replace={"{dir}/o.jsonl": "{dir}/outdir"}, files={"outdir/keep.txt": "x"}, keep_output=False),
    Case("out-under-a-file", [], 2, ["{dir}/c.txt is a file, not a folder"],
         replace={"{dir}/o.jsonl": "{dir}/c.txt/o.jsonl"}, keep_output=False),
    Case("out-not-writable", [], 2, ["cannot write there"],
         replace={"{dir}/o.jsonl": "/sys/paraclip-test-out.jsonl"}, keep_output=False),
    # inputs
    Case("no-input-file", [], 2, ["{dir}/missing.txt: no such input file"],
         replace={"{dir}/c.txt": "{dir}/missing.txt"}),
    Case("csv-unterminated-quote", [], 2, ["{dir}/c.csv:3: unterminated quote"],
         replace={"{dir}/c.txt": "{dir}/c.csv"},
         files={"c.csv": 'image_id,caption\n1,a dog runs on the beach\n2,"two cats sleep on a sofa\n'
                         '3,a red car parked on a street\n4,children fly kites on a hill\n'}),
    Case("csv-text-after-closing-quote", [], 2, ["{dir}/c.csv:3: text after the closing quote"],
         replace={"{dir}/c.txt": "{dir}/c.csv"},
         files={"c.csv": 'image_id,caption\n1,a dog runs on the beach\n2,"two cats" sleep on a sofa\n'}),
    Case("jsonl-malformed-line", [], 2, ["{dir}/c.jsonl:2: malformed JSON", "--skip-bad-lines"],
         replace={"{dir}/c.txt": "{dir}/c.jsonl"},
         files={"c.jsonl": '{"caption": "a dog runs on the beach"}\n{"caption": "two cats\n'}),
    Case("output-of-another-input", [], 2, ["belongs to another input or filter setting"],
         files={"c.txt": "a bird sings in a tree\n" + "\n".join(CAPTIONS) + "\n"}),
    Case("damaged-output-line", [], 2, ["o.jsonl:1: not a paraphrase record", "fix or remove that line"],
         files={"o.jsonl": "GARBAGE\n" + _records(2)}),
    Case("output-locked-by-a-live-run", [], 2, ["is writing this output", "pid"], hold_lock=True),
    # nothing succeeds: exit 1, counted and grouped by reason
    Case("every-request-500", ["--max-retries", "0"], 1, ["4 x step 1: gave up after 1 attempts; last: HTTP 500",
                                                         "nothing was paraphrased: 4 of 4 records failed"],
         faults={"p500": 1.0}, replace={"{dir}/o.jsonl": "{dir}/fresh.jsonl"}, keep_output=False),
    Case("every-request-429", ["--max-retries", "0"], 1, ["last: HTTP 429", "nothing was paraphrased"],
         faults={"p429": 1.0}, replace={"{dir}/o.jsonl": "{dir}/fresh.jsonl"}, keep_output=False),
    Case("every-reply-garbage", ["--max-retries", "0"], 1, ["last: malformed response", "nothing was paraphrased"],
         faults={"p_garbage": 1.0}, replace={"{dir}/o.jsonl": "{dir}/fresh.jsonl"}, keep_output=False),
    Case("every-request-hangs", ["--max-retries", "0", "--timeout", "0.3"], 1,
         ["last: timeout after 0.3 s", "nothing was paraphrased"],
         faults={"p_hang": 1.0, "hang_s": 2.0}, replace={"{dir}/o.jsonl": "{dir}/fresh.jsonl"}, keep_output=False),
    Case("every-output-a-copy", ["--max-retries", "0"], 1, ["4 x step 1: copy of the input", "nothing was paraphrased"],
         faults={"p_copy": 1.0}, replace={"{dir}/o.jsonl": "{dir}/fresh.jsonl"}, keep_output=False),
    Case("nothing-passes-the-length-filter", [], 2, ["no captions to paraphrase", "4 outside the length filter"],
         files={"cfg.yaml": "max_words: 2\n"}, replace={"{dir}/o.jsonl": "{dir}/fresh.jsonl"},
         keep_output=False, faults={}),
]
CASES[-1].extra = ["--config", "{dir}/cfg.yaml"]


@pytest.fixture
def lock_holder():
    procs = []

    def hold(out: Path) -> subprocess.Popen:
        code = ("import sys, time; from paraclip.paraphrase.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
                "print('locked', flush=True); time.sleep(60)")
        proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == b"locked"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_the_corpus_has_at_least_twenty_cases():
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, capsys, lock_holder):
    if case.id == "out-not-writable" and os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("/sys is writable here")
    (tmp_path / "c.txt").write_text("\n".join(CAPTIONS) + "\n")
    if case.keep_output:
        (tmp_path / "o.jsonl").write_text(_records(2))
    for name, content in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content)
    before = (tmp_path / "o.jsonl").read_bytes() if (tmp_path / "o.jsonl").exists() else None
    server = MockChatServer(Faults(**case.faults)).start() if case.faults is not None else None
    url = server.base_url if server else "http://127.0.0.1:9/v1"
    fill = lambda s: s.replace("{dir}", str(tmp_path))
    argv = ["paraphrase", "{dir}/c.txt", "--out", "{dir}/o.jsonl", "--backend", "openai", "--base-url", url,
            "--no-cache", *case.extra]
    argv = [fill(case.replace.get(a, a)) for a in argv]
    if case.hold_lock:
        lock_holder(tmp_path / "o.jsonl")
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    finally:
        if server:
            server.stop()
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == case.code, text
    assert "Traceback" not in text
    for fragment in case.says:
        assert fill(fragment) in text, text
    if before is not None:
        assert (tmp_path / "o.jsonl").read_bytes() == before  # finished records are never lost or rewritten
