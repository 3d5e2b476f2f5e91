"""``paraclip miniworld --reproduce``: the whole ParaCLIP pipeline on the mini-world, offline on CPU.

Stages (each cached in the run folder; a rerun skips finished stages and an interrupted
training resumes from its last checkpoint)::

    world        render held-out test scenes, validation scenes (their own stream), then training
                 scenes (test and validation meanings excluded)
    paraphrases  two-step paraphrases of the training captions (the scene-aware rewriter)
    evalsets     in-vocabulary, held-out-rewriter and out-of-vocabulary paraphrase pairs and
                 relation/attribute swaps, for the test and the validation world
    baseline-sN  a CLIP trained from scratch (both towers) on canonical captions, seed N
    paraclip-sN  ParaCLIP fine-tuning of baseline-sN's text encoder (image tower frozen), seed N,
                 keeping the candidate stopping checkpoints
    llm          (optional) the offline LLM as a second paraphrase source, checked against the specs
    abl-ARM-sN   (optional, ``ablations``) the paper's ablation and fair controls (ablations.py)
    select, evaluate-sN, abl-evaluate-sN, report
                 the scoring stages (scoring.py): the stopping step chosen on the validation
                 world, the test world scored once, the report

A stage's fingerprint covers its settings and its inputs' fingerprints; a stage whose
fingerprint changed is redone (its old outputs are removed), so stale results never mix.
:func:`plan_stages` lists the stages; the settings are in ``config.py``, the run folder and
the stage runner in ``runner.py``, the main stages' work in ``stages.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from paraclip.errors import ParaclipError
from paraclip.files import atomic_write_text
from paraclip.miniworld.config import MiniWorldConfig
from paraclip.miniworld.runner import Progress, ProgressFn, Run, Stage

# The stages' modules (numpy, PIL, the trainer's imports) load when a run is planned, not when the
# app imports ensure_default_models.


def plan_stages(run: Run, evaluate: bool = True) -> list[Stage]:
    """Every stage of a reproduction, in order: the one list that both the progress bar and the
    run use. The LLM source and the ablations extend it with their own stages.

    The selection seed (the first) comes first: its baseline, then every main arm at every rate of
    ``lr_grid``; the select stage chooses each arm's rate and stopping step on the validation world;
    the other seeds then train each arm at its chosen rate."""
    from paraclip.miniworld import ablations, arms, llm_source, scoring
    from paraclip.miniworld.stages import baseline_stage, data_stages

    cfg = run.config
    first, *others = cfg.seeds
    stages = data_stages(run) + [baseline_stage(run, first)]
    stages += [arms.main_arm_stage(run, arm, first, lr) for arm in arms.main_arms(cfg) for lr in cfg.lr_grid]
    if evaluate or others:
        stages.append(scoring.select_stage(run))
    for seed in others:
        stages += [baseline_stage(run, seed)] + [arms.main_arm_stage(run, arm, seed, None)
                                                 for arm in arms.main_arms(cfg)]
    if cfg.llm_captions > 0:
        stages += llm_source.llm_stages(run)
    if cfg.ablations:
        stages += ablations.ablation_training_stages(run)
    if evaluate:
        stages += [scoring.evaluate_stage(run, seed) for seed in cfg.seeds]
        if cfg.ablations:
            stages += ablations.ablation_evaluation_stages(run)
        stages.append(scoring.report_stage(run))
    return stages


def planned_fingerprints(run: Run, evaluate: bool = True) -> dict[str, tuple[str, dict]]:
    """``stage -> (fingerprint, parts)`` of every planned stage, from the settings alone: nothing runs
    (an LLM-data variant, which decides at its turn whether to skip, is counted as running)."""
    fingerprints: dict[str, str] = {}
    out = {}
    for stage in plan_stages(run, evaluate):
        out[stage.name] = stage.fingerprint_of(fingerprints)
        fingerprints[stage.name] = out[stage.name][0]
    return out


@dataclass
class Reproduction:
    """What :func:`reproduce` made: the run folder, the report (None without evaluation), the
    checkpoints (:func:`checkpoints_of`), the test world's gallery folder, the wall time, and the
    info of every stage that ran or was found cached."""

    root: Path
    report: Path | None
    checkpoints: dict[str, dict[int, str]]
    gallery: Path
    seconds: float
    stages: dict[str, dict]


def checkpoints_of(run: Run) -> dict[str, dict[int, str]]:
    """``model -> seed -> checkpoint`` of a finished run: ``baseline``, ``paraclip`` (at the chosen
    step once the select stage ran, else its final checkpoint) and each LLM-data variant's label."""
    from paraclip.miniworld import llm_source, scoring
    from paraclip.miniworld.arms import PARACLIP, run_kind

    out: dict[str, dict[int, str]] = {"baseline": {}, "paraclip": {}}
    for seed in run.config.seeds:
        out["baseline"][seed] = run.infos[f"baseline-s{seed}"]["checkpoint"]
        out["paraclip"][seed] = (scoring.chosen_checkpoint(run, PARACLIP, seed) if "select" in run.infos
                                 else run.infos[f"{run_kind(run.config, PARACLIP, seed)}-s{seed}"]["checkpoint"])
    for kind, label in llm_source.LLM_LABELS.items():
        for seed in run.config.seeds:
            info = run.infos.get(f"{kind}-s{seed}")
            if info is not None:
                out.setdefault(label, {})[seed] = info["checkpoint"]
    return out


def reproduce(config: MiniWorldConfig | None = None, root: str | os.PathLike | None = None,
              progress: ProgressFn | None = None, verbose: bool = False, evaluate: bool = True,
              report_to: str | os.PathLike | None = None) -> Reproduction:
    """Run (or resume) every stage; returns where everything is. ``evaluate=False`` stops after training."""
    cfg = config or MiniWorldConfig()
    extra = sorted(set(cfg.ablation_seeds) - set(cfg.seeds))
    if cfg.ablations and extra:
        raise ParaclipError(f"ablation_seeds {extra} are not training seeds {cfg.seeds}: every ablation arm "
                            "fine-tunes that seed's baseline. Add them to --seeds or drop them.")
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    run = Run(cfg, root, Progress(progress, verbose))
    run.root.mkdir(parents=True, exist_ok=True)
    with run.locked():  # another process running in this folder is named before anything is written
        atomic_write_text(run.root / "config.json", json.dumps(cfg.to_dict(), indent=1))
        start = time.perf_counter()
        run.run_stages(plan_stages(run, evaluate))
    report = None
    if evaluate:
        report = run.report_dir / "report.md"
        if report_to:  # everything but the 5 MB figures.html with plotly inlined (figures-cdn.html is the same)
            dest = Path(report_to)
            dest.mkdir(parents=True, exist_ok=True)
            for item in run.report_dir.iterdir():
                if item.is_file() and item.name != "figures.html":
                    shutil.copy2(item, dest / item.name)
    return Reproduction(run.root, report, checkpoints_of(run), run.gallery_dir, time.perf_counter() - start,
                        run.infos)


# -- the app's offline defaults ------------------------------------------------------------------------

def ensure_default_models(progress: ProgressFn | None = None, root: str | os.PathLike | None = None,
                          config: MiniWorldConfig | None = None) -> dict[str, str]:
    """The app's offline default models and gallery, built on first use and cached.

    Returns ``{"baseline": checkpoint, "paraclip": checkpoint, "gallery": folder}``: the seed-0
    baseline CLIP trained from scratch on the mini-world, its ParaCLIP fine-tuned version, and the
    held-out scenes as a gallery folder (``captions.csv`` inside; ``load_gallery`` reads it). They
    live in the same cached run as ``paraclip miniworld --reproduce`` (``$PARACLIP_CACHE/miniworld``),
    so whichever runs first builds them for the other.
    """
    cfg = config or MiniWorldConfig()
    cfg = dataclasses.replace(cfg, seeds=[cfg.seeds[0]], lr_grid=[cfg.lr_grid[0]], controls=False)
    out = reproduce(cfg, root, progress=progress, evaluate=False)
    seed = cfg.seeds[0]
    return {"baseline": out.checkpoints["baseline"][seed], "paraclip": out.checkpoints["paraclip"][seed],
            "gallery": str(out.gallery)}


def default_gallery(root: str | os.PathLike | None = None, config: MiniWorldConfig | None = None):
    """The mini-world's held-out scenes as a :class:`~paraclip.data.galleries.Gallery`.

    Read from the run folder (the one ``ensure_default_models`` uses by default); rendered first
    if that folder has no world yet.
    """
    from paraclip.data.galleries import folder_gallery
    from paraclip.miniworld.stages import world_stage

    run = Run(config or MiniWorldConfig(), root)
    if not (run.gallery_dir / "captions.csv").is_file():
        stage = world_stage(run)
        run.run_stage(dataclasses.replace(stage, message="rendering the mini-world", weight=1.0))
    return folder_gallery(run.gallery_dir, name="mini-world")
