"""AO@k / JS@k / R@k against hand-computed cases, brute-force references and properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paraclip.evaluation.metrics import (
    average_overlap,
    exact_operands,
    gallery_search,
    jaccard_at_k,
    rank_similarity,
    recall_hits,
)

# -- brute-force references (the definitions, written as plainly as possible) ----------------

def ao_reference(a, b, k):
    return sum(len(set(a[:d]) & set(b[:d])) / d for d in range(1, k + 1)) / k


def js_reference(a, b, k):
    sa, sb = set(a[:k]), set(b[:k])
    return len(sa & sb) / len(sa | sb)


def test_hand_computed_cases():
    a = [[1, 2, 3]]
    b = [[2, 1, 4]]
    # d=1: {1}∩{2}=0 ; d=2: {1,2}∩{2,1}=2 -> 2/2 ; d=3: {1,2,3}∩{2,1,4}=2 -> 2/3
    assert average_overlap(np.array(a), np.array(b), 3)[0] == pytest.approx((0 + 1 + 2 / 3) / 3)
    # |{1,2,3} ∩ {2,1,4}| = 2, union = 4
    assert jaccard_at_k(np.array(a), np.array(b), 3)[0] == pytest.approx(0.5)
    # k=1 looks only at the first items
    assert average_overlap(np.array(a), np.array(b), 1)[0] == 0.0
    assert jaccard_at_k(np.array(a), np.array(b), 2)[0] == pytest.approx(1.0)
    # the same items in reverse order: Jaccard 1, average overlap < 1
    rev = np.array([[3, 2, 1]])
    assert jaccard_at_k(np.array(a), rev, 3)[0] == 1.0
    # d=1: {1}∩{3}=0 ; d=2: {1,2}∩{3,2}=1 -> 1/2 ; d=3: 3/3
    assert average_overlap(np.array(a), rev, 3)[0] == pytest.approx((0 + 0.5 + 1) / 3)


def test_rank_similarity_matches_reference_for_several_k():
    rng = np.random.default_rng(0)
    n, width, universe = 200, 12, 30
    a = np.stack([rng.permutation(universe)[:width] for _ in range(n)])
    b = np.stack([rng.permutation(universe)[:width] for _ in range(n)])
    out = rank_similarity(a, b, [1, 3, 10, 12])
    for k in (1, 3, 10, 12):
        ref_ao = [ao_reference(list(x), list(y), k) for x, y in zip(a, b)]
        ref_js = [js_reference(list(x), list(y), k) for x, y in zip(a, b)]
        np.testing.assert_allclose(out[f"AO@{k}"], ref_ao)
        np.testing.assert_allclose(out[f"JS@{k}"], ref_js)
        np.testing.assert_allclose(average_overlap(a, b, k), ref_ao)
        np.testing.assert_allclose(jaccard_at_k(a, b, k), ref_js)


def test_k_larger_than_lists_is_an_error():
    with pytest.raises(ValueError, match="k=4"):
        average_overlap(np.array([[1, 2, 3]]), np.array([[1, 2, 3]]), 4)


ranked_lists = st.integers(min_value=1, max_value=12).flatmap(
    lambda k: st.tuples(
        st.just(k),
        st.lists(st.integers(0, 40), min_size=k, max_size=k, unique=True),
        st.lists(st.integers(0, 40), min_size=k, max_size=k, unique=True),
    )
)


@settings(max_examples=300, deadline=None)
@given(ranked_lists)
def test_properties(case):
    k, a, b = case
    A, B = np.array([a]), np.array([b])
    ao, js = average_overlap(A, B, k)[0], jaccard_at_k(A, B, k)[0]
    assert 0.0 <= ao <= 1.0 and 0.0 <= js <= 1.0
    assert ao == pytest.approx(ao_reference(a, b, k))
    assert js == pytest.approx(js_reference(a, b, k))
    # symmetric
    assert average_overlap(B, A, k)[0] == pytest.approx(ao)
    assert jaccard_at_k(B, A, k)[0] == pytest.approx(js)
    # identical lists -> 1
    assert average_overlap(A, A, k)[0] == pytest.approx(1.0)
    assert jaccard_at_k(A, A, k)[0] == pytest.approx(1.0)
    # disjoint lists -> 0
    C = np.array([[x + 100 for x in a]])
    assert average_overlap(A, C, k)[0] == 0.0
    assert jaccard_at_k(A, C, k)[0] == 0.0


# -- gallery search -------------------------------------------------------------------------

def _unit(rng, n, d):
    x = torch.from_numpy(rng.standard_normal((n, d)).astype(np.float32))
    return torch.nn.functional.normalize(x, dim=-1)


@pytest.mark.parametrize("budget_mb", [256.0, 0.4, 0.02])  # one block; query blocks; query and gallery blocks
def test_gallery_search_matches_full_sort(budget_mb):
    rng = np.random.default_rng(1)
    q, g = _unit(rng, 150, 16), _unit(rng, 700, 16)
    labels_g = np.arange(700) % 350  # two positives per label
    labels_q = rng.integers(-1, 350, size=150)
    res = gallery_search(q, g, 10, labels_q, labels_g, memory_budget_mb=budget_mb)
    eq, eg = exact_operands(q, g)  # the scores gallery_search ranks: q @ g.T to ~1e-7, exact in float64
    scores = (eq @ eg.T).numpy()
    assert np.abs(scores - (q @ g.T).numpy()).max() < 1e-5
    order = np.argsort(-scores, axis=1, kind="stable")
    np.testing.assert_array_equal(res.topk, order[:, :10])
    for i in range(150):
        if labels_q[i] < 0:
            assert res.ranks[i] == -1
            continue
        positive = labels_g == labels_q[i]
        best = scores[i][positive].max()
        # CLIP_benchmark's hit definition: rank of the first positive in the sorted list
        first_positive_position = int(np.flatnonzero(positive[order[i]])[0])
        assert res.ranks[i] == first_positive_position
        assert res.ranks[i] == int(((scores[i] >= best) & ~positive).sum())


def test_recall_any_positive_counts_and_ties_count_against():
    # query 0 has positives at gallery 1 and 3; gallery 3 is the best match -> rank 0
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[0.0, 1.0], [0.6, 0.8], [0.8, 0.6], [1.0, 0.0]])
    res = gallery_search(q, g, 2, np.array([5, 7]), np.array([9, 5, 9, 5]))
    assert res.ranks[0] == 0
    assert res.ranks[1] == -1  # label 7 has no positive in the gallery
    np.testing.assert_array_equal(recall_hits(res.ranks, 1), [1.0, np.nan])
    # a constant encoder: all scores tie, so the positive is never ahead of anything
    const_q, const_g = torch.ones(1, 2), torch.ones(5, 2)
    tied = gallery_search(const_q, const_g, 1, np.array([2]), np.arange(5))
    assert tied.ranks[0] == 4
    assert recall_hits(tied.ranks, 1)[0] == 0.0 and recall_hits(tied.ranks, 5)[0] == 1.0


def test_gallery_smaller_than_k_returns_all():
    q, g = torch.eye(3)[:1], torch.eye(3)
    res = gallery_search(q, g, 10)
    assert res.topk.shape == (1, 3) and res.topk[0, 0] == 0


# -- exact ties --------------------------------------------------------------------------------

BUDGETS = [256.0, 1.0, 0.05, 0.002]  # one block down to blocks of a few rows and columns


def _duplicated_gallery(rng, distinct=1000, copies=4, d=64):
    """Unit features, each distinct image repeated ``copies`` times at scattered gallery positions:
    a float32 blocked matmul gives the copies scores an ulp apart, depending on the blocks."""
    base = _unit(rng, distinct, d).numpy()
    which = rng.permutation(np.repeat(np.arange(distinct), copies))
    return base, which


def _reference_topk(q: np.ndarray, base: np.ndarray, which: np.ndarray, k: int) -> np.ndarray:
    """(score desc, gallery index asc) on the scores gallery_search defines, every copy of an image
    given the very same score (each distinct image is scored once)."""
    eq, eb = exact_operands(torch.from_numpy(q), torch.from_numpy(base))
    scores = (eq @ eb.T).numpy()[:, which]
    index = np.arange(len(which))
    return np.stack([np.lexsort((index, -row))[:k] for row in scores])


@pytest.mark.parametrize("budget_mb", BUDGETS)
def test_ties_rank_by_gallery_index_on_duplicated_images(budget_mb):
    rng = np.random.default_rng(3)
    base, which = _duplicated_gallery(rng)
    q = _unit(rng, 100, base.shape[1]).numpy()
    res = gallery_search(q, base[which], 20, memory_budget_mb=budget_mb)
    np.testing.assert_array_equal(res.topk, _reference_topk(q, base, which, 20))


def test_top_k_is_identical_across_memory_budgets_for_any_features():
    """Random float32 features: the "same" score would differ by an ulp between blockings."""
    rng = np.random.default_rng(4)
    distinct = _unit(rng, 2000, 512).numpy()
    g = np.concatenate([distinct, distinct[rng.integers(0, 2000, 2000)]])  # 2000 exact duplicates
    q = _unit(rng, 120, 512).numpy()
    labels_q = rng.integers(0, 2000, 120)
    results = [gallery_search(q, g, 10, labels_q, np.arange(4000) % 2000, memory_budget_mb=b)
               for b in (256.0, 4.0, 0.5)]
    for other in results[1:]:
        np.testing.assert_array_equal(other.topk, results[0].topk)
        np.testing.assert_array_equal(other.topk_scores, results[0].topk_scores)
        np.testing.assert_array_equal(other.ranks, results[0].ranks)
    # within every tie the lower gallery index comes first
    scores = results[0].topk_scores
    tie = scores[:, 1:] == scores[:, :-1]
    assert tie.any() and (results[0].topk[:, 1:][tie] > results[0].topk[:, :-1][tie]).all()


def test_all_scores_tied_keeps_the_first_k_indices():
    res = gallery_search(torch.ones(3, 4), torch.ones(50, 4), 7, memory_budget_mb=0.001)
    np.testing.assert_array_equal(res.topk, np.tile(np.arange(7), (3, 1)))


def test_rank_similarity_of_duplicated_galleries_does_not_depend_on_the_budget():
    rng = np.random.default_rng(5)
    base, which = _duplicated_gallery(rng, distinct=500, copies=8)
    q = _unit(rng, 60, base.shape[1]).numpy()
    p = torch.nn.functional.normalize(torch.from_numpy(q) + 0.3 * _unit(rng, 60, base.shape[1]), dim=-1).numpy()
    values = set()
    for budget in BUDGETS:
        a = gallery_search(q, base[which], 10, memory_budget_mb=budget).topk
        b = gallery_search(p, base[which], 10, memory_budget_mb=budget).topk
        values.add(float(rank_similarity(a, b, [10])["AO@10"].mean()))
    reference = rank_similarity(_reference_topk(q, base, which, 10), _reference_topk(p, base, which, 10),
                                [10])["AO@10"].mean()
    assert values == {float(reference)}
