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
