"""The stopping-step rule (the pipeline test runs the whole selection on a real smoke run)."""

from __future__ import annotations

from paraclip.miniworld.selection import choose_step, selection_score
from paraclip.miniworld.tasks import TASK_NAMES


def _row(seed, step, ao, r1):
    metrics = {TASK_NAMES["in_vocab"]: {"AO@10": ao}, TASK_NAMES["retrieval"]: {"t2i_R@1": r1}}
    return {"seed": seed, "step": step, "score": selection_score(metrics)}


def test_the_seed_mean_score_decides():
    rows = [_row(0, 300, 70, 60), _row(1, 300, 70, 50), _row(0, 600, 72, 55), _row(1, 600, 72, 56)]
    chosen, means = choose_step(rows, [300, 600])
    assert means == {300: 125.0, 600: 127.5} and chosen == 600


def test_a_tie_goes_to_fewer_steps():
    rows = [_row(0, 300, 70, 60), _row(0, 600, 60, 70), _row(0, 900, 65, 64)]
    assert choose_step(rows, [300, 600, 900])[0] == 300
