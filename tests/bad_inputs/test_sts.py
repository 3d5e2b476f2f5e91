"""Bad inputs to `paraclip sts`: options, devices, outputs, gold scores, and a disk that fills up."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.bad_inputs.harness import Case, run_case

PAIRS = [("a red circle", "a circle that is red", 4.8), ("a red circle", "a blue square", 0.5),
         ("two dogs", "a pair of dogs", 4.5), ("two dogs", "a tree", 0.2), ("a cat", "a kitten", 3.9)]


def _csv(rows) -> str:
    return "sentence1,sentence2,score\n" + "".join(f"{a},{b},{s}\n" for a, b, s in rows)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("sts-bad")
    files = {
        "good": _csv(PAIRS),
        "score7": _csv(PAIRS[:1] + [("a dog", "a hound", 7)] + PAIRS[1:]),  # line 3
        "negative": _csv(PAIRS[:3] + [("a dog", "a car", -1)]),  # line 5
        "nan": _csv(PAIRS[:2] + [("a dog", "a car", "nan")]),  # line 4
        "constant": _csv([(a, b, 3.0) for a, b, _ in PAIRS]),
        "repeated": _csv(PAIRS + PAIRS[:2]),
        "tenscale": _csv([(a, b, 2 * s) for a, b, s in PAIRS]),
    }
    for name, text in files.items():
        (root / f"{name}.csv").write_text(text, encoding="utf-8")
    (root / "latin1.csv").write_bytes("sentence1,sentence2,score\nun caf\xe9,a coffee,4\n".encode("latin-1"))
    (root / "a-folder").mkdir()
    (root / "a-file").write_text("not a folder\n")
    return SimpleNamespace(root=root, **{name: str(root / f"{name}.csv") for name in [*files, "latin1"]})


def sts(w, *extra, tasks=None):
    return ["sts", "--model", "paraclip-tiny", "--device", "cpu", "--tasks", tasks or w.good, *extra]


def _strict_json_with_null(w, outcome):
    text = (w.root / "constant.json").read_text()
    assert "NaN" not in text
    (result,) = json.loads(text)["results"]
    assert result["metrics"]["spearman"] is None and "constant" in result["notes"]["spearman"]
    from paraclip.results import load_results

    (back,) = load_results(w.root / "constant.json")
    assert back.metrics["spearman"] != back.metrics["spearman"]  # NaN again in Python


def _results_kept_after_a_full_disk(w, outcome):
    # the 512-byte limit stops the results file; the rescue file is stopped too, so they are printed
    doc = json.loads(outcome.text[outcome.text.index('{\n "schema"'):outcome.text.rindex("}") + 1])
    assert doc["results"][0]["task"] == "good" and doc["results"][0]["metrics"]["spearman"] is not None
    assert not (w.root / "full" / "results.json").exists()


def _no_random_init_warning(w, outcome):
    assert "initialized randomly" not in outcome.text


@pytest.fixture(scope="module")
def trained_checkpoint(workspace):
    """A file in `paraclip train`'s final format (the weights need not be trained to be loaded)."""
    import torch

    from paraclip.models import load_encoder
    from paraclip.training.checkpoint import final_checkpoint

    torch.manual_seed(0)
    model = load_encoder("paraclip-tiny", device="cpu").model
    path = workspace.root / "final.pt"
    torch.save(final_checkpoint(model.state_dict(), "paraclip-tiny", {}), path)
    return path


CASES = [
    # numeric options
    Case("batch-size-negative", lambda w: sts(w, "--batch-size", "-4"), names=("--batch-size", "-4", ">= 1")),
    Case("batch-size-zero", lambda w: sts(w, "--batch-size", "0"), names=("--batch-size",)),
    Case("batch-size-not-a-number", lambda w: sts(w, "--batch-size", "many"), names=("--batch-size", "many")),
    Case("score-range-reversed", lambda w: sts(w, "--score-range", "5,0"), names=("--score-range",)),
    Case("score-range-one-number", lambda w: sts(w, "--score-range", "5"), names=("--score-range", "LOW,HIGH")),
    # devices
    Case("device-missing-gpu", lambda w: sts(w, "--device", "cuda:99"), names=("--device", "cuda:99", "GPU")),
    Case("device-mps", lambda w: sts(w, "--device", "mps"), names=("--device", "mps")),
    Case("device-junk", lambda w: sts(w, "--device", "gpu-please"), names=("--device", "gpu-please", "cuda:N")),
    # outputs, checked before any work
    Case("out-is-a-folder", lambda w: sts(w, "--out", str(w.root / "a-folder")), names=("--out", "is a folder")),
    Case("out-under-a-file", lambda w: sts(w, "--out", str(w.root / "a-file" / "r.json")),
         names=("a-file", "is a file")),
    Case("out-unwritable", lambda w: sts(w, "--out", "/sys/paraclip-test/r.json"),
         names=("--out", "/sys/paraclip-test")),  # /sys refuses new files even to root
    # data
    Case("gold-score-above-5", lambda w: sts(w, tasks=w.score7), names=("score7.csv:3", "7", "0-5", "--score-range")),
    Case("gold-score-negative", lambda w: sts(w, tasks=w.negative), names=("negative.csv:5", "-1")),
    Case("gold-score-nan", lambda w: sts(w, tasks=w.nan), names=("nan.csv:4", "score")),
    Case("gold-score-other-scale-declared", lambda w: sts(w, "--score-range", "0,10", tasks=w.tenscale), status=0,
         names=("tenscale",)),
    Case("not-utf8", lambda w: sts(w, tasks=w.latin1), names=("latin1.csv:2", "UTF-8")),
    Case("task-file-missing", lambda w: sts(w, tasks=str(w.root / "nope.csv")),
         names=("--tasks", "nope.csv", "no such")),
    Case("task-is-a-folder", lambda w: sts(w, tasks=str(w.root / "a-folder")), names=("--tasks", "is a folder")),
    Case("task-name-typo", lambda w: sts(w, tasks="STS-16"), names=("STS-16", "STS16")),
    Case("model-typo", lambda w: ["sts", "--model", "ViT-B-23", "--tasks", w.good], names=("ViT-B-23", "ViT-B-32")),
    # accepted, with a note or an explanation instead of silence
    Case("constant-gold-scores", lambda w: sts(w, "--out", str(w.root / "constant.json"), tasks=w.constant),
         status=0, names=("spearman undefined", "every gold score"), kept=_strict_json_with_null),
    Case("repeated-pairs", lambda w: sts(w, tasks=w.repeated), status=0, names=("note: 2 of the 7 pairs",)),
    # a disk that fills up while the results are written (a real write limit in a child process)
    Case("disk-full-while-writing", lambda w: sts(w, "--out", str(w.root / "full" / "results.json")), status=1,
         subprocess=True, limit_file_bytes=512, names=("results.json", "not lost", "printed above"),
         kept=_results_kept_after_a_full_disk),
    Case("python-m-paraclip", lambda w: sts(w, "--batch-size", "-4"), subprocess=True, names=("--batch-size",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_sts(case, workspace, capsys):
    run_case(case, workspace, capsys)


def test_a_trained_checkpoint_loads_without_the_random_init_warning(workspace, trained_checkpoint, capsys, caplog):
    case = Case("checkpoint-quiet", lambda w: ["sts", "--model", str(trained_checkpoint), "--tasks", w.good,
                                               "--device", "cpu"], status=0, kept=_no_random_init_warning)
    run_case(case, workspace, capsys)
    assert not [r for r in caplog.records if "initialized randomly" in r.getMessage()]
    # a model that really is random keeps the warning: it is true there
    from paraclip.models import load_encoder

    caplog.clear()
    load_encoder("paraclip-tiny", device="cpu")
    assert [r for r in caplog.records if "initialized randomly" in r.getMessage()]


def test_at_least_twenty_sts_cases():
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)
