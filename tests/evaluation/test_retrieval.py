"""Zero-shot retrieval R@k: constructed embeddings and CLIP_benchmark's definition as reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paraclip.data.galleries import folder_gallery
from paraclip.evaluation.retrieval import RetrievalEvaluator
from paraclip.features import FeatureCache


def clip_benchmark_recall(scores: torch.Tensor, positive: torch.Tensor, k: int) -> float:
    """CLIP_benchmark's recall@k: top-k indices, a hit when any positive is among them."""
    topk = torch.topk(scores, k, dim=1).indices
    hits = positive.gather(1, topk).any(dim=1)
    return 100.0 * hits.float().mean().item()


def test_constructed_embeddings(colour_gallery_dir, colour_encoder, tmp_path):
    gallery = folder_gallery(colour_gallery_dir)
    ev = RetrievalEvaluator(gallery, recall_ks=(1, 3, 5), feature_cache=FeatureCache(tmp_path, "c"))
    m = ev(colour_encoder)
    # each caption names its colour; 3 shades per colour -> its image is always in the top 3, not always first
    assert m["t2i_R@3"] == 100.0
    assert 100.0 / 3 - 1e-9 <= m["t2i_R@1"] <= 100.0
    # image -> text: every caption of the same colour is equally good, so the own captions tie with
    # the 4 captions of the other two shades; ties count against the model -> rank 4 for every image
    assert m["i2t_R@1"] == 0.0 and m["i2t_R@3"] == 0.0 and m["i2t_R@5"] == 100.0


def test_matches_clip_benchmark_definition(colour_gallery_dir, tiny_encoder, tmp_path):
    gallery = folder_gallery(colour_gallery_dir)
    cache = FeatureCache(tmp_path, "tiny")
    ev = RetrievalEvaluator(gallery, feature_cache=cache)
    result = ev.evaluate(tiny_encoder)
    feats = gallery.embed(tiny_encoder, cache=cache)
    texts = [c for caps in gallery.captions for c in caps]
    text_image = torch.tensor([n for n, caps in enumerate(gallery.captions) for _ in caps])
    scores = tiny_encoder.encode_text(texts) @ feats.features.T
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(texts)), text_image] = True
    for k in (1, 5, 10):
        assert result.metrics[f"t2i_R@{k}"] == pytest.approx(clip_benchmark_recall(scores, positive, k), abs=1e-4)
        assert result.metrics[f"i2t_R@{k}"] == pytest.approx(clip_benchmark_recall(scores.T, positive.T, k), abs=1e-4)
    assert result.details["items"]["t2i_rank"][0].__len__() == 2  # two captions per image


def test_resampling_is_per_image():
    ev = RetrievalEvaluator.__new__(RetrievalEvaluator)
    ev.recall_ks = [1]
    items = {"i2t_rank": np.array([0, 3]), "t2i_rank": np.array([[0, 2, -1], [0, -1, -1]])}
    assert ev.metrics(items) == {"t2i_R@1": pytest.approx(200 / 3), "i2t_R@1": 50.0}
    # image 0 twice: its two captions count twice, the padding never
    assert ev.metrics(items, np.array([0, 0])) == {"t2i_R@1": 50.0, "i2t_R@1": 100.0}
