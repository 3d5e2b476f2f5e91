"""``paraclip app``: serve the Workbench (the same app as ``python app.py``).

The library never imports the app: this command checks its options, then replaces itself with
``python -m workbench`` (same process id, so signals and the exit status are the app's own).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from paraclip.errors import ParaclipError

HELP = "Serve the ParaCLIP Workbench web app (Gradio) on its offline defaults."


def port_number(text: str) -> int:
    """A TCP port, 1-65535 (argparse turns the ValueError into a usage message and exit 2)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=port_number, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")


def app_argv(args: argparse.Namespace) -> list[str]:
    """The ``python -m workbench`` command line for these options."""
    argv = [sys.executable, "-m", "workbench"]
    if args.host is not None:
        argv += ["--host", args.host]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    return argv + (["--share"] if args.share else [])


def run(args: argparse.Namespace) -> int:
    spec = importlib.util.find_spec("workbench")  # finds the folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ParaclipError("the Workbench app is not available (no `workbench` package next to this install); "
                            "run `python app.py` from a source checkout with gradio installed.")
    # the child must find the same workbench/ even when the console script runs from another folder
    source_root = str(Path(list(spec.submodule_search_locations)[0]).parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")])))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, app_argv(args), env)
    return 0  # not reached: execve replaces this process
