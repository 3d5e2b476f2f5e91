"""Ranges declared once (Bounds), argparse types built from them, and output checks before work."""

import argparse
import errno
import math

import pytest

from paraclip.checks import (AT_LEAST_1, POSITIVE, UNIT_OPEN, Bounds, check_output_dir, check_output_file,
                             describe_os_error, number_arg, score_range_arg)
from paraclip.errors import ParaclipError


def test_bounds_describe_and_check():
    assert UNIT_OPEN.describe() == "in [0, 1)" and POSITIVE.describe() == "> 0" and AT_LEAST_1.describe() == ">= 1"
    assert UNIT_OPEN.problem(0.0) is None and UNIT_OPEN.problem(0.999) is None
    assert "got 1" in UNIT_OPEN.problem(1.0) and "got -0.5" in UNIT_OPEN.problem(-0.5)
    assert "finite" in POSITIVE.problem(math.nan) and "finite" in POSITIVE.problem(math.inf)
    assert POSITIVE.problem(0) == "must be > 0 (got 0)" and Bounds(high=3).problem(4) == "must be <= 3 (got 4)"


def test_number_arg():
    parse = number_arg(int, AT_LEAST_1)
    assert parse("7") == 7
    for bad, words in [("0", ">= 1 (got 0)"), ("-4", "got -4"), ("2.5", "an integer"), ("x", "'x'")]:
        with pytest.raises(argparse.ArgumentTypeError, match=words.replace("(", r"\(").replace(")", r"\)")):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        number_arg(float, POSITIVE)("nan")


def test_score_range_arg():
    assert score_range_arg("-1,1") == (-1.0, 1.0)
    for bad in ("5,0", "1", "a,b", "0,inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            score_range_arg(bad)


def test_output_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_output_file(tmp_path / "new" / "r.json", "--out") == tmp_path / "new" / "r.json"
    assert (tmp_path / "new").is_dir() and not list((tmp_path / "new").iterdir())  # the probe is gone
    with pytest.raises(ParaclipError, match="is a folder"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(ParaclipError, match="is a file, not a folder"):
        check_output_file(tmp_path / "file" / "r.json", "--out")
    with pytest.raises(ParaclipError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file", "--out-dir")
    assert check_output_dir(tmp_path / "a" / "b", "--out-dir").is_dir()


def test_describe_os_error_names_the_file_and_what_to_do():
    text = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/x.pt"), "write")
    assert text.startswith("could not write /data/x.pt: No space left on device. The disk is full")


def test_open_ranges_stop_at_absurd_sizes():
    from paraclip.checks import ABSURD, SEED

    assert POSITIVE.problem(ABSURD) is None and "at most 1e+09" in POSITIVE.problem(1e300)
    assert "at most" in Bounds(high=3).problem(-1e30)
    with pytest.raises(argparse.ArgumentTypeError, match="at most"):
        number_arg(float, POSITIVE)("1e300")  # --timeout 1e300 overflowed a wait deep inside the run
    assert SEED.problem(0) is None and SEED.problem(2**32 - 1) is None
    assert "got -1" in SEED.problem(-1) and SEED.problem(int(1e30))


@pytest.mark.parametrize("make", ["fifo", "socket", "device"])
def test_fifos_devices_and_sockets_are_refused_as_any_path(tmp_path, make):
    import os
    import socket

    from paraclip.checks import check_no_special_files, check_regular_path

    if make == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif make == "socket":
        path = tmp_path / "s.sock"
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
    else:
        path = "/dev/null"
    with pytest.raises(ParaclipError, match=r"--out .* not a regular file"):
        check_regular_path(path, "--out")
    with pytest.raises(ParaclipError, match=r"--export-captions .* not a regular file"):
        check_output_file(path, "--export-captions")
    args = argparse.Namespace(out="x.json", opt__data=[str(tmp_path), str(path)], steps=3)
    with pytest.raises(ParaclipError, match="--data"):
        check_no_special_files(args)
    check_no_special_files(argparse.Namespace(out=str(tmp_path), name="not\0a path", n=None))  # regular: fine
    if make == "socket":
        listener.close()


def test_a_fifo_given_to_a_command_exits_2_at_once(tmp_path, capsys):
    import os

    from paraclip.cli import main

    os.mkfifo(tmp_path / "captions.txt")
    # without the check this blocks forever opening the FIFO for reading
    assert main(["paraphrase", str(tmp_path / "captions.txt"), "--out", str(tmp_path / "o.jsonl"),
                 "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err
    assert "named pipe (FIFO)" in err and str(tmp_path / "captions.txt") in err and "Traceback" not in err


def test_describe_os_error_uses_the_given_path_when_the_error_names_none():
    text = describe_os_error(OSError(errno.ENOSPC, "No space left on device"), "write", "/data/out.jsonl")
    assert text.startswith("could not write /data/out.jsonl: No space left on device")
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")).startswith("could not use: No space")
