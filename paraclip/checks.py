"""Checks shared by commands and configs: numeric ranges, paths that must be regular files, and outputs
that must be writable.

A range is declared once (:class:`Bounds`) and used both for config fields and for
command-line options (:func:`number_arg`), so bad numbers are refused when the command line
or the config is read, before any model is loaded. A range open above still stops at
:data:`ABSURD` (``--timeout 1e300`` overflowed a wait deep inside a run). Output checks run before
heavy work, so an unwritable ``--out`` costs a second, not an evaluation. A FIFO, device or socket
given as any path (reading or writing it blocks forever, or replaces a device node) is refused by
:func:`check_no_special_files`, which the CLI runs on every option of every command.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from paraclip.errors import ParaclipError, describe_os_error  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Bounds:
    """An allowed numeric range; ``None`` ends are unbounded, ``*_open`` ends exclude the end itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return "a finite number"

    def problem(self, value: float) -> str | None:
        """None when ``value`` is allowed, else what is wrong with it (a phrase)."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number {self.describe()} (got {value})"
        if (self.high is None and value > ABSURD) or (self.low is None and value < -ABSURD):
            return f"must be {self.describe()} and at most {ABSURD:g} in size (got {_num(value)})"
        below = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        above = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        return f"must be {self.describe()} (got {_num(value)})" if below or above else None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


# The largest size any open-ended setting may have: far above every real count, step, size or number of
# seconds (1e9 s is 31 years), and below the limits of the waits and the integers those values reach.
ABSURD = 1e9

POSITIVE = Bounds(0, low_open=True)
AT_LEAST_0 = Bounds(0)
AT_LEAST_1 = Bounds(1)
UNIT_OPEN = Bounds(0, 1, high_open=True)  # [0, 1)
SEED = Bounds(0, 2**32 - 1)  # what numpy accepts; torch and random accept these too


def number_arg(kind: type = int, bounds: Bounds = AT_LEAST_1):
    """An argparse ``type=`` that parses an int/float and checks it against ``bounds``.

    argparse turns the message into ``argument --NAME: …`` and exit status 2.
    """

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'} {bounds.describe()}, got {text!r}") from None
        problem = bounds.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def device_arg(text: str) -> str:
    """argparse ``type=`` for ``--device``: the name must be a device that exists on this machine."""
    from paraclip.devices import check_device

    try:
        check_device(text, "device")
    except ParaclipError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def score_range_arg(text: str) -> tuple[float, float]:
    """argparse ``type=`` for ``--score-range LOW,HIGH`` (finite, LOW < HIGH)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers, e.g. 0,5), got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise argparse.ArgumentTypeError(f"expected finite LOW < HIGH, got {text!r}")
    return low, high


# -- outputs ---------------------------------------------------------------------------------

def _probe_dir(folder: Path, what: str) -> None:
    """Create ``folder`` (and parents) and write/delete a probe file in it."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ParaclipError(f"{what}: {existing} is a file, not a folder. Choose another path, or move the file.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".paraclip-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ParaclipError(f"{what}: cannot write into {folder} ({exc.strerror or exc}). "
                            f"Choose a folder you can write to, or fix its permissions.") from None


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Refuse an output file that is a folder or whose folder cannot be written; return it as a Path."""
    path = Path(path).expanduser()
    check_regular_path(path, option)
    if path.is_dir():
        raise ParaclipError(f"{option} {path} is a folder; give a file name inside it, e.g. "
                            f"{option} {path / 'results.json'}.")
    _probe_dir(path.parent if str(path.parent) else Path("."), f"{option} {path}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ParaclipError(f"{option} {path} exists and is read-only; choose another file or make it writable.")
    return path


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Refuse an output folder that is a file or cannot be created/written; return it as a Path."""
    path = Path(path).expanduser()
    check_regular_path(path, option)
    _probe_dir(path, f"{option} {path}")
    return path


# -- paths that are not regular files ---------------------------------------------------------

_SPECIAL_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists and is a FIFO, device or socket (symlinks followed), else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, unreadable, or not a path at all (a NUL byte)
        return None
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), None)


def check_regular_path(path: str | os.PathLike, option: str) -> None:
    """Refuse a FIFO, device or socket: reading one waits forever for a writer, writing one waits for a
    reader, and replacing one (atomic writes) would remove a device node."""
    kind = special_file_kind(path)
    if kind:
        why = ("opening it waits for another program to open its other end, forever if none does"
               if "FIFO" in kind else "it cannot be read as data or replaced by a finished output file")
        raise ParaclipError(f"{option} {path} is {kind}, not a regular file: {why}. Give a regular file (or a "
                            f"folder where one is expected).")


def check_no_special_files(args: argparse.Namespace) -> None:
    """:func:`check_regular_path` for every string (or list of strings) among parsed options that names
    an existing path: one check for the inputs and outputs of every command."""
    for dest, value in vars(args).items():
        option = "--" + dest.removeprefix("opt__").replace("_", "-")
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, (str, os.PathLike)) and str(item) and len(str(item)) < 4096:
                check_regular_path(item, option)


__all__ = ["ABSURD", "AT_LEAST_0", "AT_LEAST_1", "Bounds", "POSITIVE", "SEED", "UNIT_OPEN", "check_no_special_files",
           "check_output_dir", "check_output_file", "check_regular_path", "describe_os_error", "device_arg",
           "number_arg", "score_range_arg", "special_file_kind"]
