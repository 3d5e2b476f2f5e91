"""The mini-world report's files: its Markdown, tables and figures (numbers come from ``report.py``)."""

from __future__ import annotations

import os
import platform
import time

from paraclip.files import atomic_write_text
from paraclip.miniworld.ablations import arms_markdown, arms_results
from paraclip.miniworld.jsonl import read_jsonl, read_run_json
from paraclip.miniworld.llm_source import llm_report_lines
from paraclip.miniworld.report import (
    HEADLINE_METRICS, MET, NO_INTERVAL, NOT_MET, PARACLIP, POINT, aggregate, figures, fmt, interval, is_headline,
    load_seed_results, mark_holm, overall, target_table, write_html,
)
from paraclip.miniworld.selection import SELECTION_METRICS, read_selection
from paraclip.miniworld.tasks import build_tasks


def marks(row) -> str:
    return (" *" if row["significant"] else "") + ("†" if row.get("holm") else "")


def _machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, torch "
            f"{torch.__version__} with {torch.get_num_threads()} threads; load average at report time "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)")


VERDICT_WORDS = {MET: "**reached** (every criterion met on its 95 % CI bound)",
                 POINT: "**reached on the point estimates only** (some CI bounds miss the threshold)",
                 NOT_MET: "**NOT reached**", NO_INTERVAL: "not judged (one seed: no seed interval)"}


def markdown(run, stages: dict, deltas, targets: list[dict], notes: list[str], arms=None) -> str:
    cfg = run.config
    seeds = cfg.seeds
    lines = ["# ParaCLIP on the mini-world: reproduction report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `paraclip miniworld --reproduce"
             f"{' --ablations' if cfg.ablations else ''}` (run folder `{run.root.name}` under the mini-world cache; "
             "machine paths are left out).", ""]
    lines += protocol_section(run)
    lines += ["## Result", "",
              f"The target effect was {VERDICT_WORDS[overall(targets)]} on the item-level intervals; on the "
              f"seed-level intervals it was {VERDICT_WORDS[overall(targets, 'verdict_seeds')]}.", "",
              f"Differences are ParaCLIP − baseline in points, averaged over {len(seeds)} seed(s) "
              f"({', '.join(map(str, seeds))}); each seed trains its own baseline CLIP from scratch and fine-tunes it. "
              f"Item CI: paired bootstrap over evaluation items ({cfg.n_boot} resamples, the same resample for every "
              "seed; the trained models held fixed). Seed CI: Student-t interval of the mean of the per-seed "
              "differences (training noise; items held fixed). A criterion is *met* when the lower bound of its "
              "interval reaches the threshold, *met on the point estimate* when only the mean difference does.", "",
              "| criterion | baseline | ParaCLIP | Δ | item 95 % CI | seed 95 % CI | per seed | verdict (item CI) "
              "| verdict (seed CI) |", "|---|---|---|---|---|---|---|---|---|"]
    for t in targets:
        r = t["row"]
        if r is None:
            lines.append(f"| {t['criterion']} | – | – | – | – | – | – | not evaluated | not evaluated |")
            continue
        lines.append(f"| {t['criterion']} | {fmt(r['baseline_mean'])} | {fmt(r['value_mean'])} | {r['delta']:+.1f} | "
                     f"{interval(r['ci_low'], r['ci_high'])} | {interval(r['seed_ci_low'], r['seed_ci_high'])} | "
                     f"{r['per_seed_delta']} | {t['verdict']} | {t['verdict_seeds']} |")
    lines += ["", "## All metrics (test world; mean ± sd over seeds)", "",
              "| task | metric | baseline | ParaCLIP | Δ | item 95 % CI | seed 95 % CI | n |",
              "|---|---|---|---|---|---|---|---|"]
    main = deltas[deltas["model"] == PARACLIP] if not deltas.empty else deltas
    family = 0
    for task, metrics in HEADLINE_METRICS.items():
        for m in metrics:
            hit = main[(main["task"] == task) & (main["metric"] == m)] if not main.empty else main
            if hit.empty:
                continue
            family += 1
            r = hit.iloc[0]
            lines.append(f"| {task} | {m} | {fmt(r['baseline_mean'])} ± {fmt(r['baseline_sd'])} | "
                         f"{fmt(r['value_mean'])} ± {fmt(r['value_sd'])} | {r['delta']:+.1f}{marks(r)} | "
                         f"{interval(r['ci_low'], r['ci_high'])} | {interval(r['seed_ci_low'], r['seed_ci_high'])} | "
                         f"{r['n']} |")
    others = deltas[(deltas["model"] != PARACLIP)] if not deltas.empty else deltas
    if not others.empty:
        lines += ["", "### Other models (the LLM paraphrase source)", "",
                  "| model | task | metric | value | Δ vs baseline | item 95 % CI |", "|---|---|---|---|---|---|"]
        for _, r in others.iterrows():
            if r["metric"] in HEADLINE_METRICS.get(r["task"], [])[:2]:
                lines.append(f"| {r['model']} | {r['task']} | {r['metric']} | {fmt(r['value_mean'])} | "
                             f"{r['delta']:+.1f} | {interval(r['ci_low'], r['ci_high'])} |")
    lines += ["", f"`*`: the item CI excludes 0 — one test per row, {family} rows: at the 5 % level about "
              f"{0.05 * family:.1f} of them would be marked by chance if nothing differed. `†`: the difference also "
              f"survives Holm's adjustment for these {family} comparisons (bootstrap p-values, family-wise error "
              "5 %). Neither mark accounts for training noise: read the seed CI for that. AO/JS/R are percentages; "
              "swap accuracy is ARO's rule (true caption scores strictly higher) macro-averaged over relations / "
              "swapped attributes; STS-B is Spearman × 100.", ""]
    if arms is not None:
        lines += arms_markdown(run, arms)
    lines += caveats_section(run)
    lines += data_section(run, read_jsonl)
    lines += setup_section(run, stages)
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if stages.get("llm"):
        lines += llm_report_lines(run, stages)
    lines += ["## Files", "", "- `results.csv`: every (seed, model, task, metric) value on the test world",
              "- `deltas.csv`: seed-mean differences with item- and seed-level intervals and bootstrap p-values"]
    if arms is not None:
        lines.append("- `arms.csv`: every ablation arm against the baseline and against the ParaCLIP arm")
    lines += ["- `figures.html`: interactive plotly figures, plotly inlined so they open offline (in the run folder "
              "only); `figures-cdn.html`: the same, loading plotly from its CDN", ""]
    return "\n".join(lines)


def protocol_section(run) -> list[str]:
    cfg = run.config
    lines = ["## Protocol", "",
             f"Three disjoint sets of scenes (no meaning shared): {cfg.n_train} training scenes, a **validation "
             f"world** of {cfg.n_val} scenes (its own scene stream) with its own paraphrase and swap sets, and the "
             f"**test world** of {cfg.n_eval} scenes scored in this report. Settings are chosen on the validation "
             "world; the test world is scored once, with the chosen settings.", ""]
    sel = read_selection(run)
    if sel is None:
        return lines + ["(No selection was recorded for this run.)", ""]
    names = " + ".join(f"{metric} ({task})" for task, metric in SELECTION_METRICS)
    lines += [f"Chosen on the validation world: the ParaCLIP stopping step, among the checkpoints at steps "
              f"{', '.join(map(str, sel['candidates']))} of each {cfg.paraclip_steps}-step run (one cosine schedule; "
              f"early stopping). Rule, fixed before any result was seen: maximise the seed mean of {names}; ties "
              f"go to fewer steps. **Chosen: step {sel['chosen_step']}.**", "",
              "| model | step | " + " | ".join(f"val {m}" for _, m in SELECTION_METRICS) + " | score (seed mean) |",
              "|---|---|" + "---|" * len(SELECTION_METRICS) + "---|"]
    rows = sel["rows"]
    for step in [None] + sel["candidates"]:
        mine = [r for r in rows if r["step"] == step]
        if not mine:
            continue
        vals = [sum(r["metrics"][t][m] for r in mine) / len(mine) for t, m in SELECTION_METRICS]
        score = sum(r["score"] for r in mine) / len(mine)
        label = "baseline" if step is None else ("**ParaCLIP**" if step == sel["chosen_step"] else "ParaCLIP")
        lines.append(f"| {label} | {step or '–'} | " + " | ".join(fmt(v) for v in vals) + f" | {fmt(score)} |")
    lines += ["", "Settings carried over from earlier tuning (`TUNING.md`): the architecture, learning rates, batch "
              f"sizes, the baseline's {cfg.baseline_steps} steps and the {cfg.paraclip_steps}-step ParaCLIP schedule. "
              "They were chosen in earlier sessions by looking at held-out scenes of an earlier version of this "
              "world, which played the role the test world plays here; only the stopping step above was chosen "
              "by this protocol.", ""]
    return lines


def caveats_section(run) -> list[str]:
    summary = read_run_json(run.evalsets / "summary.json", redo=run.evalsets)
    novelty = summary.get("bigram_novelty", {})
    return [
        "## Caveats", "",
        "- **The baseline never saw the paraphrase vocabulary.** It is trained on canonical captions only; the "
        "in-vocabulary pairs use words that only the training paraphrases contain, so most of the in-vocabulary "
        "AO@10 / JS@10 gain measures that ParaCLIP's data teaches those words. Fair comparisons are the controls "
        "trained on the same paraphrases (`laclip`; `--ablations`) and the held-out rewriter's pairs.",
        "- **The in-vocabulary pairs share the training rewriter's synonym table.** The held-out rewriter's pairs "
        "use only words the models have read, in phrasings no training text contains (share of their word bigrams "
        f"never seen in training: {fmt(100 * novelty.get('heldout', float('nan')), 0)} %, against "
        f"{fmt(100 * novelty.get('in_vocab', float('nan')), 0)} % for the in-vocabulary pairs); the OOV pairs use "
        "words no model here can read.",
        "- **Intervals.** The item CI holds the trained models fixed; the seed CI holds the items fixed and rests "
        + (f"on {len(run.config.seeds)} seeds (t with {len(run.config.seeds) - 1} degrees of freedom: wide)"
           if len(run.config.seeds) > 1 else "on one seed, so there is none here")
        + ". Neither covers both sources of noise; a difference is solid when both exclude 0.",
        "- **Multiple comparisons.** `*` marks are per-row 95 % tests; with many rows some are expected by chance. "
        "Use `†` (Holm) for a family-wise claim.",
        "- **Settings carried over** (see Protocol) were tuned on an earlier world's held-out scenes; the "
        "validation world chose only the stopping step, so the other settings may still favour ParaCLIP a little.",
        f"- **A toy world.** {run.config.image_size} px procedural scenes, a {summary['training_vocabulary']}-word "
        "vocabulary and a CLIP trained from scratch on CPU: "
        "this tests the mechanism of the paper's objective, not its numbers on real images.", ""]


def data_section(run, read_jsonl) -> list[str]:
    sets = run.evalsets
    summary = read_run_json(sets / "summary.json", redo=sets)
    para = read_jsonl(run.paraphrases)
    in_vocab = read_jsonl(sets / "pairs-in-vocab.jsonl")
    oov = {r["image_id"]: r for r in read_jsonl(sets / "pairs-oov.jsonl")}
    held = {r["image_id"]: r for r in read_jsonl(sets / "pairs-heldout.jsonl")}
    rel = read_jsonl(sets / "swaps-relation.jsonl")
    att = read_jsonl(sets / "swaps-attribute.jsonl")
    leak = summary["oov_words_in_training_text"]
    val = summary.get("val", {})
    lines = [
        "## Data", "",
        f"- World: {run.config.n_train} training scenes, {run.config.n_val} validation scenes, {run.config.n_eval} "
        f"test scenes ({run.config.image_size} px; no validation or test scene's meaning occurs in training, and "
        "none is shared between them).",
        f"- Training paraphrases: the scene-aware two-step rewriter ({len(para)} records; "
        f"{sum(r['status'] != 'ok' for r in para)} rejected by the scene-spec checker). "
        f"Training vocabulary: {summary['training_vocabulary']} words.",
        f"- Test paraphrase pairs: {summary['in_vocab_pairs']} in-vocabulary (dropped: "
        f"{summary['in_vocab_dropped'] or 'none'}), {summary['heldout_pairs']} held-out rewriter (dropped: "
        f"{summary['heldout_dropped'] or 'none'}; every held-out phrase checked absent from the training text), "
        f"{summary['oov_pairs']} out-of-vocabulary (dropped: {summary['oov_dropped'] or 'none'}). Validation: "
        f"{val.get('in_vocab_pairs', '–')} / {val.get('heldout_pairs', '–')} / {val.get('oov_pairs', '–')}.",
        f"- OOV words ({len(summary['oov_words'])}) found in training text: "
        f"{', '.join(leak) if leak else 'none (checked)'}.",
        f"- Swap pairs: {len(rel)} relation swaps, {len(att)} attribute swaps.", "",
        "Examples (training: caption → paraphrase 1 → paraphrase 2):", "",
    ]
    for r in para[:3]:
        lines.append(f"- {r['caption']} → {r['paraphrase_1']} → {r['paraphrase_2']}")
    lines += ["", "Examples (test pairs: query → in-vocabulary / held-out rewriter / OOV paraphrase):", ""]
    for r in in_vocab[:3]:
        extra = [d[r["image_id"]]["paraphrase"] for d in (held, oov) if r["image_id"] in d]
        lines.append(f"- {r['original']} → " + " / ".join([r["paraphrase"], *extra]))
    lines += ["", "Examples (swaps: true / false):", ""]
    for r in (rel[:1] + att[:2]):
        lines.append(f"- {r['true_caption']} / {r['false_caption']} ({r['group']})")
    lines.append("")
    return lines


def setup_section(run, stages: dict) -> list[str]:
    cfg = run.config
    total = sum(float(s.get("seconds", 0)) for s in stages.values())
    lines = [
        "## Setup", "",
        f"- Model: open_clip `{cfg.arch}` (project config `paraclip/models/configs/{cfg.arch}.json`), "
        "random init.",
        f"- Baseline: both towers from scratch, image–caption InfoNCE, {cfg.baseline_steps} steps × batch "
        f"{cfg.baseline_batch_size}, AdamW lr {cfg.baseline_lr:g}, weight decay {cfg.baseline_weight_decay:g}.",
        f"- ParaCLIP: image tower frozen (cached features), text encoder trained with `{cfg.paraclip_loss}` "
        f"(L1(image, p2) + L2(caption, p1) + L3(p1, p2)), a {cfg.paraclip_steps}-step cosine schedule × batch "
        f"{cfg.paraclip_batch_size}, lr {cfg.paraclip_lr:g}, stopped at the step chosen on the validation world.",
        f"- Machine: {_machine()}.", "",
        "Stage times (a cached stage shows the run that made it). Wall time depends on what else the machine "
        "runs; CPU time is this process's user + system time; load is the 1-minute load average before / "
        "after the stage:", "",
        "| stage | wall s | CPU s | torch threads | load before / after |", "|---|---|---|---|---|",
    ]
    cpu_total = 0.0
    for name, info in stages.items():
        cpu = info.get("cpu_seconds")
        cpu_total += float(cpu or 0)
        lines.append(f"| {name} | {float(info.get('seconds', 0)):.0f} | {fmt(cpu, 0)} | {info.get('threads', '–')} | "
                     f"{fmt(info.get('load_before'))} / {fmt(info.get('load_after'))} |")
    lines += [f"| total | {total:.0f} | {cpu_total:.0f} | | |", ""]
    return lines


def write_report(run, stages: dict) -> dict:
    """Write report.md, results.csv, deltas.csv (and arms.csv with the ablation stage) and figures."""
    out = run.report_dir
    out.mkdir(parents=True, exist_ok=True)
    evaluators, notes = build_tasks(run)
    by_seed = load_seed_results({seed: run.results_dir(seed) for seed in run.config.seeds})
    tidy, deltas = aggregate(evaluators, by_seed, n_boot=run.config.n_boot)
    mark_holm(deltas, lambda r: r["model"] if is_headline(r) else None)
    tidy.to_csv(out / "results.csv", index=False)
    deltas.to_csv(out / "deltas.csv", index=False)
    arms = None
    if run.config.ablations:
        arms = arms_results(run, evaluators)
        if arms is not None:
            arms["deltas"].to_csv(out / "arms.csv", index=False)
    figs = figures(tidy, deltas, run)
    write_html(figs, out / "figures.html", "ParaCLIP mini-world reproduction")
    write_html(figs, out / "figures-cdn.html", "ParaCLIP mini-world reproduction", plotlyjs="cdn")
    targets = target_table(deltas)
    atomic_write_text(out / "report.md", markdown(run, stages, deltas, targets, notes, arms))
    return {"target_reached": overall(targets) == MET, "verdict": overall(targets),
            "verdict_seeds": overall(targets, "verdict_seeds"),
            "criteria": [{k: v for k, v in t.items() if k != "row"} for t in targets]}


__all__ = ["fmt", "interval", "markdown", "write_report"]
