"""The meaning-change flag measured on the committed labelled set (README: "Meaning-change flags").

The floors below are the figures measured when the set was committed (bench/meaning_flag.py
prints them); a change to the check that lowers precision or recall fails here. The LLM
judge's replies are cached in the repository, so this needs no model.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from paraclip.errors import DataError
from paraclip.paraphrase.meaning.judge import JUDGE_VERSION, parse_verdict
from paraclip.paraphrase.meaning.rules import check_meaning
from paraclip.paraphrase.meaning.evaluation import Interval, interval, read_labelled, score

DATA = Path(__file__).parent.parent / "data" / "meaning"
ITEMS = read_labelled(DATA / "meaning_eval.jsonl")

# measured (precision, recall) of the default check (lexicon + WordNet), rounded down to 3 decimals.
# "hand" and "llm-dev" were used to develop it; "llm-test" was read before (README there), so it is a
# check, not a held-out figure
SUBSETS = {
    "all": lambda it: True,
    "hand-written": lambda it: it["split"] == "hand",
    "llm-dev": lambda it: it["split"] == "llm-dev",
    "llm-test": lambda it: it["split"] == "llm-test",
    "llm outputs": lambda it: it["split"] != "hand",
    "qwen-test": lambda it: it["source"].startswith("qwen") and it["split"] == "llm-test",
}
LEXICAL_FLOOR = {"all": (0.955, 0.977), "hand-written": (1.0, 1.0), "llm-dev": (1.0, 0.955),
                 "llm-test": (0.837, 0.968), "llm outputs": (0.925, 0.961), "qwen-test": (0.8, 0.952)}
# the second held-out set (README: "The second held-out set"): the check was first improved from its errors on
# "heldout-dev" only and "heldout-test" scored once (commit 81b6d3e: 0.659 / 0.794); the issue-23 item-6 work then
# used every split of both sets for development, so these are development figures, not held-out ones.
# Measured (precision, recall), rounded down to 3 decimals.
HELDOUT = read_labelled(DATA / "heldout.jsonl")
HELDOUT_FLOOR = {"all": (0.726, 0.983), "heldout-dev": (0.717, 1.0), "heldout-test": (0.733, 0.97)}
# the third held-out set (README: "The third held-out set"): labelled blind and scored once, after the
# issue-23 item-6 rules were merged (commit 33a894b); nothing was tuned on it. (precision, recall) rounded down.
HELDOUT3 = read_labelled(DATA / "heldout3.jsonl")
HELDOUT3_FLOOR = {"all": (0.634, 0.948), "offline LLM (Qwen)": (0.826, 0.95), "API-style": (0.347, 0.941)}
HELDOUT3_SUBSETS = {"all": lambda it: True, "offline LLM (Qwen)": lambda it: it["source"].startswith("qwen"),
                    "API-style": lambda it: it["source"].startswith("claude")}
# the fourth held-out set (README: "The fourth held-out set"): labelled blind, scored once (2026-12-07) with the
# check as it was at the third set's scoring; nothing was tuned on it before. (precision, recall) rounded down.
HELDOUT4 = read_labelled(DATA / "heldout4.jsonl")
HELDOUT4_FLOOR = {"all": (0.52, 0.938), "offline LLM (Qwen)": (0.702, 0.936), "API-style": (0.274, 0.944)}
JUDGE_MEASURED = {"all": (0.744, 0.767)}  # on the 312 items the judge was asked (a stopped run)


def test_the_set_is_large_varied_and_has_real_llm_outputs():
    assert len(ITEMS) >= 150
    assert len({it["id"] for it in ITEMS}) == len(ITEMS)
    sources = Counter(it["source"].split("/")[0] for it in ITEMS)
    assert sources["hand-written"] >= 60 and sum(n for s, n in sources.items() if s != "hand-written") >= 90
    kinds = Counter(it["kind"] for it in ITEMS if not it["same_meaning"])
    for kind in ("object", "colour", "count", "relation", "dropped object", "added object", "attribute", "action"):
        assert kinds[kind] >= 2, kind
    same = Counter(it["kind"] for it in ITEMS if it["same_meaning"])
    assert same["synonym"] >= 10
    # every pair is read against the caption: no pair repeats
    assert len({(it["caption"], it["paraphrase"]) for it in ITEMS}) == len(ITEMS)


@pytest.mark.parametrize("subset", sorted(LEXICAL_FLOOR))
def test_lexical_flag_precision_and_recall_stay_at_the_measured_figures(subset):
    items = [it for it in ITEMS if SUBSETS[subset](it)]
    flags = [check_meaning(it["caption"], it["paraphrase"]).changed for it in items]
    result = score(flags, items)
    precision, recall = LEXICAL_FLOOR[subset]
    assert result.precision >= precision and result.recall >= recall, result


@pytest.mark.parametrize("split", sorted(HELDOUT_FLOOR))
def test_lexical_flag_on_the_second_heldout_set_stays_at_the_measured_figures(split):
    items = [it for it in HELDOUT if split == "all" or it["split"] == split]
    assert len(items) == (198 if split == "all" else 99)
    result = score([check_meaning(it["caption"], it["paraphrase"]).changed for it in items], items)
    precision, recall = HELDOUT_FLOOR[split]
    assert result.precision >= precision and result.recall >= recall, result


BLIND_SETS = {"third": (HELDOUT3, HELDOUT3_FLOOR, {"all": 197, "offline LLM (Qwen)": 100, "API-style": 97}),
              "fourth": (HELDOUT4, HELDOUT4_FLOOR, {"all": 234, "offline LLM (Qwen)": 116, "API-style": 118})}


@pytest.mark.parametrize("name, subset", [(name, subset) for name in BLIND_SETS for subset in sorted(HELDOUT3_FLOOR)])
def test_lexical_flag_on_the_blind_heldout_sets_stays_at_their_one_scoring(name, subset):
    labelled, floor, sizes = BLIND_SETS[name]
    items = [it for it in labelled if HELDOUT3_SUBSETS[subset](it)]
    assert len(items) == sizes[subset]
    result = score([check_meaning(it["caption"], it["paraphrase"]).changed for it in items], items)
    precision, recall = floor[subset]
    assert result.precision >= precision and result.recall >= recall, result


# the judge-v2 prompt (--meaning-judge) answered by reading, by an API-served LLM of the family that wrote the API-style
# texts and labelled both sets (README: "Meaning-change flags"); its replies are cached with their ids.
# (tp, fp, fn, tn) as measured on the two blind sets together
JUDGE_V2_MEASURED = {"all": (154, 8, 4, 265), "offline LLM (Qwen)": (122, 7, 1, 86), "API-style": (32, 1, 3, 179)}


@pytest.mark.parametrize("subset", sorted(JUDGE_V2_MEASURED))
def test_judge_v2_figures_on_the_blind_sets_from_its_cached_replies(subset):
    rows = [json.loads(line) for line in (DATA / "judge_v2_outputs.jsonl").read_text().splitlines()]
    replies = {r["id"]: r["reply"] for r in rows if r["judge_version"] == "judge-v2"}
    items = [it for it in HELDOUT3 + HELDOUT4 if HELDOUT3_SUBSETS[subset](it)]
    assert all(it["id"] in replies for it in items)  # every item of both sets was judged
    result = score([parse_verdict(replies[it["id"]]) for it in items], items)
    assert (result.tp, result.fp, result.fn, result.tn) == JUDGE_V2_MEASURED[subset], result
    assert result.precision >= 0.8 and result.recall >= 0.85  # the goal, met by this judge on both sources


# the same prompt asked of the offline Qwen2.5-Coder-1.5B (llama.cpp, greedy) on the fourth blind set: worse than the
# lexical check on recall and no better on API-style precision (the reason for SMALL_JUDGE_WARNING)
JUDGE_V2_QWEN_MEASURED = {"all": (64, 43, 17, 110), "offline LLM (Qwen)": (48, 9, 15, 44), "API-style": (16, 34, 2, 66)}


@pytest.mark.parametrize("subset", sorted(JUDGE_V2_QWEN_MEASURED))
def test_judge_v2_asked_of_the_offline_model_from_its_cached_replies(subset):
    rows = [json.loads(line) for line in (DATA / "judge_v2_qwen_outputs.jsonl").read_text().splitlines()]
    replies = {r["id"]: r["reply"] for r in rows if r["judge_version"] == "judge-v2"}
    items = [it for it in HELDOUT4 if HELDOUT3_SUBSETS[subset](it)]
    assert all(it["id"] in replies for it in items)
    result = score([bool(parse_verdict(replies[it["id"]])) for it in items], items)
    assert (result.tp, result.fp, result.fn, result.tn) == JUDGE_V2_QWEN_MEASURED[subset], result


def _items(outcomes: str, per_caption: int) -> tuple[list[bool], list[dict]]:
    """Flags and items from a string of outcomes (t = true flag, f = false flag, n = missed change), each caption
    holding ``per_caption`` items with the same outcome."""
    flags, items = [], []
    for c, outcome in enumerate(outcomes):
        for k in range(per_caption):
            flags.append(outcome in "tf")
            items.append({"id": f"{c}-{k}", "caption": f"caption {c}", "same_meaning": outcome == "f"})
    return flags, items


def test_intervals_hold_the_point_estimate_and_collapse_when_every_flag_is_right():
    flags, items = _items("ttttttffnn" * 3, 2)
    found, point = interval(flags, items), score(flags, items)
    assert found.precision[0] < point.precision < found.precision[1]
    assert found.recall[0] < point.recall < found.recall[1]
    assert interval(*_items("tttt", 3)) == Interval((1.0, 1.0), (1.0, 1.0))
    assert interval(flags, items, seed=1) != found and interval(flags, items) == found  # seeded, reproducible


def test_intervals_resample_captions_not_items():
    # two items per caption with one outcome: as many independent draws as captions, not as items, so the interval
    # must be as wide as that of one item per caption, and wider than resampling the items one by one would give
    flags, items = _items("tf" * 10, 2)
    by_caption = interval(flags, items)
    by_item = interval(flags, items, group=lambda it: it["id"])
    one_each = interval(*_items("tf" * 10, 1))
    width = lambda ci: ci.precision[1] - ci.precision[0]  # noqa: E731
    assert width(by_caption) == pytest.approx(width(one_each), abs=0.05)
    assert width(by_caption) > 1.2 * width(by_item)


def test_llm_judge_figures_from_its_cached_replies():
    rows = {}
    for line in (DATA / "judge_outputs.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["judge_version"] == JUDGE_VERSION:
            rows[row["id"]] = row
    judged = [it for it in ITEMS if it["id"] in rows]
    assert len(judged) >= 300
    flags = [bool(parse_verdict(rows[it["id"]]["reply"])) for it in judged]
    result = score(flags, judged)
    precision, recall = JUDGE_MEASURED["all"]
    assert (round(result.precision, 3), round(result.recall, 3)) == (precision, recall), result


GOOD = {"id": "x1", "caption": "a red box", "paraphrase": "a crimson box", "same_meaning": True, "kind": "synonym",
        "source": "hand", "split": "hand"}


@pytest.mark.parametrize("line, message", [
    ('{"id": "x2", "capt', r"bad\.jsonl:3: malformed JSON"),
    ("[" * 100_000, r"bad\.jsonl:3: JSON nested too deeply"),
    ('{"id": 1' + "0" * 5000 + "}", r"bad\.jsonl:3: JSON value that cannot be read"),
    ('["a", "list"]', r"bad\.jsonl:3: expected a JSON object per line, found list"),
    ("17", r"bad\.jsonl:3: expected a JSON object per line, found int"),
    (json.dumps({**GOOD, "same_meaning": "yes"}), r"bad\.jsonl:3: field 'same_meaning' must be true or false"),
    (json.dumps({"id": "x3"}), r"bad\.jsonl:3: missing field\(s\) caption"),
])
def test_a_damaged_labelled_set_is_refused_naming_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(f"# labelled items\n{json.dumps(GOOD)}\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_labelled(path)
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid UTF-8"):
        read_labelled(path)
    with pytest.raises(DataError, match=r"absent\.jsonl: no such file"):
        read_labelled(tmp_path / "absent.jsonl")


# the targeted second opinion (second_opinion.py: one yes/no question per flagged object/action swap, WordNet-gated)
# from Qwen2.5-Coder-1.5B's cached replies: (tp, fp, fn, tn) as measured; README "Meaning-change flags"
PAIR_MEASURED = {"meaning_eval": (120, 4, 12, 185), "heldout": (56, 15, 6, 121)}


@pytest.mark.parametrize("name", sorted(PAIR_MEASURED))
def test_targeted_second_opinion_figures_from_its_cached_replies(name):
    from paraclip.paraphrase.meaning import second_opinion as so

    items = ITEMS if name == "meaning_eval" else HELDOUT
    cache = so.ReplyCache(DATA / "pair_outputs.jsonl", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    checks = [check_meaning(it["caption"], it["paraphrase"]) for it in items]
    assert all(r in cache for r in so.all_requests(checks))  # every question the gated cascade asks is cached
    result = score([so.second_opinion(c, cache.asker()).changed for c in checks], items)
    assert (result.tp, result.fp, result.fn, result.tn) == PAIR_MEASURED[name], result
