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
    # chatter after a closing quote never reaches step 2
    ('"A dog sprints along the shore." Hope it helps.', "A dog sprints along the shore."),
    ('"A dog sprints along the shore". Hope it helps!', "A dog sprints along the shore."),
    ("\u201cA dog sprints along the shore.\u201d I hope this is what you wanted.", "A dog sprints along the shore."),
    ('Here is the paraphrase: "A canine runs by the sea." Let me know if you need more.', "A canine runs by the sea."),
    # a quote that is part of the sentence stays
    ('"Stop" sign on a pole.', '"Stop" sign on a pole.'),
    ('"Happy Birthday" banner on a wall.', '"Happy Birthday" banner on a wall.'),
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


@pytest.mark.parametrize("preset, reply", [
    ("paper", 'Paraphrase the given caption "a man riding a bike" concisely while preserving the meaning.'),
    ("paper", 'Paraphrase the given text "A guy cycles." concisely while preserving the meaning and avoiding use '
              'of existing words.'),
    ("small-model", "Rewrite this caption: a man riding a bike"),
    ("small-model", "Rewrite this sentence using different words than it uses, keeping the meaning: A guy cycles."),
    ("small-model", "You rewrite image captions."),
])
def test_a_reply_that_repeats_the_instruction_is_rejected(preset, reply):
    from paraclip.paraphrase.prompts import PRESETS

    instructions = PRESETS.get(preset).instructions()
    assert rejection_reason(clean(reply), ["a man riding a bike"], 64, instructions) == "repeats the instruction prompt"


def test_ordinary_paraphrases_do_not_count_as_echoes():
    from paraclip.paraphrase.prompts import PRESETS

    for preset in ("paper", "small-model"):
        instructions = PRESETS.get(preset).instructions()
        for reply in ("A person cycles along an urban road.", "A man pedals through town, preserving his balance.",
                      "A cyclist rides a bike in the city, keeping the meaning of the day."):
            assert rejection_reason(reply, ["a man riding a bike"], 64, instructions) is None
