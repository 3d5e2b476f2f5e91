"""``paraclip app``: serve the Workbench (the same app as ``python app.py``)."""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
    try:
        from workbench.serving import serve
    except ImportError as exc:  # the library is installed without the app folder
        from paraclip.errors import ParaclipError

        raise ParaclipError(f"the Workbench app is not available ({exc}); run `python app.py` from a source "
                            f"checkout with gradio installed.") from None
    serve(host=args.host, port=args.port, share=args.share)
    return 0
