import pytest

from paraclip.paraphrase.postprocess import clean, is_copy, normalize, rejection_reason


@pytest.mark.parametrize("raw, expected", [
    ('"A dog sprints along the shore."', "A dog sprints along the shore."),
    ("\u201cA dog sprints along the shore.\u201d", "A dog sprints along the shore."),
    ('"A dog sprints along the shore".', "A dog sprints along the shore."),
    ("Paraphrase: A dog sprints along the shore.", "A dog sprints along the shore."),
    ("Paraphrased caption: A dog sprints.", "A dog sprints."),
    ("Here is a concise paraphrase:\n\n\"A dog sprints along the shore.\"", "A dog sprints along the shore."),
    ("Sure! Here's a paraphrase: A dog sprints.", "A dog sprints."),
    ("A dog sprints along the shore. This keeps the meaning.", "A dog sprints along the shore."),
    ("A dog sprints along the shore\nNote: I changed words.", "A dog sprints along the shore"),
    ("**A dog sprints along the shore.**", "A dog sprints along the shore."),
    ("- A dog sprints along the shore.", "A dog sprints along the shore."),
    ("Mr. Smith walks his dog in the park.", "Mr. Smith walks his dog in the park."),
    ("The dog's ball is on the sand.", "The dog's ball is on the sand."),
    ("   ", ""),
    (None, ""),
])
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_copy_ignores_case_and_punctuation():
    assert is_copy("A dog, running on the BEACH!", "a dog running on the beach")
    assert not is_copy("A dog running on the sand", "a dog running on the beach")
    assert normalize("  Hello,   World!! ") == "hello world"


def test_rejection_reasons():
    src = "a dog running on the beach"
    assert rejection_reason("", [src]) == "empty output"
    assert rejection_reason("...", [src]) == "empty output"
    assert rejection_reason("A dog running on the beach.", [src]) == "copy of the input"
    assert rejection_reason("A Dog Running On The Beach", ["A canine jogs by the sea.", src]) == "copy of the caption"
    assert rejection_reason("I'm sorry, I can't help with that.", [src]) == "refusal"
    assert rejection_reason("word " * 70, [src], max_words=64).startswith("too long")
    assert rejection_reason("A canine sprints along the shore.", [src]) is None
