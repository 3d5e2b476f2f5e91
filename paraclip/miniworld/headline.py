"""The report's headline: ParaCLIP against its fair controls at the main budget.

ParaCLIP, LaCLIP-style training and plain CLIP fine-tuning see the same data, seeds, budget and
selection (``arms.py``, ``selection.py``); only the objective differs. For each control the report
gives ParaCLIP − control per metric with two intervals (``stats.py``), and one verdict rule for
every comparison of the report (the ablations use it too):

* **better** / **worse** — the item-level test survives Holm's adjustment over its family (one
  family per comparison) *and* the seed-level t-interval excludes 0 on the same side;
* **suggestive** — only one of the two excludes 0;
* **tie** — neither does.

A metric on which every model sits at chance (relation swaps: 50 %) is called uninformative and
left out of the families and the verdicts.
"""

from __future__ import annotations

import math

from paraclip.miniworld.arms import CLIP_FT, LACLIP, PARACLIP
from paraclip.miniworld.report import aggregate, fmt, interval, mark_holm
from paraclip.miniworld.tasks import TASK_NAMES

BETTER, WORSE, TIE = "better", "worse", "tie"

# (task key, metric, short name) of the head-to-head table, in its order
HEAD_TO_HEAD = (
    ("in_vocab", "AO@10", "in-vocabulary AO@10"), ("heldout", "AO@10", "held-out rewriter AO@10"),
    ("canonical", "AO@10", "canonical-word AO@10"), ("oov", "AO@10", "OOV AO@10"),
    ("in_vocab", "JS@10", "in-vocabulary JS@10"), ("heldout", "JS@10", "held-out rewriter JS@10"),
    ("canonical", "JS@10", "canonical-word JS@10"), ("heldout", "p_R@1", "held-out paraphrase R@1"),
    ("canonical", "p_R@1", "canonical-word paraphrase R@1"), ("retrieval", "t2i_R@1", "canonical t2i R@1"),
    ("retrieval", "i2t_R@1", "canonical i2t R@1"), ("attribute", "macro_accuracy", "attribute swap"),
    ("relation", "macro_accuracy", "relation swap"), ("sts", "spearman", "STS-B Spearman"),
    ("zs_shape", "acc1", "zero-shot shape acc@1"), ("zs_colour", "acc1", "zero-shot colour acc@1"),
    ("zs_count", "acc1", "zero-shot count acc@1"),
)
CHANCE = {("relation", "macro_accuracy"): 50.0, ("attribute", "macro_accuracy"): 50.0}
CHANCE_BAND = 5.0  # points either side of chance within which every model counts as "at chance"


def verdict(row) -> str:
    """The report's one rule for "A beats B" (see the module docstring); ``row`` is a deltas row with
    a ``holm`` column."""
    delta = float(row["delta"])
    if math.isnan(delta):
        return "–"
    side = BETTER if delta > 0 else WORSE
    item = bool(row.get("holm"))
    low, high = float(row["seed_ci_low"]), float(row["seed_ci_high"])
    seed = not math.isnan(low) and (low > 0 or high < 0)
    if item and seed:
        return side
    if item or seed:
        return f"suggestive ({side})"
    return TIE


def uninformative_metrics(tidy, models: list[str]) -> set[tuple[str, str]]:
    """(task, metric) pairs with a chance level on which every model's seed mean is within
    CHANCE_BAND of chance."""
    out = set()
    mean = tidy.groupby(["model", "task", "metric"])["value"].mean() if not tidy.empty else None
    for (key, metric), chance in CHANCE.items():
        values = [mean.get((m, TASK_NAMES[key], metric), float("nan")) for m in models] if mean is not None else []
        if values and all(not math.isnan(v) and abs(v - chance) <= CHANCE_BAND for v in values):
            out.add((TASK_NAMES[key], metric))
    return out


def head_to_head(evaluators, by_seed: dict, tidy, n_boot: int) -> dict | None:
    """ParaCLIP − each control, per HEAD_TO_HEAD metric, with both intervals, Holm and a verdict.
    None when the controls were not run."""
    import pandas as pd

    present = {model for found in by_seed.values() for model, _ in found}
    controls = [arm for arm in (LACLIP, CLIP_FT) if arm.label in present]
    if PARACLIP.label not in present or not controls:
        return None
    wanted = {(TASK_NAMES[k], m) for k, m, _ in HEAD_TO_HEAD}
    models = ["baseline", PARACLIP.label] + [arm.label for arm in controls]
    dull = uninformative_metrics(tidy, models)
    frames = []
    for control in controls:
        subset = {s: {k: v for k, v in found.items() if k[0] in (control.label, PARACLIP.label)}
                  for s, found in by_seed.items()}
        _, deltas = aggregate(evaluators, subset, reference=control.label, n_boot=n_boot,
                              metrics_of=lambda task: [m for t, m in wanted if t == task])
        if deltas.empty:
            continue
        deltas["uninformative"] = [(t, m) in dull for t, m in zip(deltas["task"], deltas["metric"])]
        mark_holm(deltas, lambda r: None if r["uninformative"] else r["baseline"])
        deltas["verdict"] = [("uninformative" if r["uninformative"] else verdict(r)) for _, r in deltas.iterrows()]
        frames.append(deltas)
    if not frames:
        return None
    return {"controls": controls, "deltas": pd.concat(frames, ignore_index=True), "uninformative": dull}


def _row(deltas, control: str, task: str, metric: str):
    hit = deltas[(deltas["baseline"] == control) & (deltas["task"] == task) & (deltas["metric"] == metric)]
    return hit.iloc[0] if not hit.empty else None


def headline_markdown(run, result: dict, tidy) -> list[str]:
    """The head-to-head table and the plain answer."""
    from paraclip.miniworld.arms import text_samples_per_step

    cfg = run.config
    deltas, controls = result["deltas"], result["controls"]
    mean = tidy.groupby(["model", "task", "metric"])["value"].mean()
    sd = tidy.groupby(["model", "task", "metric"])["value"].std()
    labels = ["baseline", PARACLIP.label] + [c.label for c in controls]
    texts = text_samples_per_step(PARACLIP, cfg.paraclip_batch_size)
    lines = ["## Headline: ParaCLIP against its fair controls (main budget)", "",
             f"Every arm fine-tunes the text encoder of the same baseline (per seed; image tower frozen) on the same "
             f"{cfg.n_train} training records for {cfg.paraclip_steps} steps of {texts} text samples "
             f"(ParaCLIP: {cfg.paraclip_batch_size} images × caption, p1, p2; the controls: "
             f"{cfg.paraclip_batch_size * controls[0].batch_factor} images × one text), with the same seeds "
             f"({', '.join(map(str, cfg.seeds))}) and the same selection of learning rate and stopping step on the "
             "validation world. LaCLIP-style: each image paired with one text drawn per step from its caption, p1 and "
             "p2 (Fan et al., 2023). CLIP fine-tuning: image–caption InfoNCE on the captions alone. Test world, "
             "mean ± sd over seeds.", ""]
    header = "| metric | " + " | ".join(labels) + " | " + " | ".join(
        f"ParaCLIP − {c.label}: Δ, item CI, seed CI → verdict" for c in controls) + " |"
    lines += [header, "|---|" + "---|" * (len(labels) + len(controls))]
    for key, metric, name in HEAD_TO_HEAD:
        task = TASK_NAMES[key]
        if (PARACLIP.label, task, metric) not in mean.index:
            continue
        cells = [f"{fmt(mean.get((m, task, metric), float('nan')))}"
                 + (f" ± {fmt(sd.get((m, task, metric)))}" if len(cfg.seeds) > 1 else "") for m in labels]
        for c in controls:
            r = _row(deltas, c.label, task, metric)
            cells.append("–" if r is None else f"{r['delta']:+.1f} {interval(r['ci_low'], r['ci_high'])} "
                                               f"{interval(r['seed_ci_low'], r['seed_ci_high'])} → **{r['verdict']}**")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Verdict rule (the same for every comparison in this report): **better** / **worse** when the "
              "item-level bootstrap test survives Holm's adjustment over its family (the metrics of one comparison) "
              "*and* the seed-level 95 % t-interval excludes 0 on the same side; **suggestive** when only one of "
              "them does; **tie** when neither does. "
              + ("Relation swap is **uninformative**: every model scores within "
                 f"{CHANCE_BAND:.0f} points of chance (50 %), so it is left out of the families and verdicts."
                 if (TASK_NAMES["relation"], "macro_accuracy") in result["uninformative"] else ""), ""]
    return lines + answer_lines(deltas, controls) + [""]


def answer_lines(deltas, controls) -> list[str]:
    """Which way each comparison went, in words."""
    out = ["**The answer, in words.**", ""]
    for c in controls:
        mine = deltas[deltas["baseline"] == c.label]
        names = {(TASK_NAMES[k], m): n for k, m, n in HEAD_TO_HEAD}
        groups: dict[str, list[str]] = {}
        for _, r in mine.iterrows():
            groups.setdefault(r["verdict"], []).append(
                f"{names.get((r['task'], r['metric']), r['metric'])} {r['delta']:+.1f}")
        parts = [f"{what} on {', '.join(items)}" for what, items in (
            ("better", groups.get(BETTER, [])), ("worse", groups.get(WORSE, [])),
            ("suggestive", groups.get(f"suggestive ({BETTER})", []) + groups.get(f"suggestive ({WORSE})", [])),
            ("tied", groups.get(TIE, []))) if items]
        out.append(f"- ParaCLIP vs {c.label}: " + "; ".join(parts) + ".")
    return out


__all__ = ["HEAD_TO_HEAD", "head_to_head", "headline_markdown", "uninformative_metrics", "verdict"]
