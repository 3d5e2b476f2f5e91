"""The mini-world report's files: its Markdown, tables and figures (numbers come from ``report.py``)."""

from __future__ import annotations

import os
import platform
import time

from paraclip.files import atomic_write_text
from paraclip.miniworld.ablations import arms_markdown, arms_results
from paraclip.miniworld.arms import TEXTS_PER_PARACLIP_SAMPLE
from paraclip.miniworld.jsonl import read_jsonl, read_run_json
from paraclip.miniworld.llm_source import llm_report_lines
from paraclip.miniworld.report import (
    HEADLINE_METRICS, MET, NO_INTERVAL, NOT_MET, PARACLIP, POINT, aggregate, figures, fmt, interval, is_headline,
    load_seed_results, mark_holm, overall, target_table, write_html,
)
from paraclip.miniworld.selection import SELECTION_METRICS, read_selection
from paraclip.miniworld.tasks import build_tasks
from paraclip.paraphrase.records import status_of


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


def markdown(run, stages: dict, deltas, targets: list[dict], notes: list[str], arms=None, headline=None,
             tidy=None) -> str:
    from paraclip.miniworld.headline import headline_markdown

    cfg = run.config
    seeds = cfg.seeds
    from paraclip.miniworld.config import preset_name

    preset = preset_name(cfg)
    command = "paraclip miniworld --reproduce" + (f" --preset {preset}" if preset and preset != "default" else
                                                   "" if preset else " (custom settings: see Setup)")
    lines = ["# ParaCLIP on the mini-world: reproduction report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `{command}` (run folder `{run.root.name}`; "
             "machine paths are left out).", ""]
    if headline is not None:
        lines += headline_markdown(run, headline, tidy)
    lines += protocol_section(run)
    lines += ["## Vocabulary exposure: ParaCLIP against the vocabulary-blind baseline", "",
              "The baseline CLIP is trained on canonical captions only; ParaCLIP's data adds the rewriter's "
              "synonyms. Most of the gain below on the in-vocabulary and held-out rewriter pairs measures that "
              "ParaCLIP has read those words (see Data for the share of pairs holding a word the baseline never "
              "read); the fair comparison is the headline above.", ""]
    lines += [f"The paper's target effect (against the baseline) was {VERDICT_WORDS[overall(targets)]} on the item-level intervals; on the "
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
    lines += ["", "### All metrics (test world; ParaCLIP against the baseline; mean ± sd over seeds)", "",
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
    from paraclip.miniworld.llm_source import LLM_LABELS

    others = deltas[deltas["model"].isin(list(LLM_LABELS.values()))] if not deltas.empty else deltas
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
              "swapped attributes; STS-B is Spearman × 100; zero-shot acc1 as CLIP_benchmark computes it. "
              "q_R@1 of the paraphrase tasks is not listed: it is t2i_R@1 of mw-retrieval.", ""]
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
              "- `deltas.csv`: seed-mean differences against the baseline with item- and seed-level intervals and "
              "bootstrap p-values"]
    if headline is not None:
        lines.append("- `headline.csv`: ParaCLIP against each control, with both intervals, Holm and the verdict")
    if arms is not None:
        lines.append("- `arms.csv`: every ablation arm against the baseline and against the ParaCLIP arm")
    lines += ["- `items.jsonl.gz`: the per-item scores of every (seed, model, task) on the test world, from which "
              "every item bootstrap above can be recomputed (`paraclip.evaluation` evaluators' `metrics(items, "
              "index)`)", "- `selection.json`: every validation-world candidate score and the choices"]
    lines += ["- `figures.html`: interactive plotly figures, plotly inlined so they open offline (in the run folder "
              "only); `figures-cdn.html`: the same, loading plotly from its CDN", ""]
    return "\n".join(lines)


def protocol_section(run) -> list[str]:
    from paraclip.miniworld.arms import main_arms
    from paraclip.miniworld.stages import STREAMS

    cfg = run.config
    scored = run.test_world_scored
    record = read_run_json(scored, redo=scored) if scored.is_file() else {}
    mix = run.infos.get("world", {}).get("one_group_share", {})
    lines = ["## Protocol", "",
             f"Three disjoint sets of scenes (no meaning shared): {cfg.n_train} training scenes, a **validation "
             f"world** of {cfg.n_val} scenes (stream `{STREAMS['val']}`) with its own paraphrase and swap sets, and "
             f"the **test world** of {cfg.n_eval} scenes (stream `{STREAMS['eval']}`, world seed {cfg.world_seed}) "
             "scored in this report. The test stream is new in protocol 3: no earlier run scored it (the earlier "
             "test world, stream `eval`, was looked at while earlier settings were tuned and is retired). "
             f"This run folder first scored it at **{record.get('first_scored', 'an unrecorded time')}** (UTC). "
             "Settings are chosen on the validation world; the test world is scored once, with the chosen settings.",
             ""]
    if mix:
        lines += [f"Scene mix (share of one-group scenes): test {100 * mix.get('eval', float('nan')):.1f} %, "
                  f"validation {100 * mix.get('val', float('nan')):.1f} % (one share fixed for both), training "
                  f"{100 * mix.get('train', float('nan')):.1f} % (the 540 one-group meanings are mostly taken by the "
                  "evaluation worlds, which training must not repeat).", ""]
    sel = read_selection(run)
    if sel is None or "chosen" not in sel:
        return lines + ["(No selection was recorded for this run.)", ""]
    names = " + ".join(f"{metric} ({task})" for task, metric in SELECTION_METRICS)
    steps = sel["candidates"]
    lines += [f"Chosen on the validation world, for every main arm the same way: the learning rate (grid "
              f"{', '.join(f'{lr:g}' for lr in sel['lr_grid'])}) and the stopping step (checkpoints at steps "
              f"{', '.join(map(str, steps))} of each {cfg.paraclip_steps}-step cosine schedule), from the runs of "
              f"the selection seed {sel['seed']}; the other seeds train at the chosen rate and are scored at the "
              f"chosen step. Rule, written down before any result of this protocol was seen: maximise {names}; "
              "ties go to fewer steps, then the lower rate. Validation scores (the rule's sum):", "",
              "| arm | lr | " + " | ".join(f"step {st}" for st in steps) + " |", "|---|---|" + "---|" * len(steps)]
    base = next((r for r in sel["rows"] if r["arm"] == "baseline"), None)
    if base is not None:
        lines.append("| baseline | – | " + " | ".join([fmt(base["score"])] + [""] * (len(steps) - 1)) + " |")
    for arm in main_arms(cfg):
        chosen = sel["chosen"].get(arm.name)
        for lr in sel["lr_grid"]:
            cells = []
            for st in steps:
                row = next((r for r in sel["rows"] if r["arm"] == arm.name and r["lr"] == lr and r["step"] == st),
                           None)
                text = fmt(row["score"]) if row else "–"
                cells.append(f"**{text}**" if chosen and chosen["lr"] == lr and chosen["step"] == st else text)
            lines.append(f"| {arm.label} | {lr:g} | " + " | ".join(cells) + " |")
    lines += ["", "Chosen (bold): " + "; ".join(
        f"{arm.label} lr {sel['chosen'][arm.name]['lr']:g}, step {sel['chosen'][arm.name]['step']}"
        for arm in main_arms(cfg) if arm.name in sel["chosen"]) + ".", "",
              "Settings carried over from earlier tuning (`TUNING.md`), not selected here: the architecture, the "
              f"batch sizes, the baseline's {cfg.baseline_steps}-step schedule and the {cfg.paraclip_steps}-step "
              "main budget. They were chosen in earlier sessions while looking at the retired `eval` test world; "
              "they apply to every arm alike.", ""]
    return lines


def caveats_section(run) -> list[str]:
    summary = read_run_json(run.evalsets / "summary.json", redo=run.evalsets)
    novelty = summary.get("bigram_novelty", {})
    unseen = summary.get("unseen_by_baseline", {})
    pct = lambda key: fmt(100 * unseen.get(key, float("nan")), 1)  # noqa: E731
    return [
        "## Caveats", "",
        "- **Vocabulary exposure.** The baseline is trained on canonical captions only. Pairs holding a word no "
        f"training caption contains: in-vocabulary {pct('in_vocab')} %, held-out rewriter {pct('heldout')} %, "
        f"canonical-word {pct('canonical')} %, OOV {pct('oov')} %. Gains against the baseline on the first two "
        "mostly measure that the fine-tuning data teaches those words; the canonical-word pairs and the "
        "controls (same data) measure robustness without that exposure.",
        "- **The in-vocabulary pairs share the training rewriter's synonym table.** The held-out rewriter's pairs "
        "use only words the fine-tuned models have read, in phrasings no training text contains (share of their "
        f"word bigrams never seen in training: {fmt(100 * novelty.get('heldout', float('nan')), 0)} %, against "
        f"{fmt(100 * novelty.get('in_vocab', float('nan')), 0)} % for the in-vocabulary pairs and "
        f"{fmt(100 * novelty.get('canonical', float('nan')), 0)} % for the canonical-word pairs); the OOV pairs "
        "use words no model here can read.",
        "- **Relation swaps.** Every model here, the baseline included, sits near chance (50 %) on relation "
        "swaps: this tiny CLIP does not read word order for relations, so the task cannot show a cost or a "
        "gain and is reported as uninformative.",
        "- **Intervals.** The item CI holds the trained models fixed; the seed CI holds the items fixed and rests "
        + (f"on {len(run.config.seeds)} seeds (t with {len(run.config.seeds) - 1} degrees of freedom: wide)"
           if len(run.config.seeds) > 1 else "on one seed, so there is none here and no verdict can be "
           "'better' or 'worse'")
        + ". Neither covers both sources of noise; the verdict rule asks for both.",
        "- **Selection on one seed.** The learning rate and stopping step of each arm are chosen on the "
        "selection seed's validation scores alone (cheaper than every seed × every rate), so they carry that "
        "seed's noise; the same holds for every arm.",
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
        f"{sum(status_of(r) != 'ok' for r in para)} rejected by the scene-spec checker). "
        f"Training vocabulary: {summary['training_vocabulary']} words.",
        f"- Test paraphrase pairs: {summary['in_vocab_pairs']} in-vocabulary (dropped: "
        f"{summary['in_vocab_dropped'] or 'none'}), {summary['heldout_pairs']} held-out rewriter (dropped: "
        f"{summary['heldout_dropped'] or 'none'}; every held-out phrase checked absent from the training text), "
        f"{summary['oov_pairs']} out-of-vocabulary (dropped: {summary['oov_dropped'] or 'none'}), "
        f"{summary.get('canonical_pairs', '–')} canonical-word (only words of the training captions, in a new "
        "adjective order and, for two groups, the converse relation; dropped: "
        f"{summary.get('canonical_dropped') or 'none'}). Validation: {val.get('in_vocab_pairs', '–')} / "
        f"{val.get('heldout_pairs', '–')} / {val.get('oov_pairs', '–')} / {val.get('canonical_pairs', '–')}.",
        "- Zero-shot classification: rendered one-group scenes labelled by shape (5 classes), colour (6) and "
        "count (3), 100 images per class, with the sets' own templates (`paraclip.data.classification`).",
        f"- OOV words ({len(summary['oov_words'])}) found in training text: "
        f"{', '.join(leak) if leak else 'none (checked)'}.",
        f"- Swap pairs: {len(rel)} relation swaps, {len(att)} attribute swaps.", "",
        "Examples (training: caption → paraphrase 1 → paraphrase 2):", "",
    ]
    for r in para[:3]:
        lines.append(f"- {r['caption']} → {r['paraphrase_1']} → {r['paraphrase_2']}")
    lines += ["", "Examples (test pairs: query → in-vocabulary / held-out rewriter / OOV / canonical-word paraphrase):",
              ""]
    canonical = {r["image_id"]: r for r in read_jsonl(sets / "pairs-canonical.jsonl")} \
        if (sets / "pairs-canonical.jsonl").is_file() else {}
    for r in in_vocab[:3]:
        extra = [d[r["image_id"]]["paraphrase"] for d in (held, oov, canonical) if r["image_id"] in d]
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
        f"{cfg.paraclip_batch_size}, weight decay {cfg.paraclip_weight_decay:g}; the controls the same with "
        f"{TEXTS_PER_PARACLIP_SAMPLE}× the images per batch; learning rate (grid "
        f"{', '.join(f'{lr:g}' for lr in cfg.lr_grid)}) and stopping step chosen on the validation world.",
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
    """Write report.md, results.csv, deltas.csv, headline.csv (with the controls), arms.csv (with the
    ablation stage), items.jsonl.gz, selection.json and the figures."""
    import shutil

    from paraclip.miniworld.headline import head_to_head, uninformative_metrics
    from paraclip.miniworld.selection import selection_file

    out = run.report_dir
    out.mkdir(parents=True, exist_ok=True)
    evaluators, notes = build_tasks(run)
    by_seed = load_seed_results({seed: run.results_dir(seed) for seed in run.config.seeds})
    tidy, deltas = aggregate(evaluators, by_seed, n_boot=run.config.n_boot)
    models = list(dict.fromkeys(tidy["model"])) if not tidy.empty else []
    dull = uninformative_metrics(tidy, models)
    mark_holm(deltas, lambda r: r["model"] if is_headline(r) and (r["task"], r["metric"]) not in dull else None)
    tidy.to_csv(out / "results.csv", index=False)
    deltas.to_csv(out / "deltas.csv", index=False)
    headline = head_to_head(evaluators, by_seed, tidy, run.config.n_boot)
    if headline is not None:
        headline["deltas"].to_csv(out / "headline.csv", index=False)
    arms = None
    if run.config.ablations:
        arms = arms_results(run, evaluators)
        if arms is not None:
            arms["deltas"].to_csv(out / "arms.csv", index=False)
    write_items(out / "items.jsonl.gz", by_seed, arms_dirs=_ablation_dirs(run) if arms is not None else {})
    if selection_file(run).is_file():
        shutil.copyfile(selection_file(run), out / "selection.json")
    figs = figures(tidy, deltas, run)
    write_html(figs, out / "figures.html", "ParaCLIP mini-world reproduction")
    write_html(figs, out / "figures-cdn.html", "ParaCLIP mini-world reproduction", plotlyjs="cdn")
    targets = target_table(deltas, uninformative=dull)
    atomic_write_text(out / "report.md", markdown(run, stages, deltas, targets, notes, arms, headline, tidy))
    return {"target_reached": overall(targets) == MET, "verdict": overall(targets),
            "verdict_seeds": overall(targets, "verdict_seeds"),
            "criteria": [{k: v for k, v in t.items() if k != "row"} for t in targets],
            "headline": None if headline is None else [
                {k: r[k] for k in ("baseline", "task", "metric", "delta", "verdict")}
                for _, r in headline["deltas"].iterrows()]}


def _ablation_dirs(run) -> dict:
    from paraclip.miniworld.ablations import ablation_results_dir, ablation_seeds

    return {s: ablation_results_dir(run, s) for s in ablation_seeds(run.config) if ablation_results_dir(run, s).is_dir()}


def write_items(path, by_seed: dict, arms_dirs: dict) -> None:
    """Every result's per-item scores, one JSON line per (part, seed, model, task), gzip-compressed."""
    import gzip
    import json

    from paraclip.evaluation.suite import item_arrays

    parts = [("main", by_seed)]
    if arms_dirs:
        parts.append(("ablations", load_seed_results(arms_dirs)))
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for part, results in parts:
            for seed, found in results.items():
                for (model, task), res in found.items():
                    items = {k: v.tolist() for k, v in item_arrays(res).items()}
                    f.write(json.dumps({"part": part, "seed": seed, "model": model, "task": task, "n": res.n,
                                        "items": items}) + "\n")
    tmp.replace(path)


__all__ = ["fmt", "interval", "markdown", "write_report"]
