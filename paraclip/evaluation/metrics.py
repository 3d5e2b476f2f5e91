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
differ by an ulp between memory budgets, and duplicate images then change places. Scores are
therefore computed exactly: both sides are rounded once to a fixed-point grid (power-of-two
scale, about 21 significant bits for 512-d features; the score changes by ~1e-6) and
multiplied in float64, where every partial sum of such numbers is exact — the same value in
any summation order, hence in any block layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

DEFAULT_MEMORY_BUDGET_MB = 256.0
# Bytes held per cell of a score block: the float64 score plus boolean temporaries.
_BYTES_PER_CELL = 12
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


def exact_operands(queries: torch.Tensor, gallery: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sides rounded to power-of-two fixed-point grids, in float64, such that every dot
    product (and every partial sum of one) is exactly representable: ``q @ g.T`` is then the
    same number whatever the summation order, so scores never depend on how they are blocked."""
    dim = max(1, queries.shape[1])
    # |q_i| < 2^bits and |g_i| < 2^bits in grid units: a sum of dim products stays below 2^53
    bits = (_FLOAT64_MANTISSA_BITS - math.ceil(math.log2(dim)) - 1) // 2

    def grid(x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        peak = float(x.abs().max()) if x.numel() else 0.0
        exponent = math.frexp(peak)[1] if peak > 0 else 0  # peak < 2^exponent
        scale = 2.0 ** (bits - exponent)
        return torch.round(x * scale) / scale  # both factors are powers of two: exact

    return grid(queries), grid(gallery)


def _sorted_by_score_then_index(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's candidates ordered by (score desc, index asc)."""
    idx, by_index = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, by_index)
    vals, by_score = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, torch.gather(idx, 1, by_score)


def _block_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k columns per row by (score desc, column asc): where more columns tie with the k-th
    score than fit, the lowest columns are kept (``torch.topk`` picks among ties arbitrarily)."""
    vals, idx = torch.topk(scores, k, dim=1)
    kth = vals[:, -1:]
    room = k - (scores > kth).sum(dim=1)
    tied = scores == kth
    overflow = torch.nonzero(tied.sum(dim=1) > room).flatten()
    if overflow.numel():
        sub_tied = tied[overflow]
        keep = (scores[overflow] > kth[overflow]) | (sub_tied & (sub_tied.cumsum(dim=1) <= room[overflow, None]))
        cols = torch.nonzero(keep)[:, 1].view(-1, k)  # row-major: each row's k columns, ascending
        idx[overflow] = cols
        vals[overflow] = torch.gather(scores[overflow], 1, cols)
    return _sorted_by_score_then_index(vals, idx)


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
    top-k lists are merged across gallery blocks. Ties are ranked by gallery index, and scores
    are exact (see the module docstring), so the result does not depend on the memory budget.
    ``exact=False`` scores in float32 instead (faster; ties still go to the lower index, but
    scores an ulp apart between blocks can then reorder near-duplicates). Positives are handled as a sparse list of
    (query, item) pairs read from the same score blocks, so ranks cost one comparison pass.
    """
    q = torch.as_tensor(np.asarray(queries) if not torch.is_tensor(queries) else queries).float()
    g = torch.as_tensor(np.asarray(gallery) if not torch.is_tensor(gallery) else gallery).float()
    if exact:
        q, g = exact_operands(q, g)
    n_q, n_g = q.shape[0], g.shape[0]
    if n_g == 0:
        raise ValueError("the gallery is empty")
    k = min(k, n_g)
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
    neg_inf = float("-inf")
    with torch.inference_mode():
        for qs in range(0, n_q, q_rows):
            qb = q[qs : qs + q_rows]
            rows = qb.shape[0]
            best_vals = best_idx = None
            if with_ranks:
                lo, hi = torch.searchsorted(pair_q, torch.tensor([qs, qs + rows])).tolist()
                block_pq, block_pg = pair_q[lo:hi] - qs, pair_g[lo:hi]
                best_pos = torch.full((rows,), neg_inf, dtype=q.dtype)
            kept_scores = None
            for gs, ge in g_blocks:
                scores = qb @ g[gs:ge].T
                vals, idx = _block_topk(scores, min(k, ge - gs))
                idx = idx + gs
                if best_vals is None:
                    best_vals, best_idx = vals, idx
                else:
                    best_vals, best_idx = _sorted_by_score_then_index(torch.cat([best_vals, vals], dim=1),
                                                                      torch.cat([best_idx, idx], dim=1))
                    best_vals, best_idx = best_vals[:, :k], best_idx[:, :k]
                if with_ranks:
                    inside = (block_pg >= gs) & (block_pg < ge)
                    pos_scores = scores[block_pq[inside], block_pg[inside] - gs]
                    best_pos.scatter_reduce_(0, block_pq[inside], pos_scores, reduce="amax")
                    if len(g_blocks) == 1:
                        kept_scores = scores
            if with_ranks:
                # rank = items scoring at least as high as the best positive, minus the positives
                # among them: ties with a negative count against the model
                at_least = torch.zeros(rows, dtype=torch.int64)
                positives_at_least = torch.zeros(rows, dtype=torch.int64)
                for gs, ge in g_blocks:
                    scores = kept_scores if kept_scores is not None else qb @ g[gs:ge].T
                    at_least += (scores >= best_pos[:, None]).sum(dim=1)
                    inside = (block_pg >= gs) & (block_pg < ge)
                    hit = scores[block_pq[inside], block_pg[inside] - gs] >= best_pos[block_pq[inside]]
                    positives_at_least += torch.bincount(block_pq[inside][hit], minlength=rows)
                has_positive = torch.isfinite(best_pos)
                ranks[qs : qs + rows] = torch.where(has_positive, at_least - positives_at_least, -1).numpy()
            topk[qs : qs + rows] = best_idx.numpy()
            topk_scores[qs : qs + rows] = best_vals.float().numpy()
    return SearchResult(topk=topk, topk_scores=topk_scores, ranks=ranks)


def nanmean(values: np.ndarray) -> float:
    """Mean ignoring NaN; NaN (not a warning) when nothing is left."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
