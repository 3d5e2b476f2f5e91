"""Paraphrased retrieval: pair files, the evaluator against a brute-force reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paraclip.data.galleries import folder_gallery
from paraclip.errors import DataError
from paraclip.evaluation.paraphrased import (
    ParaphrasedRetrievalEvaluator,
    ParaphrasePairs,
    load_pairs,
    pairs_from_gallery,
)
from paraclip.features import FeatureCache


def test_load_pairs_csv_and_paraphrase_engine_jsonl(tmp_path):
    csv = tmp_path / "pairs.csv"
    csv.write_text('original,paraphrase,image_id\n"a red square","a square that is red",red-0\nhello,hi,\n')
    pairs = load_pairs(csv)
    assert pairs.originals == ["a red square", "hello"]
    assert pairs.image_ids == ["red-0", ""]

    # the JSONL written by `paraclip paraphrase` (the paraphrase record format), with one failed record
    records = [
        {"index": 0, "image_id": "red-0", "caption": "a red square", "paraphrase_1": "a square in red",
         "paraphrase_2": "crimson box", "status": "ok"},
        {"index": 1, "image_id": "blue-0", "caption": "a blue square", "paraphrase_1": "", "paraphrase_2": "",
         "status": "failed", "error": "copy of the input"},
    ]
    jl = tmp_path / "para.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    pairs = load_pairs(jl)
    assert (pairs.originals, pairs.paraphrases, pairs.image_ids) == (["a red square"], ["a square in red"], ["red-0"])
    assert pairs.dropped == {"status failed": 1}
    assert load_pairs(jl, paraphrase_field="paraphrase_2").paraphrases == ["crimson box"]


def test_load_pairs_errors_name_line_and_field(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("query,rewrite\na,b\n")
    with pytest.raises(DataError, match=r"bad.csv:2: no 'paraphrase' field"):
        load_pairs(bad)
    bad.write_text("original,paraphrase\na,b\n,c\n")
    with pytest.raises(DataError, match=r"bad.csv:3: field 'original' is empty"):
        load_pairs(bad)


def _reference(evaluator, encoder, cache, ks):
    """AO/JS/R@k from the full score matrix and Python sets (no shared code with the evaluator)."""
    feats = evaluator.gallery.embed(encoder, cache=cache)
    images = feats.features.numpy()
    q = encoder.encode_text(evaluator.pairs.originals).numpy()
    p = encoder.encode_text(evaluator.pairs.paraphrases).numpy()
    order_q = np.argsort(-(q @ images.T), axis=1, kind="stable")
    order_p = np.argsort(-(p @ images.T), axis=1, kind="stable")
    out = {}
    for k in ks:
        ao = [sum(len(set(a[:d]) & set(b[:d])) / d for d in range(1, k + 1)) / k for a, b in zip(order_q, order_p)]
        js = [len(set(a[:k]) & set(b[:k])) / len(set(a[:k]) | set(b[:k])) for a, b in zip(order_q, order_p)]
        out[f"AO@{k}"], out[f"JS@{k}"] = 100 * np.mean(ao), 100 * np.mean(js)
    truth = [feats.ids.index(i) if i in feats.ids else None for i in evaluator.pairs.image_ids]
    for k in evaluator.recall_ks:
        for tag, order in (("q", order_q), ("p", order_p)):
            hits = [t in list(o[:k]) for t, o in zip(truth, order) if t is not None]
            out[f"{tag}_R@{k}"] = 100 * np.mean(hits)
    return out


def test_evaluator_matches_brute_force(colour_gallery_dir, tiny_encoder, tmp_path):
    gallery = folder_gallery(colour_gallery_dir)
    originals = [f"a {c} square number {s}" for c in ("red", "blue", "green", "black") for s in range(3)]
    paraphrases = [f"one square coloured {o.split()[1]}, the number {o[-1]}" for o in originals]
    ids = [f"{o.split()[1]}-{o[-1]}" for o in originals]
    ids[-1] = ""  # one pair without a known image
    pairs = ParaphrasePairs(originals, paraphrases, ids, source="test")
    cache = FeatureCache(tmp_path, "tiny")
    ev = ParaphrasedRetrievalEvaluator(pairs, gallery, ks=(1, 5, 10), recall_ks=(1, 5), feature_cache=cache)
    result = ev.evaluate(tiny_encoder)
    reference = _reference(ev, tiny_encoder, cache, (1, 5, 10))
    assert set(result.metrics) == set(reference)
    for name, value in reference.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert result.main_metric == "AO@10" and result.n == len(pairs)
    assert result.details["items"]["rank_q"][-1] == -1  # unknown image: no rank


def test_constructed_embeddings_give_known_values(colour_gallery_dir, colour_encoder, tmp_path):
    gallery = folder_gallery(colour_gallery_dir)
    # "red" and "a red thing" embed identically under the colour encoder -> identical rankings
    same = ParaphrasePairs(["red", "blue"], ["a red thing", "blue."], ["red-1", "blue-2"])
    ev = ParaphrasedRetrievalEvaluator(same, gallery, ks=(3, 10), recall_ks=(1, 3),
                                       feature_cache=FeatureCache(tmp_path, "c"))
    m = ev(colour_encoder)
    assert m["AO@10"] == m["JS@10"] == m["AO@3"] == 100.0
    assert m["q_R@3"] == m["p_R@3"] == 100.0  # the 3 shades of the named colour come first
    # red vs green share nothing in the top 3
    apart = ParaphrasePairs(["red"], ["green"], [""])
    m2 = ParaphrasedRetrievalEvaluator(apart, gallery, ks=(3,), feature_cache=FeatureCache(tmp_path, "c"))(colour_encoder)
    assert m2["AO@3"] == 0.0 and m2["JS@3"] == 0.0 and "q_R@1" not in m2


def test_pairs_from_gallery_with_a_case_only_paraphraser(colour_gallery_dir, tiny_encoder, tmp_path):
    # CLIP's tokenizer lower-cases, so an upper-cased caption is the same query: rankings must agree
    gallery = folder_gallery(colour_gallery_dir)
    pairs = pairs_from_gallery(gallery, lambda caps: [c.upper() for c in caps], limit=10)
    assert len(pairs) == 10 and pairs.image_ids == gallery.ids[:10]
    m = ParaphrasedRetrievalEvaluator(pairs, gallery, feature_cache=FeatureCache(tmp_path, "t"))(tiny_encoder)
    assert m["AO@10"] == pytest.approx(100.0) and m["JS@10"] == pytest.approx(100.0)
    assert m["q_R@5"] == m["p_R@5"]


def test_data_mismatches_are_explained(colour_gallery_dir, tiny_encoder, tmp_path):
    gallery = folder_gallery(colour_gallery_dir)
    with pytest.raises(DataError, match="none of the image ids"):
        ParaphrasedRetrievalEvaluator(ParaphrasePairs(["a"], ["b"], ["COCO_123"]), gallery)
    small = gallery.subset(5)
    with pytest.raises(DataError, match="fewer than k=10"):  # found when the task is built, before any encoding
        ParaphrasedRetrievalEvaluator(ParaphrasePairs(["a"], ["b"]), small, feature_cache=FeatureCache(tmp_path, "t"))
    ev = ParaphrasedRetrievalEvaluator(ParaphrasePairs(["a"], ["b"]), small, ks=(5,),
                                       feature_cache=FeatureCache(tmp_path, "t"))
    small.paths[0] = small.paths[0].with_name("gone.png")  # an image that fails to load leaves 4 usable
    with pytest.raises(DataError, match="fewer than k=5"):
        ev(tiny_encoder)
