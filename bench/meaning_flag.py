"""Meaning-change flag candidates, side by side on the labelled set: precision / recall / F1 and cost.

Candidates (precision and recall with 95 % intervals that resample whole captions): the lexical check with WordNet (the default) and its variants (``--no-variants``
skips them: lexicon only, without WordNet verbs/compounds...), cosine similarity under the packaged
all-MiniLM-L6-v2 (threshold chosen on the ``llm-dev`` split, reported everywhere), the LLM
yes/no judge (replies cached in the repo; ``--judge-model`` asks the model again and rewrites
the cache; a judge run stopped early covers a random part of the set, reported as "judged
items"), and the judge combined with the lexical check (the cascade "lexical AND judge" asks the judge only
about the rows the lexical check flags; its cost is the lexical cost plus the judge's time on the
flagged share). Every candidate is scored per split (hand / llm-dev / llm-test / all) and per source. Cost is the median time per pair over
``--repeats`` passes, measured in this run (the judge's: wall time per item when it was asked).

    .venv/bin/python bench/meaning_flag.py                          # cached judge replies
    .venv/bin/python bench/meaning_flag.py --set tests/paraphrase/data/meaning/heldout.jsonl --no-cosine
    .venv/bin/python bench/meaning_flag.py --judge-model /path/to/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paraclip.paraphrase.meaning.judge import JUDGE_VERSION, judge_request, parse_verdict  # noqa: E402
from paraclip.paraphrase.meaning import second_opinion as so  # noqa: E402
from paraclip.paraphrase.meaning import wordnet  # noqa: E402
from paraclip.paraphrase.meaning.rules import check_meaning  # noqa: E402
from paraclip.paraphrase.meaning.evaluation import interval, read_labelled, score  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "paraphrase" / "data" / "meaning"


def timed(fn, items, repeats: int) -> tuple[list, float]:
    """Results of ``fn`` on every item, and the median seconds per item over ``repeats`` passes."""
    times, out = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = [fn(it) for it in items]
        times.append((time.perf_counter() - start) / len(items))
    return out, statistics.median(times)


#: variants of the lexical check: wordnet.OPTIONS overrides (the first is the default)
VARIANTS: dict[str, dict] = {
    "lexical + WordNet (default)": {},
    "lexicon only (before)": dict(wordnet=False, wordnet_verbs=False, compounds=False, plurals=False,
                                  scene_colours=False, agent_nouns=False, place_relations=False, modifiers=False),
    "no WordNet nouns": dict(wordnet=False),
    "WordNet nouns: synonyms + broader only": dict(wordnet_accept=("broader",)),
    "no WordNet verbs": dict(wordnet_verbs=False),
    "no WordNet compounds": dict(compounds=False),
    "no plural senses": dict(plurals=False),
    "no scene colours": dict(scene_colours=False),
    "no agent nouns": dict(agent_nouns=False),
    "no place relations": dict(place_relations=False),
    "no modifier rule": dict(modifiers=False),
    "broader from 3 senses": dict(broader_senses=3),
    "+ verb sisters": dict(verb_sisters=True),
    "+ added actions": dict(added_actions=True),
    "no material rule": dict(materials=False),
    "no young animals": dict(young_animals=False),
}


def lexical_variant(overrides: dict, items, repeats: int) -> tuple[list[bool], float]:
    saved = dict(wordnet.OPTIONS)
    wordnet.OPTIONS.update(overrides)
    wordnet.clear_caches()
    try:
        return timed(lambda it: check_meaning(it["caption"], it["paraphrase"]).changed, items, repeats)
    finally:
        wordnet.OPTIONS.clear()
        wordnet.OPTIONS.update(saved)
        wordnet.clear_caches()


def cosine_flags(items, repeats: int) -> tuple[list[bool], float, float]:
    from paraclip.paraphrase.quality import SimilarityScorer

    scorer = SimilarityScorer()
    sims, cost = timed(lambda it: scorer(it["caption"], [it["paraphrase"]])[0], items, repeats)
    dev = [i for i, it in enumerate(items) if it["split"] == "llm-dev"] or list(range(len(items)))  # else in-sample
    best = max(sorted({round(s, 3) for s in sims}),
               key=lambda t: score([sims[i] < t for i in dev], [items[i] for i in dev]).f1)
    return [s < best for s in sims], best, cost


def run_judge(items, model: str, cache: Path, chunk: int = 8, threads: int | None = None,
              version: str = JUDGE_VERSION, base_url: str | None = None) -> None:
    """Ask the model once per item (greedy, a few tokens), ``chunk`` requests at a time (the local
    backend batches them); write the replies, with the wall time per item of their chunk, to ``cache``.
    With ``base_url`` the model is served by an OpenAI-compatible endpoint (key in OPENAI_API_KEY)."""
    from paraclip.paraphrase import make_backend

    backend = (make_backend("openai", model=model, base_url=base_url, concurrency=chunk) if base_url
               else make_backend("local", model=model, threads=threads))
    items = random.Random(0).sample(list(items), len(items))  # a stopped run still covers every part of the set
    with open(cache, "w", encoding="utf-8") as f:
        for at in range(0, len(items), chunk):
            part = items[at:at + chunk]
            start = time.perf_counter()
            completions = backend.generate([judge_request(it["caption"], it["paraphrase"], version) for it in part])
            seconds = round((time.perf_counter() - start) / len(part), 3)
            for it, completion in zip(part, completions):
                f.write(json.dumps({"id": it["id"], "model": Path(model).name, "judge_version": version,
                                    "reply": completion.text, "error": completion.error,
                                    "seconds": seconds}) + "\n")
            f.flush()
            print(f"judged {at + len(part)}/{len(items)} ({seconds:.1f} s per item)", flush=True)
    backend.close()


def judged_ids(cache: Path, version: str = JUDGE_VERSION) -> set[str]:
    return {r["id"] for r in map(json.loads, cache.read_text().splitlines()) if r.get("judge_version") == version}


def read_judge(items, cache: Path, version: str = JUDGE_VERSION) -> tuple[list[bool | None], float | None, str]:
    rows = {r["id"]: r for r in map(json.loads, cache.read_text().splitlines()) if r.get("judge_version") == version}
    verdicts = [parse_verdict(rows[it["id"]]["reply"]) if it["id"] in rows else None for it in items]
    secs = [rows[it["id"]]["seconds"] for it in items if it["id"] in rows and rows[it["id"]].get("seconds")]
    model = next(iter(rows.values()))["model"] if rows else "?"
    return verdicts, (statistics.median(secs) if secs else None), model


def run_pairs(checks, model: str, cache: Path, versions, threads: int | None = None) -> None:
    """Ask the targeted second-opinion questions (every swap, ungated) that ``cache`` lacks; store the replies."""
    from paraclip.paraphrase import make_backend

    backend = make_backend("local", model=model, threads=threads)
    for version in versions:
        replies = so.ReplyCache(cache, Path(model).name, version)
        todo = [r for r in so.all_requests(checks, version, gate=False) if r not in replies]
        for at in range(0, len(todo), 4):
            part = todo[at:at + 4]
            start = time.perf_counter()
            completions = backend.generate(part)
            seconds = round((time.perf_counter() - start) / len(part), 3)
            for request, completion in zip(part, completions):
                replies.add(request, completion.text if completion.ok else None, seconds)
            print(f"{version}: asked {at + len(part)}/{len(todo)} ({seconds:.1f} s per question)", flush=True)
    backend.close()


def pair_candidates(checks, cache: Path, lexical_cost: float) -> dict[str, tuple[list[bool], str]]:
    """The cascade "lexical, then a targeted question per swapped word pair" for every cached prompt version,
    with and without the WordNet gate; a question missing from the cache keeps the flag (counted)."""
    out = {}
    models = {json.loads(line)["model"] for line in cache.read_text().splitlines()} if cache.exists() else set()
    for model in sorted(models):
        for version in so.PROMPTS:
            replies = so.ReplyCache(cache, model, version)
            if not replies.rows:
                continue
            secs = statistics.median(r["seconds"] for r in replies.rows.values() if r.get("seconds"))
            for gate in (False, True):
                asked = [so.questions(c, gate) or [] for c in checks]
                missing = sum(so.pair_request(s, version) not in replies for q in asked for s in q)
                flags = [so.second_opinion(c, replies.asker(), version, gate).changed for c in checks]
                per_pair = sum(len(q) for q in asked) / len(checks)
                name = (f"lexical, then pair question ({version}{', WordNet-gated' if gate else ''}; {model})"
                        + (f" [{missing} unanswered]" if missing else ""))
                out[name] = (flags, f"{lexical_cost * 1e3:.1f} ms + {per_pair:.2f} q x {secs:.1f} s "
                                    f"= {lexical_cost + per_pair * secs:.2f} s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default=str(DATA / "meaning_eval.jsonl"))
    ap.add_argument("--judge-cache", default=str(DATA / "judge_outputs.jsonl"))
    ap.add_argument("--judge-model", help="ask this local model again (rewrites --judge-cache); with "
                                          "--judge-base-url, the model name at that endpoint")
    ap.add_argument("--judge-base-url", help="an OpenAI-compatible endpoint serving --judge-model, e.g. "
                                             "https://api.openai.com/v1 (key in OPENAI_API_KEY)")
    ap.add_argument("--judge-version", default=JUDGE_VERSION,
                    help="which cached judge replies to score (judge-v2: the --meaning-judge prompt, e.g. with "
                         "--judge-cache tests/paraphrase/data/meaning/judge_v2_outputs.jsonl)")
    ap.add_argument("--judge-threads", type=int, help="CPU threads for the judge model")
    ap.add_argument("--pair-cache", default=str(DATA / "pair_outputs.jsonl"),
                    help="cached replies to the targeted second-opinion questions")
    ap.add_argument("--pair-model", help="ask this local model the second-opinion questions the cache lacks")
    ap.add_argument("--no-cosine", action="store_true", help="skip the sentence-encoder candidate")
    ap.add_argument("--no-variants", action="store_true", help="only the default lexical check")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    items = read_labelled(args.set)
    changed = sum(not it["same_meaning"] for it in items)
    print(f"labelled set: {len(items)} items ({changed} meaning changed, {len(items) - changed} same); "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    subsets = {"all": lambda it: True}
    for split in sorted({it["split"] for it in items}):
        subsets[f"split {split}"] = lambda it, split=split: it["split"] == split
    for source in sorted({it["source"] for it in items}):
        subsets[f"source {source}"] = lambda it, source=source: it["source"] == source
    for split, model in sorted({(it["split"], it["source"].split("/")[0]) for it in items if "/" in it["source"]}):
        subsets[f"{model}, {split}"] = lambda it, s=split, m=model: it["split"] == s and it["source"].split("/")[0] == m
    candidates: dict[str, tuple[list[bool | None], str]] = {}
    wordnet.senses("dog")  # load WordNet outside the timings (once per process, about 0.5 s)
    variants = list(VARIANTS.items())[:1 if args.no_variants else None]
    for name, overrides in variants:
        flags, cost = lexical_variant(overrides, items, args.repeats)
        candidates[name] = (flags, f"{cost * 1e3:.2f} ms")
    lexical, lexical_cost = candidates[variants[0][0]][0], float(candidates[variants[0][0]][1].split()[0]) / 1e3
    if not args.no_cosine:
        flags, threshold, cost = cosine_flags(items, args.repeats)
        candidates[f"MiniLM cosine < {threshold:.3f}"] = (flags, f"{cost * 1e3:.1f} ms")
    checks = [check_meaning(it["caption"], it["paraphrase"]) for it in items]
    if args.pair_model:
        run_pairs(checks, args.pair_model, Path(args.pair_cache), list(so.PROMPTS), threads=args.judge_threads)
    candidates.update(pair_candidates(checks, Path(args.pair_cache), lexical_cost))
    cache = Path(args.judge_cache)
    if args.judge_model:
        run_judge(items, args.judge_model, cache, threads=args.judge_threads, version=args.judge_version,
                  base_url=args.judge_base_url)
    if cache.exists():
        verdicts, secs, model = read_judge(items, cache, args.judge_version)
        asked = [v is not None or it["id"] in judged_ids(cache, args.judge_version) for v, it in zip(verdicts, items)]
        judge = [bool(v) if a else None for v, a in zip(verdicts, asked)]
        cost = f"{secs:.1f} s" if secs is not None else "?"
        candidates[f"LLM judge ({model}, {args.judge_version})"] = (judge, cost)
        candidates["lexical OR judge"] = ([None if j is None else a or j for a, j in zip(lexical, judge)], cost)
        flagged = sum(lexical) / len(lexical)
        cascade_cost = f"{lexical_cost * 1e3:.1f} ms + {flagged:.0%} x {cost}" + (
            f" = {lexical_cost + flagged * secs:.1f} s" if secs is not None else "")
        candidates["cascade: lexical, then judge on flagged rows (lexical AND judge)"] = (
            [None if (a and j is None) else (a and bool(j)) for a, j in zip(lexical, judge)], cascade_cost)
        subsets["judged items"] = lambda it, ids=judged_ids(cache, args.judge_version): it["id"] in ids

    for name, keep in subsets.items():
        idx = [i for i, it in enumerate(items) if keep(it)]
        part = [items[i] for i in idx]
        n_changed = sum(not it["same_meaning"] for it in part)
        print(f"\n{name}: {len(part)} items, {n_changed} changed\n")
        print("| candidate | precision | recall | F1 | tp/fp/fn/tn | precision 95% CI | recall 95% CI | cost per pair |\n"
              "|---|---|---|---|---|---|---|---|")
        for cand, (flags, cost) in candidates.items():
            if all(flags[i] is not None for i in idx):
                chosen = [flags[i] for i in idx]
                print(f"| {cand} | {score(chosen, part).row()} | {interval(chosen, part).row()} | {cost} |")

    kinds = sorted({it["kind"] for it in items if not it["same_meaning"]})
    print("\nrecall by kind of change (items every candidate answered)\n")
    print("| kind | n | " + " | ".join(candidates) + " |\n|---|---|" + "---|" * len(candidates))
    for kind in kinds:
        idx = [i for i, it in enumerate(items) if it["kind"] == kind and not it["same_meaning"]
               and all(flags[i] is not None for flags, _ in candidates.values())]
        cells = [f"{sum(flags[i] for i in idx)}/{len(idx)}" for flags, _ in candidates.values()]
        print(f"| {kind} | {len(idx)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
