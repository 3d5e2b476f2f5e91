"""The selection rule (the pipeline test runs the whole selection on a real smoke run)."""

from __future__ import annotations

from paraclip.miniworld.selection import choose, selection_score
from paraclip.miniworld.tasks import TASK_NAMES


def _row(lr, step, ao, r1):
    metrics = {TASK_NAMES["in_vocab"]: {"AO@10": ao}, TASK_NAMES["retrieval"]: {"t2i_R@1": r1}}
    return {"lr": lr, "step": step, "score": selection_score(metrics)}


def test_the_score_is_in_vocab_ao10_plus_t2i_r1():
    assert _row(1e-3, 300, 70, 55)["score"] == 125


def test_the_best_rate_and_step_win_together():
    rows = [_row(1e-3, 300, 70, 60), _row(1e-3, 600, 72, 56), _row(2e-3, 300, 73, 60), _row(2e-3, 600, 60, 50)]
    assert choose(rows) == {"lr": 2e-3, "step": 300, "score": 133}


def test_a_tie_goes_to_fewer_steps_then_the_lower_rate():
    rows = [_row(2e-3, 600, 70, 60), _row(2e-3, 300, 60, 70), _row(1e-3, 600, 65, 65)]
    assert choose(rows)["step"] == 300
    rows = [_row(2e-3, 300, 70, 60), _row(1e-3, 300, 60, 70), _row(5e-4, 900, 70, 60)]
    assert choose(rows) == {"lr": 1e-3, "step": 300, "score": 130}
