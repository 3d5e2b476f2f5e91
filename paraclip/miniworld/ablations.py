"""The paper's loss ablation on the mini-world (``paraclip miniworld --reproduce --ablations``).

Every arm fine-tunes the text encoder of the same baseline (per seed) on the same training
records, for the same number of steps, with the same seeds, learning rate and schedule; only
the objective differs (presets of :mod:`paraclip.training.losses`; the arms are in ``arms.py``):

* ``paraclip`` — the paper's L1(image, p2) + L2(caption, p1) + L3(p1, p2) (Kim et al., 2024,
  Sec. 3), trained again on this stage's schedule so that it is compared like with like;
* the paper's ablation (Kim et al., 2024, Sec. 4, the loss ablation): each term dropped
  (``no-l1``, ``no-l2``, ``no-l3``) and each term alone (``l1-only``, ``l2-only``, ``l3-only``),
  at the same batch of images, as the paper does.

The fair controls (CLIP fine-tuning, LaCLIP-style) are main arms now, at the main budget
(``arms.py``). This stage has its own schedule (``ablation_steps`` × ``ablation_batch_size``,
default 300 × 128: an eighth of the main run's image samples) and one learning rate
(``ablation_lr``), both fixed in advance: the final checkpoint of every arm is scored, nothing is
selected by looking at results. An arm beats another only by the report's one rule
(``headline.verdict``: Holm-adjusted item test and seed interval both exclude 0).
"""

from __future__ import annotations


from paraclip.miniworld.arms import ABLATION_ARMS, Arm, text_samples_per_step
from paraclip.miniworld.headline import BETTER, TIE, verdict
from paraclip.miniworld.report import BASELINE, aggregate, fmt, interval, load_seed_results, mark_holm
from paraclip.miniworld.runner import Stage
from paraclip.miniworld.stages import baseline_checkpoint, paraclip_minutes, train_paraclip
from paraclip.miniworld.tasks import EVALUATE_VERSION, TASK_NAMES, evaluate_seed

ARMS = ABLATION_ARMS
ARM_BY_LABEL = {arm.label: arm for arm in ARMS}


def ablation_seeds(cfg) -> list[int]:
    return list(cfg.ablation_seeds) if cfg.ablation_seeds else list(cfg.seeds)


def _text_sample_note(batch_size: int) -> str:
    """Which arms see the full three-role text count per step, from the arms themselves (the table's column)."""
    full = 3 * batch_size
    fewer = [f"{arm.label}: {text_samples_per_step(arm, batch_size)}" for arm in ARMS
             if text_samples_per_step(arm, batch_size) != full]
    note = f"every arm sees {full} text samples per step"
    return note + (f" except {', '.join(fewer)}" if fewer else "")


def ablation_training_stages(run) -> list[Stage]:
    """Every arm for every ablation seed; each fine-tunes that seed's baseline (the pipeline adds
    these after the main training stages)."""
    return [_arm_stage(run, arm, seed) for seed in ablation_seeds(run.config) for arm in ARMS]


def _arm_stage(run, arm: Arm, seed: int) -> Stage:
    cfg = run.config
    batch = cfg.ablation_batch_size * arm.batch_factor
    share = text_samples_per_step(arm, cfg.ablation_batch_size) / (3 * cfg.ablation_batch_size)
    return Stage(f"abl-{arm.name}-s{seed}", share * paraclip_minutes(cfg.ablation_steps, cfg.ablation_batch_size),
                 f"ablation {arm.label}, seed {seed} ({cfg.ablation_steps} steps x {batch})",
                 lambda fp: {"baseline": fp[f"baseline-s{seed}"], "paraphrases": fp["paraphrases"], "arm": arm.name,
                             "loss": arm.loss, "steps": cfg.ablation_steps, "batch": batch, "lr": cfg.ablation_lr,
                             "wd": cfg.paraclip_weight_decay, "seed": seed},
                 [run.run_dir(f"abl-{arm.name}", seed)],
                 lambda: train_paraclip(run, seed, baseline_checkpoint(run, seed), kind=f"abl-{arm.name}",
                                        steps=cfg.ablation_steps, batch_size=batch, loss=arm.loss,
                                        lr=cfg.ablation_lr))


# -- evaluation ----------------------------------------------------------------------------------

def ablation_results_dir(run, seed: int):
    return run.root / "results" / f"ablations-seed{seed}"


def ablation_evaluation_stages(run) -> list[Stage]:
    """Score the baseline and every arm of every ablation seed on the test world."""
    return [_arm_evaluation_stage(run, seed) for seed in ablation_seeds(run.config)]


def _arm_evaluation_stage(run, seed: int) -> Stage:
    cfg = run.config

    def work() -> dict:
        models = {"baseline": baseline_checkpoint(run, seed),
                  **{arm.label: run.infos[f"abl-{arm.name}-s{seed}"]["checkpoint"] for arm in ARMS}}
        # the report bootstraps the arms itself; the suite's own deltas here are a by-product
        return evaluate_seed(run, seed, models, out_dir=ablation_results_dir(run, seed), n_boot=100)

    return Stage(f"abl-evaluate-s{seed}", 0.3 * (len(ARMS) + 1),
                 f"evaluating the baseline and {len(ARMS)} ablation arms, seed {seed}",
                 lambda fp: {"v": EVALUATE_VERSION, "models": [fp[f"baseline-s{seed}"]]
                             + [fp[f"abl-{arm.name}-s{seed}"] for arm in ARMS],
                             "evalsets": fp["evalsets"], "sts": cfg.sts, "n_boot": cfg.n_boot},
                 [ablation_results_dir(run, seed)], work)


# Compact columns of the arms table: (task key, metric, short name)
ARM_COLUMNS = (("in_vocab", "AO@10", "in-vocab AO@10"), ("heldout", "AO@10", "held-out AO@10"),
               ("canonical", "AO@10", "canonical-word AO@10"), ("oov", "AO@10", "OOV AO@10"), ("in_vocab", "p_R@1", "in-vocab p R@1"),
               ("heldout", "p_R@1", "held-out p R@1"), ("retrieval", "t2i_R@1", "t2i R@1"),
               ("retrieval", "i2t_R@1", "i2t R@1"), ("relation", "macro_accuracy", "rel-swap"),
               ("attribute", "macro_accuracy", "attr-swap"), ("sts", "spearman", "STS-B"),
               ("zs_shape", "acc1", "zero-shot shape"), ("zs_colour", "acc1", "zero-shot colour"),
               ("zs_count", "acc1", "zero-shot count"))


def arms_results(run, evaluators) -> dict | None:
    """The arms' test-world results against the baseline and against the ParaCLIP arm (None: not evaluated)."""
    import pandas as pd


    seeds = [s for s in ablation_seeds(run.config) if ablation_results_dir(run, s).is_dir()]
    if not seeds:
        return None
    by_seed = load_seed_results({s: ablation_results_dir(run, s) for s in seeds})
    wanted = {(TASK_NAMES[key], metric) for key, metric, _ in ARM_COLUMNS}

    def metrics_of(task):
        return [m for t, m in wanted if t == task]

    tidy, vs_baseline = aggregate(evaluators, by_seed, reference=BASELINE, n_boot=run.config.n_boot,
                                  metrics_of=metrics_of)
    paper = ARMS[0].label
    by_seed_arms = {s: {k: v for k, v in found.items() if k[0] != BASELINE} for s, found in by_seed.items()}
    _, vs_paper = aggregate(evaluators, by_seed_arms, reference=paper, n_boot=run.config.n_boot,
                            metrics_of=metrics_of)
    # Holm within each metric: the family is the 8 other arms compared with the paper's objective
    mark_holm(vs_paper, lambda r: (r["task"], r["metric"]))
    vs_baseline["holm"] = False
    return {"seeds": seeds, "tidy": tidy, "vs_baseline": vs_baseline, "vs_paper": vs_paper,
            "deltas": pd.concat([vs_baseline, vs_paper], ignore_index=True)}


# -- the report's section ----------------------------------------------------------------------

def _cell(value: float, versus, best: bool) -> str:
    """A value, bold when best in its column; ▲/▼ when the item CI against the ParaCLIP arm excludes 0
    (above/below it), † when that also survives Holm within the column."""
    text = f"**{fmt(value)}**" if best else fmt(value)
    if versus is not None and versus["significant"]:
        text += (" ▲" if versus["delta"] > 0 else " ▼") + ("†" if versus["holm"] else "")
    return text


def arms_markdown(run, arms: dict) -> list[str]:
    """The arms × metrics table and a plain statement of which arm wins where."""
    cfg = run.config
    tidy, vs_paper = arms["tidy"], arms["vs_paper"]
    paper = ARMS[0].label
    mean = tidy.groupby(["model", "task", "metric"])["value"].mean()
    columns = [(TASK_NAMES[key], metric, name) for key, metric, name in ARM_COLUMNS
               if (paper, TASK_NAMES[key], metric) in mean.index]
    labels = [BASELINE] + [arm.label for arm in ARMS]
    seeds = arms["seeds"]
    lines = [
        "## The paper's loss ablation", "",
        f"Every arm fine-tunes the same baseline (per seed) on the same {cfg.n_train} training records for the same "
        f"{cfg.ablation_steps} steps (batch {cfg.ablation_batch_size} images; "
        f"{_text_sample_note(cfg.ablation_batch_size)}), with the same seeds ({', '.join(map(str, seeds))}), learning "
        f"rate ({cfg.ablation_lr:g}) and schedule; only the objective differs. This stage has its own, shorter "
        "schedule than the main run and one learning rate, both fixed in advance (no arm's steps or rate were "
        "selected), so its ParaCLIP row is not the main model above. Test world, mean over "
        f"{len(seeds)} seed(s).", "",
        "| arm | kind | objective | batch | text samples / step |", "|---|---|---|---|---|"]
    from paraclip.training.losses import resolve_preset

    for arm in ARMS:
        lines.append(f"| {arm.label} | {arm.kind} | {resolve_preset(arm.loss).description} | "
                     f"{cfg.ablation_batch_size * arm.batch_factor} | "
                     f"{text_samples_per_step(arm, cfg.ablation_batch_size)} |")
    lines += ["", "| model | " + " | ".join(name for _, _, name in columns) + " |",
              "|---|" + "---|" * len(columns)]
    best = {}
    for task, metric, _ in columns:
        values = {lab: mean.get((lab, task, metric), float("nan")) for lab in labels[1:]}
        best[(task, metric)] = max(values, key=lambda k: values[k])
    for lab in labels:
        cells = []
        for task, metric, _ in columns:
            versus = None
            if lab not in (BASELINE, paper):
                hit = vs_paper[(vs_paper["model"] == lab) & (vs_paper["task"] == task) & (vs_paper["metric"] == metric)]
                versus = hit.iloc[0] if not hit.empty else None
            cells.append(_cell(mean.get((lab, task, metric), float("nan")), versus, best[(task, metric)] == lab))
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    lines += ["", "Bold: the best arm in the column (the baseline is not an arm). ▲ / ▼: above / below the ParaCLIP "
              f"arm with an item CI excluding 0; †: also survives Holm's adjustment over the {len(ARMS) - 1} "
              "comparisons in that column. `arms.csv` has every difference with its item and seed intervals.", "",
              "Which arm wins where (differences against the ParaCLIP arm; item 95 % CI, then seed 95 % CI). An arm "
              "*beats* another only when the Holm-adjusted item test and the seed interval both exclude 0; "
              "*suggestive* when one of them does; otherwise it is a *tie*:", ""]
    from paraclip.miniworld.headline import uninformative_metrics

    dull = uninformative_metrics(tidy, labels)
    lines += _winners([c for c in columns if c[:2] not in dull], mean, vs_paper, best, paper)
    if dull:
        lines += ["", "Left out as uninformative (every model within 5 points of chance): "
                  + ", ".join(name for task, metric, name in columns if (task, metric) in dull) + "."]
    return lines + [""]


def _winners(columns, mean, vs_paper, best, paper) -> list[str]:
    lines, tied_or_best, beaten_by, suggestive = [], 0, {}, {}
    for task, metric, name in columns:
        winner = best[(task, metric)]
        paper_value = mean.get((paper, task, metric), float("nan"))
        if winner == paper:
            runner = [r for _, r in vs_paper[(vs_paper["task"] == task) & (vs_paper["metric"] == metric)].iterrows()]
            closest = max(runner, key=lambda r: r["delta"]) if runner else None
            detail = (f"; next: {closest['model']} {closest['delta']:+.1f} {interval(closest['ci_low'], closest['ci_high'])}"
                      f" {interval(closest['seed_ci_low'], closest['seed_ci_high'])}") if closest is not None else ""
            lines.append(f"- **{name}**: the paper's objective is best ({fmt(paper_value)}){detail}.")
            tied_or_best += 1
            continue
        r = vs_paper[(vs_paper["model"] == winner) & (vs_paper["task"] == task) & (vs_paper["metric"] == metric)].iloc[0]
        said = verdict(r)
        words = {BETTER: "beats the paper's objective (Holm item test and seed CI)",
                 TIE: "is ahead, but neither interval test excludes 0 (a tie)"}.get(
            said, "is ahead, suggestive only (one of the two tests excludes 0)")
        lines.append(f"- **{name}**: {winner} ({fmt(mean.get((winner, task, metric), float('nan')))}) {words}: "
                     f"{r['delta']:+.1f} {interval(r['ci_low'], r['ci_high'])} "
                     f"{interval(r['seed_ci_low'], r['seed_ci_high'])} vs ParaCLIP {fmt(paper_value)}.")
        if said == BETTER:
            beaten_by.setdefault(winner, []).append(name)
        else:
            tied_or_best += 1
            if said != TIE:
                suggestive.setdefault(winner, []).append(name)
    summary = (f"In short: the paper's three-term objective is the best arm, or tied with the best by the rule, on "
               f"{tied_or_best} of {len(columns)} metrics")
    if beaten_by:
        summary += "; it is beaten by " + "; ".join(f"{arm} on {', '.join(names)}" for arm, names in beaten_by.items())
    if suggestive:
        summary += "; suggestive leads (not claimed): " + "; ".join(
            f"{arm} on {', '.join(names)}" for arm, names in suggestive.items())
    return lines + ["", summary + "."]
