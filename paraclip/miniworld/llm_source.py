"""The second paraphrase source: an LLM through the paraphrasing engine, checked against the scene specs.

Stages (first training seed only; opt-in with ``llm_captions > 0``):

* ``llm`` — the first ``llm_captions`` training captions go through
  :func:`paraclip.paraphrase.run_paraphrasing` (offline local LLM by default, or any
  OpenAI-compatible endpoint); each paraphrase the engine returns is then checked against the
  scene's spec, and records that change the meaning are marked ``filtered`` with the checker's
  reason (counted, never silently dropped). The same captions' rewriter paraphrases are
  written alongside, so the two sources are compared on equal data.
* ``paraclip-llm-sN`` / ``paraclip-llmraw-sN`` / ``paraclip-rwsub-sN`` — ParaCLIP fine-tuning of
  baseline-sN with the checked LLM paraphrases, with all of the engine's LLM paraphrases
  (meaning changes included), and with the rewriter's paraphrases of the same captions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from paraclip.files import atomic_write_text
from paraclip.miniworld.checker import check
from paraclip.miniworld.jsonl import load_scenes, read_jsonl, read_run_json, write_jsonl
from paraclip.miniworld.runner import Stage
from paraclip.miniworld.stages import baseline_checkpoint, paraclip_minutes, train_paraclip
from paraclip.paraphrase.records import ParaphraseRecord

LLM_LABELS = {
    "paraclip-llm": "ParaCLIP (LLM, checked)",
    "paraclip-llmraw": "ParaCLIP (LLM, unchecked)",
    "paraclip-rwsub": "ParaCLIP (rewriter, same captions)",
}


def _paths(run) -> dict[str, Path]:
    data = run.root / "data"
    return {"raw": data / "llm-raw.jsonl", "checked": data / "llm-checked.jsonl", "unchecked": data / "llm-ok.jsonl",
            "rewriter": data / "rewriter-same-captions.jsonl", "summary": data / "llm-summary.json"}


def make_backend_for(cfg):
    from paraclip.paraphrase.backends import make_backend

    if cfg.llm_backend == "openai":
        return make_backend("openai", model=cfg.llm_model or "gpt-3.5-turbo", base_url=cfg.llm_base_url)
    return make_backend("local", model=cfg.llm_model, threads=cfg.threads)


def llm_paraphrases(run) -> dict:
    """Run the engine on the first N training captions, check every output against its scene."""
    from paraclip.paraphrase.engine import run_paraphrasing

    cfg = run.config
    paths = _paths(run)
    scenes = load_scenes(run, "train")[:cfg.llm_captions]
    spec_of = {image_id: spec for image_id, _, spec in scenes}
    backend = make_backend_for(cfg)

    def progress(stats: dict) -> None:
        done = stats.get("done", 0) if isinstance(stats, dict) else 0
        run.progress.update(done / max(len(scenes), 1), f"LLM paraphrasing {done}/{len(scenes)}")

    try:
        summary = run_paraphrasing([{"image_id": i, "caption": c} for i, c, _ in scenes], paths["raw"], backend,
                                   progress=progress)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    reasons: Counter = Counter()
    checked: list[ParaphraseRecord] = []
    unchecked: list[dict] = []  # the engine's ok records as it wrote them
    for rec in map(ParaphraseRecord.from_json, read_jsonl(paths["raw"])):
        if rec.status != "ok":
            reasons[f"engine: {rec.status}"] += 1
            checked.append(rec)
            continue
        unchecked.append(rec.to_json())
        spec = spec_of[rec.image_id]
        bad = next((r for r in (check(rec.paraphrase_1, spec), check(rec.paraphrase_2, spec)) if not r.ok), None)
        if bad is None:
            reasons["accepted"] += 1
        else:
            reasons[f"checker: {bad.reason}"] += 1
            rec.mark("filtered", f"scene-spec check: {bad.reason} ({bad.detail})")
        checked.append(rec)
    write_jsonl(paths["checked"], [r.to_json() for r in checked])
    write_jsonl(paths["unchecked"], unchecked)
    accepted_ids = {r.image_id for r in checked if r.status == "ok"}
    rewriter = [r for r in read_jsonl(run.paraphrases) if r["image_id"] in accepted_ids]
    write_jsonl(paths["rewriter"], rewriter)
    novelty = [r["quality"].get("novelty_2_vs_caption") for r in unchecked]
    novelty = [v for v in novelty if v is not None]
    info = {
        "captions": len(scenes), "backend": getattr(backend, "kind", "?"), "model": getattr(backend, "model", "?"),
        "engine_summary": {k: summary.get(k) for k in ("ok", "failed", "filtered") if k in summary},
        "outcomes": dict(reasons), "accepted": len(accepted_ids), "engine_ok": len(unchecked),
        "mean_novelty_vs_caption": sum(novelty) / len(novelty) if novelty else None,
        "examples": [{k: getattr(r, k) for k in ("caption", "paraphrase_1", "paraphrase_2", "status", "error")}
                     for r in checked[:6]],
    }
    atomic_write_text(paths["summary"], json.dumps(info, indent=1))
    return info


# the records each fine-tuning variant trains on: its data file and the llm stage's count of them
VARIANT_DATA = {"paraclip-llm": ("checked", "accepted"), "paraclip-llmraw": ("unchecked", "engine_ok"),
                "paraclip-rwsub": ("rewriter", "accepted")}


def llm_stages(run) -> list[Stage]:
    """The LLM stage and the ParaCLIP fine-tunings on its data (first training seed)."""
    cfg = run.config
    paths = _paths(run)
    llm = Stage("llm", cfg.llm_captions * 2 * 1.5 / 60,  # ~1.5 s per step on 2 cores for a 1.5B model
                f"paraphrasing {cfg.llm_captions} training captions with the LLM (second source)",
                lambda fp: {"world": fp["world"], "paraphrases": fp["paraphrases"], "n": cfg.llm_captions,
                            "backend": cfg.llm_backend, "model": cfg.llm_model, "url": cfg.llm_base_url},
                [paths["raw"], paths["checked"], paths["summary"]], lambda: llm_paraphrases(run))
    return [llm] + [_variant_stage(run, kind) for kind in LLM_LABELS]


def _variant_stage(run, kind: str) -> Stage:
    """ParaCLIP fine-tuning of the first seed's baseline on one variant's data; skipped when the llm
    stage left fewer records than one batch."""
    cfg = run.config
    seed, batch, steps = cfg.seeds[0], cfg.llm_paraclip_batch_size, cfg.llm_paraclip_steps
    data, count_key = VARIANT_DATA[kind]

    def too_few() -> str | None:
        count = run.infos.get("llm", {}).get(count_key, 0)
        return f"only {count} records, fewer than one batch of {batch}" if count < batch else None

    return Stage(f"{kind}-s{seed}", paraclip_minutes(steps, batch),
                 f"{LLM_LABELS[kind]}, seed {seed} ({steps} steps x {batch})",
                 lambda fp: {"baseline": fp[f"baseline-s{seed}"], "llm": fp["llm"], "kind": kind, "steps": steps,
                             "batch": batch, "lr": cfg.lr_grid[0], "loss": cfg.paraclip_loss, "seed": seed},
                 [run.run_dir(kind, seed)],
                 lambda: train_paraclip(run, seed, baseline_checkpoint(run, seed), data=_paths(run)[data], kind=kind,
                                        steps=steps, batch_size=batch),
                 skip=too_few)


def llm_report_lines(run, stages: dict) -> list[str]:
    summary_path = _paths(run)["summary"]
    if not summary_path.is_file():
        return []
    info = read_run_json(summary_path, redo=summary_path)
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(info["outcomes"].items()))
    lines = [
        "## Second paraphrase source: the LLM", "",
        f"{info['captions']} training captions through the paraphrasing engine ({info['backend']} backend, model "
        f"`{info['model']}`), each output checked against its scene's spec. Outcomes: {outcomes}. "
        f"Accepted: {info['accepted']} of {info['captions']}"
        + (f"; mean lexical novelty of step 2 vs the caption: {info['mean_novelty_vs_caption']:.2f}"
           if info.get("mean_novelty_vs_caption") is not None else "") + ".", "",
        f"ParaCLIP was fine-tuned (seed {run.config.seeds[0]}, {run.config.llm_paraclip_steps} steps x "
        f"{run.config.llm_paraclip_batch_size}) on the checked LLM paraphrases, on all the engine's LLM paraphrases, "
        "and on the rewriter's paraphrases of the same accepted captions; their rows are under \"Other models\" "
        "above (a variant with fewer records than one batch is skipped).", "",
        "Examples:", "",
    ]
    for ex in info.get("examples", []):
        lines.append(f"- {ex['caption']} → {ex['paraphrase_1']} → {ex['paraphrase_2']} ({ex['status']}"
                     + (f": {ex['error']}" if ex.get("error") else "") + ")")
    lines.append("")
    return lines
