"""The ``paraclip`` console script. Each subcommand is a module in ``paraclip.commands``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. :func:`main` is the one error boundary: errors meant for people
(:class:`ParaclipError`, not-UTF-8 text, a missing package) print one paragraph and exit 2; runtime
failures (output that could not be written, memory, bugs) exit 1; SIGINT/SIGTERM exit 130/143.
No traceback unless PARACLIP_DEBUG=1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback

from paraclip import __version__
from paraclip.checks import check_no_special_files
from paraclip.commands.interrupts import received_signal, reset_signals, setup_handlers, signal_self_at
from paraclip.errors import Interrupted, describe_exception

# name -> module; the order is the order shown by --help.
COMMANDS = {
    "sts": "paraclip.commands.sts",
    "paraphrase": "paraclip.commands.paraphrase",
    "train": "paraclip.commands.train",
    "evaluate": "paraclip.commands.evaluate",
    "miniworld": "paraclip.commands.miniworld",
    "export": "paraclip.commands.export",
    "app": "paraclip.commands.app",
}


def available_commands() -> dict[str, str]:
    return {name: mod for name, mod in COMMANDS.items() if importlib.util.find_spec(mod) is not None}


class SuggestingParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors name a mistyped ``--option`` first, with close matches.

    argparse checks required options before it reports unknown ones, so ``--modle x`` used to be
    reported as "--model is required"; the mistyped word is what the user needs to see."""

    argv: list[str] = []  # the command line being parsed (set by _main)
    commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str):  # type: ignore[override]
        hint = self.unknown_option_hint()
        if hint:
            message = hint if message.startswith("unrecognized arguments") else f"{hint}; also: {message}"
        super().error(message)

    def unknown_option_hint(self) -> str:
        from paraclip.registry import suggest

        parser = self.commands.get(next((t for t in self.argv if not t.startswith("-")), ""), self) \
            if self.prog == "paraclip" else self
        known = list(parser._option_string_actions)
        # a prefix of a known option is an abbreviation argparse accepts (or reports as ambiguous itself)
        unknown = [name for tok in self.argv if tok.startswith("--") and tok != "--"
                   and not any(k.startswith(name := tok.split("=", 1)[0]) for k in known)]
        parts = []
        for tok in dict.fromkeys(unknown):
            close = suggest(tok, [k for k in known if k.startswith("--")], n=1)
            parts.append(f"unknown option {tok}" + (f" (did you mean {close[0]}?)" if close else ""))
        return "; ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="paraclip",
        description="ParaCLIP Workbench: two-step paraphrasing, CLIP text-encoder fine-tuning and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"paraclip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SuggestingParser)
    SuggestingParser.commands = {}
    for name, module_name in available_commands().items():
        signal_self_at(f"import:{name}")
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
        SuggestingParser.commands[name] = cmd
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every way it can end becomes an exit status and at most a short message
    (see :func:`paraclip.errors.describe_exception`): never a traceback unless PARACLIP_DEBUG=1."""
    reset_signals()
    with setup_handlers():  # a signal before the command installs its own ends the run cleanly
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    command = None
    try:
        signal_self_at("imports")
        parser = build_parser()
        SuggestingParser.argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        command = args.command
        _raise_if_signalled()  # a signal whose KeyboardInterrupt an import swallowed
        signal_self_at("setup")
        if not getattr(args, "_run", None):
            parser.print_help()
            return 1
        check_no_special_files(args)  # a FIFO or device as any path would hang the command: refuse it first
        code = int(args._run(args) or 0)
        signum = received_signal()
        if signum is not None and code != 128 + signum:
            if code == 0:  # the command finished without noticing: the signal still decides the status
                print(f"{_prog(command)}: {describe_exception(Interrupted(signum))[0]}", file=sys.stderr)
            return 128 + signum
        return code
    except SystemExit:  # argparse's own usage errors (status 2) and --help/--version (0)
        raise
    except BaseException as exc:  # noqa: BLE001 - the one error boundary
        return _report(exc, command)


def _raise_if_signalled() -> None:
    signum = received_signal()
    if signum is not None:
        raise Interrupted(signum)


def _prog(command: str | None) -> str:
    return f"paraclip {command}" if command else "paraclip"


def _report(exc: BaseException, command: str | None) -> int:
    signum = received_signal()
    try:
        if signum is not None and not isinstance(exc, KeyboardInterrupt):
            # whatever broke after a signal (a half-finished import, a recursion in cleanup) broke because of it
            exc_shown: BaseException = Interrupted(signum)
        else:
            exc_shown = exc
        if os.environ.get("PARACLIP_DEBUG") == "1":
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        # a hosted app runs jobs with this set: their logs are shown to visitors
        message, code = describe_exception(exc_shown, hide_file_text=os.environ.get("PARACLIP_HIDE_FILE_TEXT") == "1")
        plain = isinstance(exc_shown, KeyboardInterrupt) or message.startswith("internal error")
        print(f"{_prog(command)}: {'' if plain else 'error: '}{message}", file=sys.stderr)
        return code
    except KeyboardInterrupt as again:  # a signal while reporting: its status, no second message
        return getattr(again, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
