"""Entry point for `python app.py` and Hugging Face Spaces: the ParaCLIP Workbench on its offline defaults."""

from __future__ import annotations

# workbench.serving checks every setting before gradio is imported (gradio itself reads
# GRADIO_SERVER_PORT at import, with a traceback for a bad value)
from workbench.serving import serve

if __name__ == "__main__":
    serve()
