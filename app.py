"""Entry point for `python app.py` and Hugging Face Spaces."""

from __future__ import annotations

import os

from workbench import build_demo

if __name__ == "__main__":
    demo = build_demo()
    demo.queue(default_concurrency_limit=4).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
