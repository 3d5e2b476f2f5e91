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


# -- the one error boundary ----------------------------------------------------------------------

def _failing_sts(monkeypatch, exc):
    import paraclip.commands.sts as sts

    def run(args):
        raise exc

    monkeypatch.setattr(sts, "run", run)


@pytest.mark.parametrize("exc, code, expected", [
    (RecursionError("maximum recursion depth exceeded"), 1, "paraclip sts: internal error: RecursionError"),
    (MemoryError(), 1, "paraclip sts: error: ran out of memory"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, "paraclip sts: error: a text file could not"),
    (ValueError("boom"), 1, "paraclip sts: internal error: ValueError: boom (set PARACLIP_DEBUG=1 for the traceback; "
                            "please report it)"),
    (KeyboardInterrupt(), 130, "paraclip sts: interrupted; finished work is kept"),
])
def test_every_exception_becomes_one_line_and_a_status(monkeypatch, capsys, exc, code, expected):
    monkeypatch.delenv("PARACLIP_DEBUG", raising=False)
    _failing_sts(monkeypatch, exc)
    assert main(["sts", "--model", "paraclip-tiny"]) == code
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1 and "Traceback" not in err


def test_the_traceback_is_shown_only_with_paraclip_debug(monkeypatch, capsys):
    _failing_sts(monkeypatch, ValueError("boom"))
    monkeypatch.setenv("PARACLIP_DEBUG", "1")
    assert main(["sts", "--model", "paraclip-tiny"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "internal error: ValueError: boom" in err


def test_a_failure_while_building_the_parser_is_caught_too(monkeypatch, capsys):
    import paraclip.commands.sts as sts

    def broken(parser):
        raise TypeError("bad option table")

    monkeypatch.setattr(sts, "add_arguments", broken)
    assert main(["sts"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("paraclip: internal error: TypeError: bad option table") and "Traceback" not in err


def test_deeply_nested_input_is_a_message_not_a_traceback(tmp_path, capsys):
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"sentence1": ' + "[" * 100_000 + "]" * 100_000 + ', "sentence2": "b", "score": 1}\n')
    code = main(["sts", "--model", "paraclip-tiny", "--tasks", str(nested), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.startswith("paraclip sts: ") and "Traceback" not in err, err


def test_python_dash_m_and_the_console_script_use_the_same_boundary(tmp_path):
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["paraclip"] == "paraclip.cli:main"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"sentence1,sentence2,score\n\xff\xfe,b,1\n")
    proc = subprocess.run([sys.executable, "-m", "paraclip", "sts", "--model", "paraclip-tiny", "--tasks", str(bad),
                           "--device", "cpu"], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert proc.returncode == 2 and proc.stderr.startswith("paraclip sts: error: ") and "Traceback" not in proc.stderr


def test_main_puts_the_callers_signal_handlers_back(tmp_path, capsys):
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    assert main(["sts", "--model", "paraclip-tiny", "--tasks", str(tmp_path / "missing.jsonl")]) == 2
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize("models", ["", ",,", " , "])
def test_evaluate_with_no_model_names_the_option(tmp_path, capsys, models):
    code = main(["evaluate", "--models", models, "--tasks", "STSB", "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 2 and "--models" in err and "names no model" in err, err


@pytest.mark.parametrize("mode, option", [(["--sample", "2"], "--out"), (["--reproduce", "--preset", "smoke"], "--out"),
                                          (["--reproduce", "--preset", "smoke"], "--report-to"),
                                          (["--preset", "smoke"], "--export-assets")])
def test_miniworld_an_output_folder_that_is_a_file_is_exit_2_naming_it(tmp_path, capsys, mode, option):
    (tmp_path / "f").write_text("not a folder")
    code = main(["miniworld", *mode, option, str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and option in err and "is a file, not a folder" in err, err
    assert (tmp_path / "f").read_text() == "not a folder"


@pytest.mark.parametrize("tasks", [",,", " , "])
def test_sts_tasks_that_name_no_task_is_exit_2_not_an_empty_success(capsys, tasks):
    code = main(["sts", "--model", "paraclip-tiny", "--tasks", tasks, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "--tasks" in err and "names no task" in err, err


@pytest.mark.parametrize("argv, said", [
    (["train", "--modle", "x", "--data", "y"], "unknown option --modle (did you mean --model?)"),
    (["sts", "--modle", "x"], "unknown option --modle (did you mean --model?)"),  # not "--model is required" alone
    (["sts", "--model=x", "--batchsize", "3"], "unknown option --batchsize (did you mean --batch-size?)"),
    (["miniworld", "--reproduce", "--sets", "a=1"], "unknown option --sets (did you mean --set?)"),
])
def test_a_mistyped_option_is_named_with_a_close_match(argv, said, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert said in capsys.readouterr().err


def test_an_abbreviation_argparse_accepts_is_not_called_unknown(capsys):
    with pytest.raises(SystemExit):
        main(["sts", "--mod", "x", "--batch-size", "zero"])
    err = capsys.readouterr().err
    assert "unknown option" not in err and "--batch-size" in err
