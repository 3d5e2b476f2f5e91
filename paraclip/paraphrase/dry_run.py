"""``--dry-run`` for every backend: what a run would do, with nothing sent, no model loaded and nothing
written (the output is only read; its folder is checked, as for a run, by a probe file removed at once).

The plan reads the input and the output (read-only: a torn last line is ignored, not cut off), applies
the same filters and resume rule as the run, and counts the requests: two per caption still to do
(step 1, then step 2 on step 1's output). Re-samples of rejected outputs and retries are extra, and
the request cache may serve some. For an API model with a known price (or ``prices``), the cost is
estimated from text length (:mod:`paraclip.paraphrase.pricing`), at realtime or Batch API rates.

The batch backend's own ``dry_run=True`` (Python API) writes its request files; the CLI plans here
instead, because that path also resumes batches an earlier run left open (uploads, polls, collects).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from paraclip.paraphrase.config import ParaphraseConfig


def talks_http(backend_kind: str) -> bool:
    """True for the backends that send requests to a server (the rest load a model on this machine)."""
    from paraclip.paraphrase.backends import BACKENDS

    return BACKENDS.get(backend_kind).startswith("paraclip.paraphrase.backends.openai")


def is_batch(backend_kind: str) -> bool:
    from paraclip.paraphrase.backends import BACKENDS

    return BACKENDS.get(backend_kind).endswith(":OpenAIBatchBackend")


def default_model(backend_kind: str) -> str:
    """The model an API backend uses when none is named (read from its signature, not copied)."""
    import importlib

    from paraclip.paraphrase.backends import BACKENDS

    module, name = BACKENDS.get(backend_kind).split(":")
    return inspect.signature(getattr(importlib.import_module(module), name)).parameters["model"].default


def plan_run(records_or_input, out_path: str | Path, backend_kind: str, model: str | None = None,
             config: ParaphraseConfig | None = None, prices: tuple[float, float] | None = None) -> dict[str, Any]:
    """What ``run_paraphrasing`` would do with this input and output; sends, loads and writes nothing."""
    from paraclip.paraphrase.backends.base import ChatRequest
    from paraclip.paraphrase.engine import _check_resume, kept_on_resume, prepare_run
    from paraclip.paraphrase.meaning.judge import RUN_JUDGE_VERSION, check_judge_backend, judge_request
    from paraclip.paraphrase.pricing import estimate_cost

    config, out_path, captions, kept, n_filtered = prepare_run(records_or_input, out_path, config)
    check_judge_backend(config, is_batch(backend_kind))
    existing = _read_existing(out_path)
    _check_resume(out_path, existing, kept)  # an output of another input is refused here too
    existing = kept_on_resume(existing, config)
    todo = [item for i, item in enumerate(kept) if i not in existing]
    preset = config.resolve_preset(None)
    api = talks_http(backend_kind)
    model = model or (default_model(backend_kind) if api else None)
    plan: dict[str, Any] = {
        "dry_run": True, "backend": backend_kind, "talks_http": api, "model": model, "input": captions.source,
        "input_captions": len(captions), "filtered_by_length": n_filtered, "kept": len(kept),
        "done": len(existing), "todo": len(todo), "requests": (4 if config.meaning_judge else 2) * len(todo),
        "judge": config.meaning_judge, "preset": preset.name,
        "preset_from_model": not config.preset and not api, "estimate": None, "estimate_text": None,
        "example": preset.messages(1, todo[0].caption) if todo else None,
    }
    if api and todo:
        def request(step: int, text: str) -> ChatRequest:
            return ChatRequest.from_messages(preset.messages(step, text), preset.sampling, seed=0)

        # step 2 rewrites step 1's output, about as long as the caption: the caption stands in for it
        pairs = [(request(step, item.caption), item.caption) for item in todo for step in (1, 2)]
        if config.meaning_judge:  # --meaning-judge: one short request per paraphrase, replies of a few tokens
            pairs += [(judge_request(item.caption, item.caption, RUN_JUDGE_VERSION), item.caption)
                      for item in todo for _ in (1, 2)]
        estimate = estimate_cost(pairs, model, prices)
        plan["estimate"] = estimate.to_dict()
        plan["estimate_text"] = estimate.describe(batch=is_batch(backend_kind))
    return plan


def _read_existing(path: Path) -> dict[int, dict[str, Any]]:
    """Records already in the output, by index, without changing the file (a torn last line is ignored)."""
    from paraclip.errors import DataError

    if not path.is_file():
        return {}
    lines = path.read_bytes().split(b"\n")[:-1]  # the part after the last newline may be torn
    records = {}
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            records[int(rec["index"])] = rec
        except (ValueError, KeyError, TypeError) as exc:
            if n == len(lines):
                break
            raise DataError(f"{path}:{n}: not a paraphrase record ({exc}). The output file is damaged; fix or "
                            f"remove that line, then rerun.") from exc
    return records


def format_dry_run(plan: dict[str, Any]) -> str:
    """The plan as the CLI prints it."""
    model = f" ({plan['model']})" if plan.get("model") else ""
    lines = [
        f"dry run: nothing is sent{'' if plan['talks_http'] else ', no model is loaded'} and "
        f"no record is written.",
        f"input: {plan['input']} ({plan['input_captions']} captions; {plan['filtered_by_length']} filtered by "
        f"length; {plan['kept']} kept, {plan['done']} already done in the output)",
        f"would paraphrase {plan['todo']} caption{'s' if plan['todo'] != 1 else ''} with backend "
        f"{plan['backend']}{model}: {plan['requests']} requests (2 steps each"
        + (", and the meaning judge's question per paraphrase" if plan.get("judge") else "")
        + "; re-samples of rejected outputs are extra, cached requests are not sent)",
        f"prompt preset: {plan['preset']}" + (" (small-model instead for a local model under 3B parameters, "
                                              "decided when it loads)" if plan["preset_from_model"] else ""),
    ]
    if plan.get("estimate_text"):
        lines.append(f"cost estimate: {plan['estimate_text']}")
    if plan.get("example"):
        lines.append("first request's messages:")
        lines += [f"  {m['role']}: {m['content']}" for m in plan["example"]]
    return "\n".join(lines)


__all__ = ["format_dry_run", "is_batch", "plan_run", "talks_http"]
