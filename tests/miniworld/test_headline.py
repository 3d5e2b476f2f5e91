"""The report's one verdict rule and the uninformative-metric check."""

from __future__ import annotations

import math

import pandas as pd

from paraclip.miniworld.headline import uninformative_metrics, verdict
from paraclip.miniworld.tasks import TASK_NAMES


def _row(delta, holm, seed_low, seed_high):
    return {"delta": delta, "holm": holm, "seed_ci_low": seed_low, "seed_ci_high": seed_high}


def test_better_or_worse_needs_both_the_holm_test_and_the_seed_interval():
    assert verdict(_row(+2.0, True, 0.5, 3.5)) == "better"
    assert verdict(_row(-2.0, True, -3.5, -0.5)) == "worse"
    assert verdict(_row(+2.0, True, -0.5, 4.5)) == "suggestive (better)"  # the seed interval holds 0
    assert verdict(_row(+2.0, False, 0.5, 3.5)) == "suggestive (better)"  # fails Holm (e.g. p = 0.044)
    assert verdict(_row(+2.0, False, -1.0, 5.0)) == "tie"


def test_one_seed_can_never_be_better():
    assert verdict(_row(+9.0, True, math.nan, math.nan)) == "suggestive (better)"
    assert verdict(_row(math.nan, False, math.nan, math.nan)) == "–"


def test_a_task_every_model_answers_at_chance_is_uninformative():
    rows = [{"model": m, "task": TASK_NAMES["relation"], "metric": "macro_accuracy", "value": v}
            for m, v in (("baseline", 49.1), ("ParaCLIP", 52.3), ("LaCLIP-style", 48.0))]
    rows += [{"model": m, "task": TASK_NAMES["attribute"], "metric": "macro_accuracy", "value": v}
             for m, v in (("baseline", 95.8), ("ParaCLIP", 51.0), ("LaCLIP-style", 50.0))]
    dull = uninformative_metrics(pd.DataFrame(rows), ["baseline", "ParaCLIP", "LaCLIP-style"])
    assert dull == {(TASK_NAMES["relation"], "macro_accuracy")}  # one model well above chance keeps a task
