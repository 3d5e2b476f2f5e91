"""Coverage notes: a benchmark outside a model's training text is called out in Compare."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from paraclip.training.checkpoint import final_checkpoint
from workbench.defaults import ModelChoice
from workbench.vocabulary import coverage_notes, model_vocabulary

STS = SimpleNamespace(name="STSB", pairs=SimpleNamespace(
    sentences1=["A man is playing a guitar on stage.", "The stock market fell sharply today."],
    sentences2=["Someone plays music for a crowd.", "Shares dropped a lot this morning."]))
SCENES = SimpleNamespace(name="paraphrased-retrieval", pairs=SimpleNamespace(
    originals=["two red circles left of a blue square"], paraphrases=["a pair of red circles left of a blue square"]))


def checkpoint(path, data, pretrained):
    meta = {"pretrained": pretrained, "config": {"data": str(data), "pretrained": pretrained}}
    torch.save(final_checkpoint({}, "paraclip-mini", meta), path)
    return str(path)


def test_a_trained_chain_knows_its_words_and_flags_sts(tmp_path):
    base_data = tmp_path / "base.jsonl"
    base_data.write_text(json.dumps({"caption": "two red circles left of a blue square"}) + "\n", encoding="utf-8")
    tuned_data = tmp_path / "tuned.jsonl"
    tuned_data.write_text(json.dumps({"caption": "a blue square", "paraphrase_1": "a pair of circles",
                                      "paraphrase_2": "one azure block"}) + "\n", encoding="utf-8")
    base = checkpoint(tmp_path / "base.pt", base_data, "none")
    tuned = checkpoint(tmp_path / "tuned.pt", tuned_data, base)
    vocab = model_vocabulary(ModelChoice("job tuned", tuned))
    assert {"red", "circles", "azure", "pair"} <= vocab and "guitar" not in vocab
    notes = coverage_notes([ModelChoice("job tuned", tuned)], [STS, SCENES])
    assert len(notes) == 1 and "outside its training vocabulary — STSB (" in notes[0]
    assert "paraphrased-retrieval" not in notes[0]


def test_miniworld_untrained_and_unknown_models():
    mini = ModelChoice("mini-world ParaCLIP", "/nowhere/paraclip.safetensors")
    assert "STSB" in coverage_notes([mini], [STS])[0]
    untrained = ModelChoice("untrained mini seed 0 (fallback)", "paraclip-mini", "/x.pt", kind="fallback")
    assert "untrained (random weights)" in coverage_notes([untrained], [STS])[0]
    assert model_vocabulary(ModelChoice("ViT-B-32@openai", "ViT-B-32", "openai", kind="custom")) is None
    assert coverage_notes([ModelChoice("ViT-B-32@openai", "ViT-B-32", "openai", kind="custom")], [STS]) == []


def test_a_model_fine_tuned_from_pretrained_weights_gets_no_claim(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"caption": "a red circle"}) + "\n", encoding="utf-8")
    path = checkpoint(tmp_path / "ft.pt", data, "openai")
    assert model_vocabulary(ModelChoice("job ft", path)) is None


def test_unknown_words_are_listed_once_in_order():
    from workbench.vocabulary import unknown_words

    vocab = frozenset({"a", "red", "square"})
    assert unknown_words(["a red fire hydrant", "a fire truck"], vocab) == ["fire", "hydrant", "truck"]
    assert unknown_words(["A RED square."], vocab) == []


def test_explore_warns_when_a_query_is_outside_the_demo_models_vocabulary(services):
    from workbench import explore

    page, *_ = explore.explore(services, None, None, None, explore.EXAMPLE_QUERY, explore.EXAMPLE_PARAPHRASE, 5)
    assert page.count('class="pc-panel"') == 2 and "pc-warn" not in page  # the example is in vocabulary
    page, *_ = explore.explore(services, None, None, None, "a fire hydrant on a city sidewalk",
                               "a red hydrant by the street", 5)
    assert page.count("class='pc-warn'") == 1 and "Out of vocabulary" in page  # one line for both models
    assert "“fire”, “hydrant”, “city”, “sidewalk”" in page and "“street”" in page
    assert page.count('class="pc-panel"') == 2  # still searched: the warning says how to read it
    untrained = ModelChoice("paraclip-mini (untrained)", "paraclip-mini", None, kind="fallback")
    assert "untrained" in explore.vocabulary_warnings([untrained], ["a red square"])
    pretrained = ModelChoice("ViT-B-32@openai", "ViT-B-32", "openai", kind="custom")
    assert explore.vocabulary_warnings([pretrained], ["a fire hydrant"]) == ""
