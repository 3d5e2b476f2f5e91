"""The reproduction's scoring stages: choose on the validation world, score the test world once, report.

Stages (after training; each cached like the others)::

    select          the ParaCLIP stopping step, from its candidate checkpoints on the validation world
    evaluate-sN     baseline-sN vs ParaCLIP-sN (at the chosen step) on every test-world task and STS-B
    abl-evaluate-sN (with --ablations) the baseline and every ablation arm on the test world
    report          Markdown + CSV + plotly HTML over all seeds
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

EVALUATE_VERSION = 2  # exact, index-ordered ties in the gallery search; the held-out rewriter's pairs


def evaluate_seed(run, seed: int, models: dict[str, str], out_dir: Path | None = None,
                  n_boot: int | None = None) -> dict:
    """Every test-world task (and STS-B) for the given ``label -> checkpoint`` models; first = baseline."""
    from paraclip.evaluation.suite import ModelRef, evaluate_models
    from paraclip.miniworld.tasks import build_tasks
    from paraclip.models import load_encoder

    evaluators, notes = build_tasks(run)
    refs = [ModelRef(label, encoder=load_encoder(path, device="cpu")) for label, path in models.items()]
    for ref in refs:
        # one name for the feature cache, whatever the checkpoint file is called: the cache key also
        # hashes the image tower's weights, so the models of a seed (ParaCLIP and every arm keep the
        # baseline's frozen tower) share the image features and the images are embedded once
        ref.encoder.name, ref.encoder.pretrained = f"miniworld-s{seed}", None

    def progress(done: int, total: int, message: str) -> None:
        run.progress.update(done / max(total, 1), f"evaluate seed {seed}: {message}")

    out = evaluate_models(refs, evaluators=evaluators, out_dir=out_dir or run.results_dir(seed),
                          n_boot=n_boot or run.config.n_boot, seed=seed, progress=progress)
    return {"models": models, "results": len(out.results), "skipped": [dataclasses.asdict(s) for s in out.skipped],
            "notes": notes}


def run_scoring_stages(run, do, checkpoints: dict, arms: dict | None, stages: dict) -> Path:
    """Selection, test-world evaluation (ablation arms too when ``arms``) and the report; returns
    the report's path. Sets ``checkpoints["paraclip"]`` to the chosen checkpoints."""
    from paraclip.miniworld.report import write_report
    from paraclip.miniworld.selection import (
        SELECTION_VERSION, candidate_checkpoint, select_stopping_step, selection_file,
    )

    cfg = run.config
    fp = run.fingerprints
    chosen = do("select", {"v": SELECTION_VERSION, "evalsets": fp["evalsets"],
                           "runs": [fp[f"{kind}-s{s}"] for s in cfg.seeds for kind in ("baseline", "paraclip")]},
                [selection_file(run).parent], lambda: select_stopping_step(run),
                "choosing the ParaCLIP stopping step on the validation world")["chosen_step"]
    for seed in cfg.seeds:
        checkpoints["paraclip"][seed] = str(candidate_checkpoint(run, seed, chosen))
        models = {"baseline": checkpoints["baseline"][seed], "ParaCLIP": checkpoints["paraclip"][seed]}
        models.update({label: ck[seed] for label, ck in checkpoints.items()
                       if label not in ("baseline", "paraclip") and seed in ck})
        trained = [fp[k] for k in fp if k.endswith(f"-s{seed}") and not k.startswith(("abl-", "evaluate-"))]
        do(f"evaluate-s{seed}", {"v": EVALUATE_VERSION, "models": trained, "select": fp["select"],
                                 "evalsets": fp["evalsets"], "sts": cfg.sts, "n_boot": cfg.n_boot},
           [run.results_dir(seed)], lambda s=seed, m=models: evaluate_seed(run, s, m),
           f"evaluating baseline vs ParaCLIP (step {chosen}), seed {seed}")
    if arms is not None:
        from paraclip.miniworld.ablations import run_ablation_evaluation

        run_ablation_evaluation(run, do, arms, checkpoints)
    do("report", {"evals": [fp[k] for k in fp if "evaluate-s" in k], "n_boot": cfg.n_boot, "t": time.time()},
       [run.report_dir], lambda: write_report(run, stages), "writing the report")
    return run.report_dir / "report.md"
