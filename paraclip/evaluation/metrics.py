"""Ranking metrics and chunked gallery search.

Rank similarity (the paraphrased-retrieval protocol of Cheng et al., 2024, used by ParaCLIP,
Kim et al. 2024, Table 1): for a query q and its paraphrase p, with top-k lists A and B of
gallery items,

* ``AO@k = (1/k) * sum_{d=1..k} |A[:d] ∩ B[:d]| / d``  (average overlap)
* ``JS@k = |A[:k] ∩ B[:k]| / |A[:k] ∪ B[:k]|``          (Jaccard similarity)

Both are vectorised over many pairs. The trick: an item ``A[i]`` that sits at position ``j``
in ``B`` belongs to ``A[:d] ∩ B[:d]`` exactly when ``max(i, j) < d``. So one "depth of entry"
per element of A gives every prefix intersection at once (lists must not repeat items, as
top-k lists never do).

Recall@k follows CLIP_benchmark (``clip_benchmark/metrics/zeroshot_retrieval.py``): a query is
a hit when *any* of its positives is among the top k. We compute it from the rank of the
best-scoring positive: the number of negatives scoring at least as high. Ties therefore
count against the model (a constant encoder gets chance-level recall, not 100 %).

:func:`gallery_search` scores queries against a gallery in blocks so that no score matrix
larger than ``memory_budget_mb`` is ever built (a 5k × 100k float32 matrix would be 2 GB).

Ties are ranked by (score descending, gallery index ascending), within and across blocks. A
float32 matmul sums in an order that depends on the block shapes, so the "same" score can
differ by an ulp between memory budgets, and duplicate images then change places. Decisions
are therefore taken on exact scores: both sides rounded once to a fixed-point grid (power-of-
two scale, about 21 significant bits for 512-d features; a score changes by ~1e-6) and
multiplied in float64, where every partial sum of such numbers is exact — the same value in
any summation order, hence in any block layout. The float32 matmul (of the grid values) still
does the bulk work: only cells within a proven error bound of a decision (the k-th score, the
best positive's score) are re-scored exactly, a handful per query unless the gallery is full
of near-ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

DEFAULT_MEMORY_BUDGET_MB = 256.0
# Bytes held per cell of a score block: the float32 score plus boolean temporaries.
_BYTES_PER_CELL = 8
_FLOAT64_MANTISSA_BITS = 53


# -- rank similarity -------------------------------------------------------------------------

def entry_depths(a: np.ndarray, b: np.ndarray, chunk_rows: int = 4096) -> np.ndarray:
    """For lists ``a``, ``b`` of shape (n, K): the 0-based depth at which each ``a[r, i]`` joins
    the intersection of the two prefixes, i.e. ``max(i, position of a[r, i] in b[r])``; ``K`` when
    it never does."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two (n, K) arrays of the same shape, got {a.shape} and {b.shape}")
    n, width = a.shape
    out = np.empty((n, width), dtype=np.int64)
    cols = np.arange(width)
    for start in range(0, n, chunk_rows):
        aa, bb = a[start : start + chunk_rows], b[start : start + chunk_rows]
        match = aa[:, :, None] == bb[:, None, :]  # (c, K, K): a[i] == b[j]
        found = match.any(axis=2)
        pos = np.where(found, match.argmax(axis=2), width)
        out[start : start + chunk_rows] = np.where(found, np.maximum(pos, cols[None, :]), width)
    return out


def _prefix_intersections(depths: np.ndarray, k: int) -> np.ndarray:
    """(n, k) array: column d-1 holds |A[:d] ∩ B[:d]| for d = 1..k."""
    counts = np.zeros((depths.shape[0], k + 1), dtype=np.int64)
    rows = np.repeat(np.arange(depths.shape[0]), depths.shape[1])
    np.add.at(counts, (rows, np.minimum(depths, k).ravel()), 1)
    return np.cumsum(counts[:, :k], axis=1)


def _check_k(k: int, width: int) -> None:
    if not 1 <= k <= width:
        raise ValueError(f"k={k} must be between 1 and the list length {width}")


def average_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per-row AO@k of two (n, K≥k) arrays of ranked lists, in [0, 1]."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    _check_k(k, a.shape[1])
    inter = _prefix_intersections(entry_depths(a[:, :k], b[:, :k]), k)
    return (inter / np.arange(1, k + 1)).mean(axis=1)


def jaccard_at_k(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Per-row JS@k of two (n, K≥k) arrays of ranked lists, in [0, 1]."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    _check_k(k, a.shape[1])
    inter = (entry_depths(a[:, :k], b[:, :k]) < k).sum(axis=1)
    return inter / (2 * k - inter)


def rank_similarity(a: np.ndarray, b: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """``{"AO@k": per-row array, "JS@k": per-row array}`` for every k, from one pass."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    kmax = max(ks)
    _check_k(kmax, a.shape[1])
    depths = entry_depths(a[:, :kmax], b[:, :kmax])
    inter = _prefix_intersections(depths, kmax)
    out: dict[str, np.ndarray] = {}
    for k in sorted(set(ks)):
        # depths within the top-k of both lists never exceed k-1, so prefixes of the kmax table hold
        out[f"AO@{k}"] = (inter[:, :k] / np.arange(1, k + 1)).mean(axis=1)
        c = inter[:, k - 1]
        out[f"JS@{k}"] = c / (2 * k - c)
    return out


# -- recall ----------------------------------------------------------------------------------

def recall_hits(ranks: np.ndarray, k: int) -> np.ndarray:
    """1.0 where the best positive ranks within the top k, 0.0 otherwise, NaN where unknown (-1)."""
    ranks = np.asarray(ranks)
    hits = (ranks < k).astype(np.float64)
    hits[ranks < 0] = np.nan
    return hits


# -- gallery search --------------------------------------------------------------------------

@dataclass
class SearchResult:
    topk: np.ndarray  # (n_queries, k) gallery indices, best first
    topk_scores: np.ndarray  # (n_queries, k)
    ranks: np.ndarray | None  # (n_queries,) rank of the best positive; -1 where the query has none


def _block_sizes(n_gallery: int, memory_budget_mb: float) -> tuple[int, int]:
    cells = max(1, int(memory_budget_mb * 2**20) // _BYTES_PER_CELL)
    min_query_rows = 64
    if n_gallery * min_query_rows <= cells:
        return max(min_query_rows, cells // max(n_gallery, 1)), n_gallery
    return min_query_rows, max(1, cells // min_query_rows)


def _positive_pairs(query_labels: np.ndarray, gallery_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (query, gallery) index pairs with equal labels, sorted by query (labels < 0 match nothing)."""
    order = np.argsort(gallery_labels, kind="stable")
    sorted_labels = gallery_labels[order]
    left = np.searchsorted(sorted_labels, query_labels, "left")
    right = np.searchsorted(sorted_labels, query_labels, "right")
    counts = np.where(query_labels < 0, 0, right - left)
    pq = np.repeat(np.arange(len(query_labels)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return pq, order[np.repeat(left, counts) + offsets]


def grid_bits(dim: int) -> int:
    """Significant bits per component such that a dot product of ``dim`` grid values is exact in float64."""
    # |component| < 2^bits grid units on both sides: a sum of dim products stays below 2^53 units
    return min(23, (_FLOAT64_MANTISSA_BITS - math.ceil(math.log2(max(1, dim))) - 1) // 2)  # float32 holds 24 bits


def grid_scale(x: torch.Tensor, bits: int) -> float:
    """The power of two that puts the largest |component| of ``x`` just under 2^bits grid units."""
    peak = max(float(x.max()), -float(x.min())) if x.numel() else 0.0
    exponent = math.frexp(peak)[1] if peak > 0 else 0  # peak < 2^exponent
    return 2.0 ** (bits - exponent)


def on_grid(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` rounded to the grid of ``scale``, in float32. Exact arithmetic: ``scale`` is a power of
    two and the grid values (< 2^bits units, bits <= 23) are representable in float32."""
    out = x.float() * scale
    return out.round_().div_(scale)


def exact_operands(queries: torch.Tensor, gallery: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sides on their grids, in float64: every dot product (and every partial sum of one) of
    these is exactly representable, so ``q @ g.T`` is the same number in any summation order.
    These are the scores :func:`gallery_search` ranks by."""
    bits = grid_bits(queries.shape[1])
    return (on_grid(queries, grid_scale(queries, bits)).double(),
            on_grid(gallery, grid_scale(gallery, bits)).double())


class _Scorer:
    """float32 score blocks, and the exact score of chosen (query, item) cells.

    When exact, both sides are first put on their grids (the grid values fit float32 exactly), so
    a float32 score differs from the exact one only by float32 summation error, at most
    ``d·2^-24·|q|·|g|`` in any summation order (Higham, 2002, Sec. 3.1); ``tol`` is twice that.
    The float32 scores shortlist, and a cell within ``tol`` of a decision boundary (the k-th
    score, the best positive's score) is decided by its exact score.
    """

    PAIR_CHUNK_VALUES = 1 << 21  # float64 values gathered at once when re-scoring cells

    def __init__(self, q: torch.Tensor, g: torch.Tensor, exact: bool):
        self.exact, self.tol = exact, 0.0
        if exact:
            dim = max(1, q.shape[1])
            bits = grid_bits(dim)
            q, g = on_grid(q, grid_scale(q, bits)), on_grid(g, grid_scale(g, bits))
            norms = float(q.norm(dim=1).max()) * float(g.norm(dim=1).max()) if q.numel() and g.numel() else 0.0
            self.tol = 2 * dim * 2.0**-24 * norms * 1.01
        self.q, self.g = q, g

    def cells(self, scores: torch.Tensor, qs: int, gs: int, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Scores (float64) of block cells (r, c) of the block at (qs, gs): exact, or the float32 ones."""
        if not self.exact:
            return scores[r, c].double()
        out = torch.empty(r.shape[0], dtype=torch.float64)
        step = max(1, self.PAIR_CHUNK_VALUES // max(1, self.q.shape[1]))
        for start in range(0, r.shape[0], step):
            a = self.q[r[start:start + step] + qs].double()
            b = self.g[c[start:start + step] + gs].double()
            out[start:start + step] = torch.einsum("ij,ij->i", a, b)  # every partial sum exact (grid_bits)
        return out

    def bounds(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 thresholds (lo, hi): a float32 score above ``hi`` has an exact score above ``values``,
        one below ``lo`` an exact score below them; in between the exact score decides."""
        lo = torch.nextafter((values - self.tol).float(), torch.tensor(float("-inf")))
        hi = torch.nextafter((values + self.tol).float(), torch.tensor(float("inf")))
        return lo, hi


def _sorted_by_score_then_index(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's candidates ordered by (score desc, index asc)."""
    idx, by_index = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, by_index)
    vals, by_score = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, torch.gather(idx, 1, by_score)


def _block_topk(scorer: _Scorer, scores: torch.Tensor, qs: int, gs: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k columns of a score block per row by (exact score desc, column asc), as (float64 scores,
    global indices). Every column that may tie with or beat the k-th is re-scored exactly, so the
    choice among ties never depends on ``torch.topk``."""
    rows = scores.shape[0]
    kth = torch.topk(scores, k, dim=1).values[:, -1]
    lo, _ = scorer.bounds(kth.double() - scorer.tol)  # exact k-th >= float32 k-th - tol
    r, c = torch.nonzero(scores >= lo[:, None], as_tuple=True)  # row-major: columns ascending per row
    vals = scorer.cells(scores, qs, gs, r, c)
    counts = torch.bincount(r, minlength=rows)
    slot = torch.arange(r.shape[0]) - (torch.cumsum(counts, 0) - counts)[r]
    width = int(counts.max())
    padded_vals = torch.full((rows, width), float("-inf"), dtype=torch.float64)
    padded_idx = torch.full((rows, width), torch.iinfo(torch.int64).max, dtype=torch.int64)
    padded_vals[r, slot], padded_idx[r, slot] = vals, c + gs
    vals, idx = _sorted_by_score_then_index(padded_vals, padded_idx)
    return vals[:, :k], idx[:, :k]


def gallery_search(
    queries: torch.Tensor | np.ndarray,
    gallery: torch.Tensor | np.ndarray,
    k: int = 10,
    query_labels: np.ndarray | None = None,
    gallery_labels: np.ndarray | None = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    exact: bool = True,
) -> SearchResult:
    """Top-k gallery indices per query (dot-product scores) and, given labels, the rank of each
    query's best positive (gallery items whose label equals the query's; label -1 = none).

    Scores are computed in (query block × gallery block) pieces of at most ``memory_budget_mb``;
    top-k lists are merged across gallery blocks. Ties are ranked by gallery index, and every
    decision is taken on exact scores (see the module docstring), so the result does not depend
    on the memory budget. ``exact=False`` decides on the float32 scores instead (ties still go to
    the lower index, but scores an ulp apart between blocks can then reorder near-duplicates).
    Positives are handled as a sparse list of (query, item) pairs, so ranks cost one comparison
    pass.
    """
    q = torch.as_tensor(np.asarray(queries) if not torch.is_tensor(queries) else queries).float()
    g = torch.as_tensor(np.asarray(gallery) if not torch.is_tensor(gallery) else gallery).float()
    n_q, n_g = q.shape[0], g.shape[0]
    if n_g == 0:
        raise ValueError("the gallery is empty")
    k = min(k, n_g)
    scorer = _Scorer(q, g, exact)
    q, g = scorer.q, scorer.g  # on their grids when exact: the float32 blocks score the grid values
    with_ranks = query_labels is not None
    if with_ranks:
        if gallery_labels is None:
            raise ValueError("query_labels needs gallery_labels")
        pair_q, pair_g = _positive_pairs(np.asarray(query_labels, dtype=np.int64),
                                         np.asarray(gallery_labels, dtype=np.int64))
        pair_q, pair_g = torch.from_numpy(pair_q), torch.from_numpy(pair_g)
    q_rows, g_cols = _block_sizes(n_g, memory_budget_mb)
    g_blocks = [(s, min(s + g_cols, n_g)) for s in range(0, n_g, g_cols)]

    topk = np.empty((n_q, k), dtype=np.int64)
    topk_scores = np.empty((n_q, k), dtype=np.float32)
    ranks = np.full(n_q, -1, dtype=np.int64) if with_ranks else None
    with torch.inference_mode():
        for qs in range(0, n_q, q_rows):
            qb = q[qs : qs + q_rows]
            rows = qb.shape[0]
            best_vals = best_idx = None
            if with_ranks:
                lo, hi = torch.searchsorted(pair_q, torch.tensor([qs, qs + rows])).tolist()
                block_pq, block_pg = pair_q[lo:hi] - qs, pair_g[lo:hi]
                pos_vals = torch.empty(block_pq.shape[0], dtype=torch.float64)
            kept_scores = None
            for gs, ge in g_blocks:
                scores = qb @ g[gs:ge].T
                vals, idx = _block_topk(scorer, scores, qs, gs, min(k, ge - gs))
                if best_vals is None:
                    best_vals, best_idx = vals, idx
                else:
                    best_vals, best_idx = _sorted_by_score_then_index(torch.cat([best_vals, vals], dim=1),
                                                                      torch.cat([best_idx, idx], dim=1))
                    best_vals, best_idx = best_vals[:, :k], best_idx[:, :k]
                if with_ranks:
                    inside = (block_pg >= gs) & (block_pg < ge)
                    pos_vals[inside] = scorer.cells(scores, qs, gs, block_pq[inside], block_pg[inside] - gs)
                    if len(g_blocks) == 1:
                        kept_scores = scores
            if with_ranks:
                ranks[qs : qs + rows] = _ranks(scorer, qb, qs, g, g_blocks, kept_scores, block_pq, pos_vals, rows)
            topk[qs : qs + rows] = best_idx.numpy()
            topk_scores[qs : qs + rows] = best_vals.float().numpy()
    return SearchResult(topk=topk, topk_scores=topk_scores, ranks=ranks)


def _ranks(scorer: _Scorer, qb, qs, g, g_blocks, kept_scores, block_pq, pos_vals, rows) -> np.ndarray:
    """Rank of each query's best positive: the items scoring at least as high, minus the positives
    among them (ties with a negative count against the model); -1 where there is no positive."""
    best = torch.full((rows,), float("-inf"), dtype=torch.float64)
    best.scatter_reduce_(0, block_pq, pos_vals, reduce="amax")
    lo, hi = scorer.bounds(best)
    at_least = torch.zeros(rows, dtype=torch.int64)
    for gs, ge in g_blocks:
        scores = kept_scores if kept_scores is not None else qb @ g[gs:ge].T
        if scorer.exact:
            at_least += (scores > hi[:, None]).sum(dim=1)
            r, c = torch.nonzero((scores >= lo[:, None]) & (scores <= hi[:, None]), as_tuple=True)
            decided = scorer.cells(scores, qs, gs, r, c) >= best[r]
            at_least += torch.bincount(r[decided], minlength=rows)
        else:
            at_least += (scores >= best.float()[:, None]).sum(dim=1)
    positives_at_least = torch.bincount(block_pq[pos_vals >= best[block_pq]], minlength=rows)
    return torch.where(torch.isfinite(best), at_least - positives_at_least, -1).numpy()


def nanmean(values: np.ndarray) -> float:
    """Mean ignoring NaN; NaN (not a warning) when nothing is left."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
