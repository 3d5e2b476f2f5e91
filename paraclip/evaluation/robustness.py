"""Robustness sweep: one query, N paraphrases of it, and how much each model's top-k list moves.

For every model, the query and each paraphrase search the same gallery; each paraphrase's top-k
list is compared with the query's by AO@k and JS@k (:func:`paraclip.evaluation.metrics.rank_similarity`,
the paraphrased-retrieval protocol; ×100 as in the suite). Per model the sweep reports the mean and the worst (lowest)
value over the N paraphrases — the mean says how stable retrieval is on average, the worst what a
user meets with the unluckiest wording — and the images that stay in every top-k list (the query's
and all paraphrases', at the largest k), in the query's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from paraclip.errors import DataError
from paraclip.evaluation.metrics import DEFAULT_MEMORY_BUDGET_MB, gallery_search, rank_similarity

SUMMARY_COLUMNS = ["model", "metric", "mean", "worst", "worst_paraphrase", "n"]
PER_PARAPHRASE_COLUMNS = ["model", "paraphrase", "metric", "value"]


@dataclass
class RobustnessSweep:
    """``per_paraphrase`` (model, paraphrase, metric, value), ``summary`` (model, metric, mean, worst, …),
    ``stable`` (model -> image ids in every top-k list) and ``topk`` (model -> {text: image ids})."""

    query: str
    paraphrases: list[str]
    ks: tuple[int, ...]
    per_paraphrase: Any  # pandas DataFrame
    summary: Any  # pandas DataFrame
    stable: dict[str, list[str]] = field(default_factory=dict)
    topk: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _clean_texts(query: str, paraphrases: Sequence[str]) -> tuple[str, list[str]]:
    query = (query or "").strip()
    if not query:
        raise DataError("the robustness sweep needs a query (the text whose paraphrases are compared).")
    kept = list(dict.fromkeys(p.strip() for p in paraphrases if p and p.strip() and p.strip() != query))
    if not kept:
        raise DataError("the robustness sweep needs at least one paraphrase that differs from the query.")
    return query, kept


def _as_models(models: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    if isinstance(models, Mapping):
        return dict(models)
    named: dict[str, Any] = {}
    for encoder in models:
        label = getattr(encoder, "name", "model")
        if label in named:
            raise DataError(f"model {label!r} is listed twice; pass a dict {{label: encoder}} to name them apart.")
        named[label] = encoder
    return named


def robustness_sweep(models: Mapping[str, Any] | Sequence[Any], query: str, paraphrases: Sequence[str], gallery,
                     ks: Sequence[int] = (10,), feature_cache=None,
                     memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
                     features: Mapping[str, Any] | None = None) -> RobustnessSweep:
    """Compare each paraphrase's top-k list with the query's, per model (see the module docstring).

    ``models``: encoders (labelled by their ``name``) or a dict ``{label: encoder}``; ``gallery``: a
    :class:`~paraclip.data.galleries.Gallery`. ``features`` may hold a model's gallery embeddings
    already computed (``{label: object with .ids and .features}``, e.g. a
    :class:`~paraclip.data.galleries.GalleryFeatures`). Exact duplicates of the query are dropped.
    """
    import pandas as pd

    query, kept = _clean_texts(query, paraphrases)
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise DataError(f"k values must be whole numbers >= 1 (got {list(ks)}).")
    named = _as_models(models)
    rows, summary, stable, topk = [], [], {}, {}
    for label, encoder in named.items():
        feats = (features or {}).get(label) or gallery.embed(encoder, cache=feature_cache)
        if len(feats.ids) < ks[-1]:
            raise DataError(f"k={ks[-1]} is larger than the {len(feats.ids)} usable images of gallery "
                            f"{getattr(gallery, 'name', '')}; use a smaller k or a larger gallery.")
        texts = encoder.encode_text([query, *kept])
        found = gallery_search(texts, feats.features, ks[-1], memory_budget_mb=memory_budget_mb).topk
        lists = np.asarray(found)
        sims = rank_similarity(np.repeat(lists[:1], len(kept), axis=0), lists[1:], ks)
        for metric, fractions in sims.items():
            values = 100.0 * fractions  # ×100 like the suite's scores
            for text, value in zip(kept, values):
                rows.append({"model": label, "paraphrase": text, "metric": metric, "value": float(value)})
            worst = int(np.argmin(values))
            summary.append({"model": label, "metric": metric, "mean": float(np.mean(values)),
                            "worst": float(values[worst]), "worst_paraphrase": kept[worst], "n": len(kept)})
        in_all = set(lists[0]).intersection(*map(set, lists[1:]))
        stable[label] = [feats.ids[i] for i in lists[0] if i in in_all]
        topk[label] = {text: [feats.ids[i] for i in row] for text, row in zip([query, *kept], lists)}
    return RobustnessSweep(query, kept, ks, pd.DataFrame(rows, columns=PER_PARAPHRASE_COLUMNS),
                           pd.DataFrame(summary, columns=SUMMARY_COLUMNS), stable, topk)


__all__ = ["PER_PARAPHRASE_COLUMNS", "SUMMARY_COLUMNS", "RobustnessSweep", "robustness_sweep"]
