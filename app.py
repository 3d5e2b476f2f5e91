"""Entry point for `python app.py` and Hugging Face Spaces: the ParaCLIP Workbench on its offline defaults."""

from __future__ import annotations

from workbench.app import serve

if __name__ == "__main__":
    serve()
