"""STS evaluation: cosine of the two sentence embeddings vs gold, Spearman ×100 (and Pearson).

This is the protocol of MTEB and of ParaCLIP's Table 3 (cosine similarity, Spearman's rank
correlation over all pairs of a task).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr

from paraclip.data.sts import PAPER_STS_TASKS, STS_TASKS, STSPairs, load_sts_task
from paraclip.evaluation.base import Evaluator, ItemScores, select


class STSEvaluator(Evaluator):
    primary_metric = "spearman"

    def __init__(self, pairs: STSPairs):
        self.pairs = pairs
        self.name = pairs.name
        self.source = pairs.source
        self.data_notes = list(pairs.notes)

    def __len__(self) -> int:
        return len(self.pairs)

    def item_scores(self, encoder) -> ItemScores:
        # Encode each distinct sentence once; many STS sentences repeat across pairs.
        unique = list(dict.fromkeys(self.pairs.sentences1 + self.pairs.sentences2))
        emb = encoder.encode_text(unique)
        row = {s: i for i, s in enumerate(unique)}
        e1 = emb[[row[s] for s in self.pairs.sentences1]]
        e2 = emb[[row[s] for s in self.pairs.sentences2]]
        cosine = (e1 * e2).sum(dim=-1).numpy().astype(np.float64)
        return {"gold": self.pairs.scores, "cosine": cosine}

    def metrics(self, items: ItemScores, index: np.ndarray | None = None) -> dict[str, float]:
        items = select(items, index)
        gold, pred = np.asarray(items["gold"]), np.asarray(items["cosine"])
        if len(gold) < 2 or np.ptp(gold) == 0 or np.ptp(pred) == 0:
            return {"spearman": float("nan"), "pearson": float("nan")}
        return {
            "spearman": 100.0 * float(spearmanr(gold, pred).statistic),
            "pearson": 100.0 * float(pearsonr(gold, pred).statistic),
        }


    def why_undefined(self, items: ItemScores, metric: str) -> str:
        gold, pred = np.asarray(items["gold"]), np.asarray(items["cosine"])
        if len(gold) < 2:
            return f"{metric} needs at least 2 pairs; {self.name} has {len(gold)}"
        if np.ptp(gold) == 0:
            return (f"every gold score of {self.name} is {gold[0]:g}; a correlation with constant scores is "
                    f"undefined (check the score column of {self.source or 'the data'})")
        if np.ptp(pred) == 0:
            return ("the model gives every pair the same cosine similarity; a correlation with constant "
                    "predictions is undefined")
        return super().why_undefined(items, metric)


def sts_evaluator(task: str, data_dir=None, score_range=None) -> STSEvaluator:
    """Evaluator for one STS task name (STS12…STS16, STSB, SICK-R, STSB-dev) or a pairs file
    (whose gold scores must lie in ``score_range``, default 0-5)."""
    return STSEvaluator(load_sts_task(task, data_dir, score_range))


__all__ = ["PAPER_STS_TASKS", "STS_TASKS", "STSEvaluator", "sts_evaluator"]
