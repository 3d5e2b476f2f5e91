"""The bad-input corpus runner: each case is a command line (or an app handler call) that a careful
or adversarial user might give, with what must come back.

Every case asserts: the exit status (2 for bad input, 1 for output that could not be written, 0 for
inputs that are accepted with a note), no Python traceback anywhere in the output, and that the
message names what is wrong (the file and line, the option or field). Cases that break a run
half-way also check that nothing already finished was lost (``kept``).

A test module lists its cases and runs them with :func:`run_case`::

    CASES = [Case("batch-size-negative", lambda w: ["sts", ..., "--batch-size", "-4"], names=("--batch-size",))]

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
    def test_sts(case, workspace, capsys):
        run_case(case, workspace, capsys)

``workspace`` is whatever the module's fixture builds (a folder of input files); ``argv`` and
``names`` may be callables of it, so they can name files inside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Any], list[str]] | None = None  # CLI arguments after `paraclip`
    call: Callable[[Any], str] | None = None  # or an app handler call returning its status message
    status: int = 2  # expected exit status (CLI cases)
    names: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()  # substrings the message must contain
    kept: Callable[[Any, "Outcome"], None] | None = None  # the "nothing lost" check, after the run
    subprocess: bool = False  # run `python -m paraclip` in a child (for exit paths needing a real process)
    env: dict[str, str] = field(default_factory=dict)
    limit_file_bytes: int | None = None  # RLIMIT_FSIZE for the child: a disk that fills up


@dataclass
class Outcome:
    status: int | None
    text: str  # stdout + stderr, or the handler's message


def run_cli(argv: list[str], capsys) -> Outcome:
    from paraclip.cli import main

    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return Outcome(status, captured.out + captured.err)


def run_child(argv: list[str], env: dict[str, str], limit_file_bytes: int | None, cwd: Path) -> Outcome:
    def limits():
        if limit_file_bytes is not None:
            import resource
            import signal

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    proc = subprocess.run([sys.executable, "-m", "paraclip", *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, preexec_fn=limits, timeout=600)
    return Outcome(proc.returncode, proc.stdout + proc.stderr)


def run_case(case: Case, workspace: Any, capsys=None) -> Outcome:
    if case.call is not None:
        outcome = Outcome(None, case.call(workspace))
        assert outcome.text.startswith("❌"), f"{case.id}: expected an error message, got {outcome.text!r}"
    elif case.subprocess:
        outcome = run_child(case.argv(workspace), case.env, case.limit_file_bytes, Path(workspace.root))
    else:
        outcome = run_cli(case.argv(workspace), capsys)
    if case.call is None:
        assert outcome.status == case.status, f"{case.id}: exit status {outcome.status}, expected {case.status}:\n" \
                                              f"{outcome.text[-3000:]}"
    assert TRACEBACK not in outcome.text, f"{case.id}: a traceback reached the user:\n{outcome.text[-3000:]}"
    names = case.names(workspace) if callable(case.names) else case.names
    for name in names:
        assert str(name) in outcome.text, f"{case.id}: the message does not name {name!r}:\n{outcome.text[-3000:]}"
    if case.kept is not None:
        case.kept(workspace, outcome)
    return outcome
