"""Paraphrased retrieval: do a query and its paraphrase retrieve the same images?

Protocol of Cheng et al. (2024), as used by ParaCLIP (Kim et al., 2024, Table 1): for each
pair (query q, paraphrase p) rank the gallery for both and compare the top-k lists with
average overlap AO@k and Jaccard similarity JS@k (k = 10 in the paper). When the pair's true
image is known we also report R@k for q and for p. All values are percentages (×100), as in
the paper's tables.

Pairs come from a CSV/TSV/JSONL file (``original, paraphrase[, image_id]``; the output of
``paraclip paraphrase`` — ``caption, paraphrase_1, paraphrase_2, image_id, status`` — is read
directly) or from any paraphrasing function applied to a gallery's captions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from paraclip.data.galleries import Gallery, pick_field
from paraclip.data.tables import iter_table
from paraclip.errors import DataError
from paraclip.evaluation.base import Evaluator, ItemScores, select
from paraclip.evaluation.metrics import DEFAULT_MEMORY_BUDGET_MB, gallery_search, nanmean, rank_similarity, recall_hits
from paraclip.paraphrase.records import normalise_status

PAPER_K = (10,)  # ParaCLIP Table 1 reports AO@10 and JS@10
RECALL_KS = (1, 5, 10)

ORIGINAL_FIELDS = ("original", "query", "caption", "sentence1", "text")
PARAPHRASE_FIELDS = ("paraphrase", "paraphrase_1", "sentence2")
ID_FIELDS = ("image_id", "image", "id")


@dataclass
class ParaphrasePairs:
    """Queries and their paraphrases, with the true image id where known ('' = unknown)."""

    originals: list[str]
    paraphrases: list[str]
    image_ids: list[str] = field(default_factory=list)
    source: str = ""
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count of records not used

    def __post_init__(self):
        if not self.image_ids:
            self.image_ids = [""] * len(self.originals)
        if not (len(self.originals) == len(self.paraphrases) == len(self.image_ids)):
            raise ValueError("originals, paraphrases and image_ids must have the same length")

    def __len__(self) -> int:
        return len(self.originals)

    def notes(self) -> list[str]:
        """One-line remarks for people: records not used, and pairs that repeat an earlier one."""
        out = [f"{n} records of {self.source} not used ({reason})" for reason, n in self.dropped.items() if n]
        triples = list(zip(self.originals, self.paraphrases, self.image_ids))
        repeated = len(triples) - len(set(triples))
        if repeated:
            out.append(f"{repeated} of the {len(triples)} pairs in {self.source} repeat an earlier pair; all are "
                       f"scored (remove the repeats if they were not meant)")
        return out


def load_pairs(path: str | os.PathLike, paraphrase_field: str | None = None) -> ParaphrasePairs:
    """Read pairs from CSV/TSV/JSONL. Records whose ``status`` is not ``ok`` (failed, or filtered by a
    check; see :mod:`paraclip.paraphrase.records`) or whose paraphrase is empty are counted in
    ``dropped``, not used."""
    path = Path(path)
    originals, paraphrases, ids = [], [], []
    dropped: dict[str, int] = {}
    fields = None
    for line_no, record in iter_table(path):
        if fields is None:
            para = pick_field(record, [paraphrase_field] if paraphrase_field else PARAPHRASE_FIELDS)
            fields = (pick_field(record, ORIGINAL_FIELDS), para, pick_field(record, ID_FIELDS),
                      pick_field(record, ("status",)))
            for got, want in zip(fields[:2], ([ORIGINAL_FIELDS, [paraphrase_field] if paraphrase_field else PARAPHRASE_FIELDS])):
                if got is None:
                    found = ", ".join(record)
                    raise DataError(f"{path}:{line_no}: no {want[0]!r} field (accepted: {', '.join(want)}); "
                                    f"found {found}.", file_text=[found])
        orig_f, para_f, id_f, status_f = fields
        status = normalise_status((record.get(status_f) or "").strip() or "ok") if status_f else "ok"
        original, paraphrase = (record.get(orig_f) or "").strip(), (record.get(para_f) or "").strip()
        if status != "ok":  # failed, or filtered by a check (legacy "error" / "rejected" read as those)
            dropped[f"status {status}"] = dropped.get(f"status {status}", 0) + 1
            continue
        if not original:
            raise DataError(f"{path}:{line_no}: field {orig_f!r} is empty.")
        if not paraphrase:
            dropped["empty paraphrase"] = dropped.get("empty paraphrase", 0) + 1
            continue
        originals.append(original)
        paraphrases.append(paraphrase)
        ids.append((record.get(id_f) or "").strip() if id_f else "")
    if not originals:
        raise DataError(f"{path}: no usable (original, paraphrase) pairs"
                        + (f" ({', '.join(f'{n} {r}' for r, n in dropped.items())})." if dropped else "."))
    return ParaphrasePairs(originals, paraphrases, ids, source=str(path), dropped=dropped)


def pairs_from_gallery(gallery: Gallery, paraphrase: Callable[[list[str]], list[str]],
                       limit: int | None = None) -> ParaphrasePairs:
    """Pairs made by applying ``paraphrase`` (list of captions -> list of paraphrases, e.g. the
    paraphrasing engine) to the first caption of each gallery image."""
    ids = gallery.ids[:limit] if limit else list(gallery.ids)
    originals = [gallery.caption_of(i) for i in ids]
    outputs = list(paraphrase(originals))
    if len(outputs) != len(originals):
        raise DataError(f"the paraphraser returned {len(outputs)} texts for {len(originals)} captions.")
    keep = [n for n, p in enumerate(outputs) if p and p.strip()]
    dropped = {"empty paraphrase": len(originals) - len(keep)} if len(keep) < len(originals) else {}
    return ParaphrasePairs([originals[n] for n in keep], [outputs[n].strip() for n in keep], [ids[n] for n in keep],
                           source=f"paraphrased captions of {gallery.name}", dropped=dropped)


class ParaphrasedRetrievalEvaluator(Evaluator):
    """AO@k and JS@k between the gallery rankings of each query and its paraphrase (×100), plus
    R@k for both when the true image is in the gallery.

    Per-item arrays: ``AO@k``/``JS@k`` per pair (fractions), ``rank_q``/``rank_p`` (rank of the
    true image; -1 when unknown).
    """

    name = "paraphrased-retrieval"
    primary_metric = "AO@10"

    def __init__(self, pairs: ParaphrasePairs, gallery: Gallery, ks: Sequence[int] = PAPER_K,
                 recall_ks: Sequence[int] = RECALL_KS, feature_cache=None,
                 memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB, name: str | None = None):
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive integers, got {list(ks)}")
        self.pairs, self.gallery = pairs, gallery
        self.ks, self.recall_ks = sorted(set(int(k) for k in ks)), sorted(set(int(k) for k in recall_ks))
        self.feature_cache = feature_cache
        self.memory_budget_mb = memory_budget_mb
        self.name = name or self.name
        self.primary_metric = f"AO@{10 if 10 in self.ks else self.ks[0]}"
        self.source = f"{pairs.source}; {gallery.source}"
        self.data_notes = pairs.notes()
        if len(gallery.ids) < max(self.ks):
            raise DataError(f"gallery {gallery.name!r} has {len(gallery.ids)} images, fewer than k={max(self.ks)}: "
                            f"AO@k/JS@k compare the top k images. Use a larger gallery (or --gallery-limit) or a "
                            f"smaller --k.")
        gallery_ids = set(gallery.ids)
        known = sum(1 for i in pairs.image_ids if i)
        missing = [i for i in pairs.image_ids if i and i not in gallery_ids]
        self.has_true_images = known > len(missing)
        if known and not self.has_true_images:
            raise DataError(f"none of the image ids in {pairs.source} are in gallery {gallery.name!r} "
                            f"(e.g. {missing[0]!r} vs gallery ids like {gallery.ids[0]!r}). Use the gallery the pairs "
                            f"were made from, or drop the image_id column to measure rank similarity only.")

    def __len__(self) -> int:
        return len(self.pairs)

    def item_scores(self, encoder) -> ItemScores:
        feats = self.gallery.embed(encoder, cache=self.feature_cache)
        if len(feats.ids) < max(self.ks):
            raise DataError(f"gallery {self.gallery.name!r} has {len(feats.ids)} usable images, fewer than "
                            f"k={max(self.ks)}.")
        texts = list(dict.fromkeys(self.pairs.originals + self.pairs.paraphrases))
        row = {t: n for n, t in enumerate(texts)}
        emb = encoder.encode_text(texts)
        q = emb[[row[t] for t in self.pairs.originals]]
        p = emb[[row[t] for t in self.pairs.paraphrases]]
        index = feats.index()
        labels = np.array([index.get(i, -1) if i else -1 for i in self.pairs.image_ids], dtype=np.int64)
        gallery_labels = np.arange(len(feats.ids))
        depth = max(self.ks + self.recall_ks)
        depth = min(depth, len(feats.ids))
        res_q = gallery_search(q, feats.features, depth, labels, gallery_labels, self.memory_budget_mb)
        res_p = gallery_search(p, feats.features, depth, labels, gallery_labels, self.memory_budget_mb)
        items: ItemScores = dict(rank_similarity(res_q.topk, res_p.topk, self.ks))
        items["rank_q"], items["rank_p"] = res_q.ranks, res_p.ranks
        return items

    def metrics(self, items: ItemScores, index: np.ndarray | None = None) -> dict[str, float]:
        items = select(items, index)
        out = {}
        for k in self.ks:
            out[f"AO@{k}"] = 100.0 * float(np.mean(items[f"AO@{k}"]))
            out[f"JS@{k}"] = 100.0 * float(np.mean(items[f"JS@{k}"]))
        if self.has_true_images:
            for k in self.recall_ks:
                out[f"q_R@{k}"] = 100.0 * nanmean(recall_hits(items["rank_q"], k))
                out[f"p_R@{k}"] = 100.0 * nanmean(recall_hits(items["rank_p"], k))
        return out


__all__ = ["PAPER_K", "ParaphrasePairs", "ParaphrasedRetrievalEvaluator", "load_pairs", "pairs_from_gallery"]
