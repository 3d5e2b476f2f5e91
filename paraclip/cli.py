"""The ``paraclip`` console script. Each subcommand is a module in ``paraclip.commands``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors meant for people (:class:`ParaclipError`) are printed as
one paragraph without a stack trace; exit code 2 (1 for output that could not be written, e.g. a
full disk, when finished work has been kept).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from paraclip import __version__
from paraclip.errors import ParaclipError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paraclip",
        description="ParaCLIP Workbench: two-step paraphrasing, CLIP text-encoder fine-tuning and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"paraclip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in available_commands().items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except ParaclipError as exc:
        # a hosted app runs jobs with this set: their logs are shown to visitors
        shown = exc.without_file_text() if os.environ.get("PARACLIP_HIDE_FILE_TEXT") == "1" else exc
        print(f"paraclip {args.command}: error: {shown}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except OSError as exc:  # disk full, permissions, a folder where a file was expected, …
        from paraclip.checks import describe_os_error

        print(f"paraclip {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"paraclip {args.command}: interrupted; finished work is kept, rerun the same command to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
