"""Bad inputs to `paraclip evaluate`: options, devices, outputs, data, and a disk that fills up between
two results (the finished one is kept and reused by the rerun)."""

from __future__ import annotations

import errno
import json
from types import SimpleNamespace

import pytest

from paraclip.results import result_file_name
from tests.bad_inputs.harness import Case, run_case
from tests.bad_inputs.inputs import world_with_gallery


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate-bad")
    world = world_with_gallery(root / "world", n=16)
    repeated = root / "repeated.jsonl"
    repeated.write_text(world["data"].read_text() + json.dumps(world["records"][0]) + "\n")
    sts_rows = "sentence1,sentence2,score\na red square,a crimson box,4.5\na red square,a blue disc,0.5\n" \
               "two crosses,a pair of plus signs,4.0\na green band,a navy circle,1.0\n"
    (root / "sts-a.csv").write_text(sts_rows)
    (root / "sts-b.csv").write_text(sts_rows.replace("4.5", "4.8"))
    (root / "sts-bad.csv").write_text(sts_rows + "a cat,a dog,12\n")  # line 6
    (root / "a-file").write_text("not a folder\n")
    (root / "a-folder").mkdir()
    return SimpleNamespace(root=root, gallery=str(world["images"]), pairs=str(world["data"]), repeated=str(repeated),
                           **{f"sts_{x}": str(root / f"sts-{x}.csv") for x in ("a", "b", "bad")})


def evaluate(w, *extra, tasks="retrieval", out: str | None = "out"):
    return ["evaluate", "--models", "paraclip-tiny", "--gallery", w.gallery, "--tasks", tasks, "--device", "cpu",
            *(["--out", str(w.root / out)] if out else []), *extra]


def _no_result_files(w, outcome):
    assert not list((w.root / "out").glob("*.json")) if (w.root / "out").exists() else True


CASES = [
    Case("gallery-limit-zero", lambda w: evaluate(w, "--gallery-limit", "0"), names=("--gallery-limit", ">= 1")),
    Case("gallery-limit-negative", lambda w: evaluate(w, "--gallery-limit", "-1"), names=("--gallery-limit", "-1")),
    Case("bootstrap-negative", lambda w: evaluate(w, "--bootstrap", "-3"), names=("--bootstrap", "-3"),
         kept=_no_result_files),  # refused before any evaluation, not after it
    Case("bootstrap-zero", lambda w: evaluate(w, "--bootstrap", "0"), names=("--bootstrap", ">= 1")),
    Case("memory-zero", lambda w: evaluate(w, "--memory-mb", "0"), names=("--memory-mb", "> 0")),
    Case("seed-negative", lambda w: evaluate(w, "--seed", "-1"), names=("--seed", ">= 0")),
    Case("k-zero", lambda w: evaluate(w, "--k", "0"), names=("--k", "positive")),
    Case("k-words", lambda w: evaluate(w, "--k", "ten"), names=("--k", "integers")),
    Case("recall-k-negative", lambda w: evaluate(w, "--recall-k", "1,-5"), names=("--recall-k",)),
    Case("score-range-words", lambda w: evaluate(w, "--score-range", "low,high"), names=("--score-range",)),
    Case("device-missing-gpu", lambda w: evaluate(w, "--device", "cuda:99"), names=("--device", "cuda:99")),
    Case("device-junk", lambda w: evaluate(w, "--device", "tpu"), names=("--device", "'tpu'")),
    Case("out-is-a-file", lambda w: evaluate(w, out="a-file"), names=("--out", "a-file", "is a file")),
    Case("out-unwritable", lambda w: evaluate(w, "--out", "/sys/paraclip-test", out=None),
         names=("--out", "/sys/paraclip-test")),
    Case("export-captions-to-a-folder", lambda w: evaluate(w, "--export-captions", str(w.root / "a-folder")),
         names=("--export-captions", "is a folder")),
    Case("out-missing", lambda w: evaluate(w, out=None), names=("--out DIR is required",)),
    Case("pretrained-misaligned", lambda w: evaluate(w, "--pretrained", "a,b"), names=("--pretrained", "2 entries")),
    Case("model-listed-twice", lambda w: ["evaluate", "--models", "paraclip-tiny,paraclip-tiny", "--tasks", w.sts_a,
                                          "--out", str(w.root / "twice")], names=("listed twice",)),
    Case("task-typo", lambda w: evaluate(w, tasks="retreival"), names=("retreival", "'retrieval'")),
    Case("task-file-missing", lambda w: evaluate(w, tasks=str(w.root / "nope.csv")),
         names=("nope.csv", "no such file")),
    Case("pairs-missing", lambda w: evaluate(w, "--pairs", str(w.root / "nope.jsonl"), tasks="paraphrased-retrieval"),
         names=("nope.jsonl",)),
    Case("gallery-smaller-than-k", lambda w: evaluate(w, "--gallery-limit", "5", "--pairs", w.pairs, "--k", "10",
                                                      tasks="paraphrased-retrieval", out="small"),
         names=("5 images", "k=10", "--k")),
    Case("sts-gold-out-of-range", lambda w: ["evaluate", "--models", "paraclip-tiny", "--tasks", w.sts_bad,
                                             "--out", str(w.root / "stsbad")], names=("sts-bad.csv:6", "12", "0-5")),
    Case("repeated-pairs", lambda w: evaluate(w, "--pairs", w.repeated, "--k", "5", "--bootstrap", "10",
                                              tasks="paraphrased-retrieval", out="repeated"),
         status=0, names=("note: 1 of the 17 pairs",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_evaluate(case, workspace, capsys):
    run_case(case, workspace, capsys)


def test_full_disk_between_results_keeps_the_finished_one(workspace, capsys, monkeypatch):
    from paraclip.evaluation import suite

    out = workspace.root / "full"
    argv = ["evaluate", "--models", "paraclip-tiny", "--tasks", f"{workspace.sts_a},{workspace.sts_b}",
            "--bootstrap", "10", "--device", "cpu", "--out", str(out)]
    real_save, calls = suite.save_results, []

    def full_disk_on_second(results, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_save(results, path, *args, **kwargs)

    monkeypatch.setattr(suite, "save_results", full_disk_on_second)

    def first_result_kept(w, outcome):
        assert [p.name for p in out.glob("*__*.json")] == [result_file_name("paraclip-tiny", None, "sts-a")]

    run_case(Case("disk-full-result", lambda w: argv, status=1, kept=first_result_kept,
                  names=("No space left on device", "sts-b.json", "rerun")), workspace, capsys)
    first = (out / result_file_name("paraclip-tiny", None, "sts-a")).read_text()
    monkeypatch.setattr(suite, "save_results", real_save)

    def reused_and_finished(w, outcome):
        assert (out / result_file_name("paraclip-tiny", None, "sts-a")).read_text() == first  # reused
        assert (out / result_file_name("paraclip-tiny", None, "sts-b")).is_file() and (out / "results.csv").is_file()

    run_case(Case("disk-full-rerun", lambda w: argv, status=0, kept=reused_and_finished), workspace, capsys)
