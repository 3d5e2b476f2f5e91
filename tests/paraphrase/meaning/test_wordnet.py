"""The WordNet knowledge of the meaning-change check: words the hand-written lexicon does not list."""

import pytest

from paraclip.paraphrase.meaning import wordnet
from paraclip.paraphrase.meaning.parse import analyse
from paraclip.paraphrase.meaning.rules import agent_noun, check_meaning


def test_the_extract_ships_and_answers_synonyms_broader_and_narrower_words():
    assert wordnet.available()
    assert wordnet.relation("flower", "bloom") == "synonym"
    assert wordnet.relation("cart", "wagon") == "broader"
    assert wordnet.relation("laptop", "computer") == "broader"
    assert wordnet.relation("dog", "puppy") == "narrower"
    assert wordnet.relation("rain", "downpour") == "intensity"  # a weather word said stronger
    assert wordnet.relation("field", "area") == "scene"
    assert wordnet.relation("bench", "chair") is None  # sisters are other things
    assert wordnet.relation("boy", "man") is None  # a rare sense of "boy" does not make "man" broader
    assert wordnet.is_person("skier") and wordnet.is_place("beach") and not wordnet.is_place("table")


@pytest.mark.parametrize("caption, paraphrase", [
    ("A plate of french fries next to a burger.", "A plate of fries next to a burger."),
    ("A dog running across a grassy field.", "A dog runs across a green area."),
    ("A skateboarder doing a trick on a ramp.", "A skater doing a trick on a ramp."),
    ("Two horses pulling a cart.", "Two horses pull a wagon."),
    ("A vase of yellow flowers.", "A vase of yellow blooms."),
    ("A woman skiing down a slope.", "A skier goes down a slope."),
    ("Two men playing tennis.", "Two players playing tennis."),
    ("Children building a sandcastle on the beach.", "Children building a sandcastle by the beach."),
    ("A bus parked outside a school.", "A bus parked in front of a school."),
])
def test_wordnet_rewordings_keep_the_meaning(caption, paraphrase):
    result = check_meaning(caption, paraphrase)
    assert not result.changed, result.reason


@pytest.mark.parametrize("caption, paraphrase, reason", [
    ("A woman holding an umbrella.", "A woman holding a raincoat.", "umbrella"),
    ("A boy sitting on a bench.", "A man sitting on a bench.", "object boy -> man"),
    ("A sandwich on a plate.", "A burger on a plate.", "burger"),
    ("A kitchen with white cabinets.", "A dining room with white cabinets.", "dining room"),
    ("Two men playing tennis on a clay court.", "Two men playing tennis on a grass court.", "clay -> grass (court)"),
    ("A man riding a horse.", "A skier on a horse.", "object man -> skier"),
    ("A cat under a table.", "A cat by a table.", "relation under -> near (cat / table)"),
])
def test_wordnet_does_not_hide_real_changes(caption, paraphrase, reason):
    result = check_meaning(caption, paraphrase)
    assert result.changed and reason in (result.reason or ""), result.reason


def test_compounds_are_one_noun_but_describing_words_stay_apart():
    assert [p.head for p in analyse("A fire hydrant in a dining room.").phrases] == ["fire hydrant", "dining room"]
    old = analyse("An old woman drinking water.")
    assert old.phrases[0].head == "woman" and "old" in old.phrases[0].adjectives
    assert "drink" in old.verbs()  # "drinking water" after a noun is an action, not a compound
    assert analyse("A white house.").colours() == ["white"]


def test_agent_nouns():
    assert agent_noun("ski", "skier") and agent_noun("ride", "rider") and agent_noun("cycle", "cyclist")
    assert not agent_noun("ride", "skier") and not agent_noun("play", "plate")


def test_the_knobs_switch_wordnet_off():
    saved = dict(wordnet.OPTIONS)
    try:
        wordnet.OPTIONS.update(wordnet=False, compounds=False, plurals=False)
        wordnet.clear_caches()
        assert check_meaning("Two horses pulling a cart.", "Two horses pull a wagon.").changed
    finally:
        wordnet.OPTIONS.update(saved)
        wordnet.clear_caches()
    assert not check_meaning("Two horses pulling a cart.", "Two horses pull a wagon.").changed
