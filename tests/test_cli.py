"""The console script: help, the sts command end to end on tiny data, and readable errors."""

from __future__ import annotations

import json

import pytest

from paraclip.cli import available_commands, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in available_commands():
        assert name in out
    assert "sts" in out


def _write_task(tmp_path):
    f = tmp_path / "pairs.jsonl"
    rows = [("a red circle", "a circle that is red", 4.8), ("a red circle", "a blue square", 0.5),
            ("two dogs", "a pair of dogs", 4.5), ("two dogs", "a tree", 0.2)]
    f.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in rows))
    return f


def test_sts_command_writes_shared_result_json(tmp_path, capsys):
    task = _write_task(tmp_path)
    out = tmp_path / "results.json"
    code = main(["sts", "--model", "paraclip-tiny", "--tasks", str(task), "--out", str(out), "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "spearman" in printed and "mean" in printed
    doc = json.loads(out.read_text())
    (result,) = doc["results"]
    assert result["schema"] == "paraclip.result/1" and result["model"] == "paraclip-tiny"
    assert result["task"] == "pairs" and result["n"] == 4 and "spearman" in result["metrics"]
    assert result["versions"]["torch"] and result["seconds"] >= 0 and result["source"].endswith("pairs.jsonl")


def test_unknown_task_is_a_one_line_error_with_suggestion(capsys):
    code = main(["sts", "--model", "paraclip-tiny", "--tasks", "STS-16"])
    err = capsys.readouterr().err
    assert code == 2 and "Unknown STS task 'STS-16'" in err and "STS16" in err and "Traceback" not in err


def test_unknown_model_is_a_readable_error(tmp_path, capsys):
    task = _write_task(tmp_path)
    code = main(["sts", "--model", "ViT-B-23", "--tasks", str(task)])
    err = capsys.readouterr().err
    assert code == 2 and "Did you mean 'ViT-B-32'" in err and "Traceback" not in err
