"""Zero-shot retrieval on a captioned gallery: text→image and image→text R@1/5/10 (×100).

Recall follows CLIP_benchmark (``clip_benchmark/metrics/zeroshot_retrieval.py``): a query is a
hit when any of its positives is among the top k (for image→text, any of the image's captions;
for text→image, its one image). Ties between a positive and a negative count against the model.

Per-item arrays are per *image*, so that a bootstrap resamples images with all their captions:
``i2t_rank`` (n_images) and ``t2i_rank`` (n_images × most captions per image, -1 = padding).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from paraclip.data.galleries import Gallery
from paraclip.evaluation.base import Evaluator, ItemScores, select
from paraclip.evaluation.metrics import DEFAULT_MEMORY_BUDGET_MB, gallery_search

RECALL_KS = (1, 5, 10)  # as CLIP_benchmark and the CLIP paper report


class RetrievalEvaluator(Evaluator):
    name = "retrieval"
    primary_metric = "t2i_R@1"

    def __init__(self, gallery: Gallery, recall_ks: Sequence[int] = RECALL_KS, feature_cache=None,
                 memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB, name: str | None = None):
        self.gallery = gallery
        self.recall_ks = sorted(set(int(k) for k in recall_ks))
        self.feature_cache = feature_cache
        self.memory_budget_mb = memory_budget_mb
        self.name = name or self.name
        self.primary_metric = f"t2i_R@{self.recall_ks[0]}"
        self.source = gallery.source

    def __len__(self) -> int:
        return len(self.gallery)

    def item_scores(self, encoder) -> ItemScores:
        feats = self.gallery.embed(encoder, cache=self.feature_cache)
        row_of = {image_id: n for n, image_id in enumerate(self.gallery.ids)}
        captions = [self.gallery.captions[row_of[i]] for i in feats.ids]
        texts = [c for caps in captions for c in caps]
        text_image = np.array([n for n, caps in enumerate(captions) for _ in caps], dtype=np.int64)
        unique = list(dict.fromkeys(texts))
        emb = encoder.encode_text(unique)
        position = {t: n for n, t in enumerate(unique)}
        text_emb = emb[[position[t] for t in texts]]
        n_images = len(feats.ids)
        image_labels = np.arange(n_images)

        t2i = gallery_search(text_emb, feats.features, 1, text_image, image_labels, self.memory_budget_mb)
        i2t = gallery_search(feats.features, text_emb, 1, image_labels, text_image, self.memory_budget_mb)
        width = max(len(c) for c in captions)
        t2i_rank = np.full((n_images, width), -1, dtype=np.int64)
        slot = np.concatenate([np.arange(len(c)) for c in captions])
        t2i_rank[text_image, slot] = t2i.ranks
        return {"i2t_rank": i2t.ranks, "t2i_rank": t2i_rank}

    def metrics(self, items: ItemScores, index: np.ndarray | None = None) -> dict[str, float]:
        items = select(items, index)
        t2i = np.asarray(items["t2i_rank"])
        i2t = np.asarray(items["i2t_rank"])
        valid = t2i >= 0
        out = {}
        for k in self.recall_ks:
            out[f"t2i_R@{k}"] = 100.0 * float(((t2i < k) & valid).sum() / max(valid.sum(), 1))
        for k in self.recall_ks:
            out[f"i2t_R@{k}"] = 100.0 * float(np.mean((i2t >= 0) & (i2t < k)))
        return out


__all__ = ["RECALL_KS", "RetrievalEvaluator"]
