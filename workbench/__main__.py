"""``python -m workbench [--host H] [--port P] [--share]``: serve the app (what ``paraclip app`` runs)."""

from __future__ import annotations

import argparse

from paraclip.commands.app import HELP, add_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paraclip app", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    # imported after parsing: workbench.serving checks every setting before gradio loads
    from workbench.serving import serve

    serve(host=args.host, port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
