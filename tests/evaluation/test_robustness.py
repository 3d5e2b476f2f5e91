"""The robustness sweep: per-paraphrase AO@k / JS@k against the query's list, mean and worst per model,
and the images that stay in every top-k list."""

from __future__ import annotations

import numpy as np
import pytest

from paraclip.data.galleries import folder_gallery
from paraclip.errors import DataError
from paraclip.evaluation.metrics import gallery_search, rank_similarity
from paraclip.evaluation.robustness import robustness_sweep


@pytest.fixture
def gallery(colour_gallery_dir):
    return folder_gallery(colour_gallery_dir)


def test_sweep_matches_the_metrics_and_finds_the_stable_images(colour_encoder, gallery):
    paraphrases = ["red", "a red square", "red and a bit of orange", "a blue thing", "red"]
    sweep = robustness_sweep([colour_encoder], "the colour red", paraphrases, gallery, ks=(3, 5))
    assert sweep.paraphrases == ["red", "a red square", "red and a bit of orange", "a blue thing"]  # deduplicated

    feats = gallery.embed(colour_encoder)
    lists = gallery_search(colour_encoder.encode_text(["the colour red", *sweep.paraphrases]), feats.features, 5).topk
    expected = rank_similarity(np.repeat(lists[:1], 4, axis=0), lists[1:], (3, 5))
    table = sweep.per_paraphrase.pivot(index="paraphrase", columns="metric", values="value").loc[sweep.paraphrases]
    for metric in ("AO@3", "JS@3", "AO@5", "JS@5"):
        assert np.allclose(table[metric].to_numpy(), 100 * expected[metric])
    summary = sweep.summary.set_index("metric")
    assert summary.loc["AO@5", "mean"] == pytest.approx(100 * expected["AO@5"].mean())
    assert summary.loc["JS@3", "worst"] == pytest.approx(100 * expected["JS@3"].min())
    assert summary.loc["AO@3", "worst_paraphrase"] == "a blue thing" and summary.loc["AO@3", "n"] == 4
    assert table.loc["red", "AO@3"] == pytest.approx(100.0)  # same embedding as the query: same list

    assert sweep.stable["colour-encoder"] == []  # the blue paraphrase shares no image with the red lists
    reds = robustness_sweep({"colours": colour_encoder}, "the colour red", ["red", "a red square"], gallery, ks=(3,))
    assert sorted(reds.stable["colours"]) == ["red-0", "red-1", "red-2"]
    assert reds.topk["colours"]["red"] == reds.topk["colours"]["the colour red"]


def test_bad_input_is_a_clear_error(colour_encoder, gallery):
    with pytest.raises(DataError, match="needs a query"):
        robustness_sweep([colour_encoder], "  ", ["red"], gallery)
    with pytest.raises(DataError, match="at least one paraphrase that differs"):
        robustness_sweep([colour_encoder], "red", ["red", " "], gallery)
    with pytest.raises(DataError, match="k=100 is larger than the 24 usable images"):
        robustness_sweep([colour_encoder], "red", ["crimson"], gallery, ks=(100,))
    with pytest.raises(DataError, match="listed twice"):
        robustness_sweep([colour_encoder, colour_encoder], "red", ["crimson"], gallery)
