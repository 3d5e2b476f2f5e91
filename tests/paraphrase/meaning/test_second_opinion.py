"""The targeted second opinion on flagged word swaps: which flags it asks about, its request, its parser, the
cascade with a fake backend, and the reply cache (README: "Meaning-change flags")."""

import json

import pytest

from paraclip.paraphrase.backends.base import Completion
from paraclip.paraphrase.meaning import second_opinion as so
from paraclip.paraphrase.meaning.rules import MeaningCheck


def test_only_flags_made_of_object_or_action_swaps_are_asked_about():
    found = so.swaps(MeaningCheck(True, ("object basket -> hamper", "action brush -> wash")))
    assert [(s.kind, s.old, s.new) for s in found] == [("object", "basket", "hamper"), ("action", "brush", "wash")]
    assert so.swaps(MeaningCheck(True, ("object basket -> hamper", "count two -> three (cat)"))) is None
    assert so.swaps(MeaningCheck(True, ("coffee mug dropped",))) is None
    assert so.swaps(MeaningCheck(True, ("old -> young (man)",))) is None  # attributes keep the rule's flag
    assert so.swaps(MeaningCheck(False)) is None


def test_the_wordnet_gate_keeps_narrower_and_sister_words_without_a_question():
    assert so.known_narrower(so.Swap("object", "dog", "puppy", ""))
    assert so.known_narrower(so.Swap("object", "sheep", "goat", ""))
    assert so.known_narrower(so.Swap("object", "dog", "pup", ""))  # a young animal adds the age
    assert not so.known_narrower(so.Swap("object", "wedding cake", "marriage dessert", ""))
    assert so.questions(MeaningCheck(True, ("object dog -> puppy",))) is None
    assert so.questions(MeaningCheck(True, ("object dog -> puppy",)), gate=False)


def test_request_asks_about_the_pair_only_with_greedy_decoding():
    request = so.pair_request(so.Swap("object", "basket", "hamper", "object basket -> hamper"))
    assert request.temperature == 0.0 and request.max_tokens <= 4
    assert request.messages[0][0] == "system" and "yes or no" in request.messages[0][1]
    assert request.messages[-1] == ("user", 'In a photo, could you call any basket "a hamper"?')
    action = so.pair_request(so.Swap("action", "ride", "pedal", "action ride -> pedal"), "pair-every-v1")
    assert action.messages[-1][1] == "Is everyone who is riding also pedaling?"


@pytest.mark.parametrize("reply, same", [("Yes", True), ("yes.", True), ("No.", False), (" no", False),
                                         ("Maybe", None), ("", None), (None, None)])
def test_parse_same(reply, same):
    assert so.parse_same(reply) is same


class FakeBackend:
    """Answers "yes" for the words in ``same``, "no" otherwise; records what it was asked."""

    def __init__(self, same=(), fail=()):
        self.same, self.fail, self.asked = set(same), set(fail), []

    def generate(self, requests, should_stop=None):
        out = []
        for r in requests:
            question = r.messages[-1][1]
            self.asked.append(question)
            if any(w in question for w in self.fail):
                out.append(Completion(None, error="timeout"))
            else:
                out.append(Completion("Yes" if any(f'"a {w}"' in question for w in self.same) else "No"))
        return out


def test_cascade_clears_a_flag_only_when_every_swap_is_the_same_thing():
    check = MeaningCheck(True, ("object wedding cake -> marriage dessert", "object bus stop -> transit shelter"))
    both = FakeBackend(same={"marriage dessert", "transit shelter"})
    cleared = so.second_opinion(check, so.backend_asker(both))
    assert not cleared.changed and cleared.reasons == ("cleared: object wedding cake -> marriage dessert",
                                                      "cleared: object bus stop -> transit shelter")
    assert len(both.asked) == 2
    assert so.second_opinion(check, so.backend_asker(FakeBackend(same={"marriage dessert"}))) == check
    # a failed request keeps the flag
    assert so.second_opinion(check, so.backend_asker(FakeBackend(same={"marriage dessert", "transit shelter"},
                                                                 fail={"transit"}))) == check
    # WordNet knows a puppy is a narrower dog: no question, the flag stands
    narrower = MeaningCheck(True, ("object dog -> puppy",))
    assert so.second_opinion(narrower, so.backend_asker(FakeBackend(same={"puppy"}))) == narrower
    assert not so.second_opinion(narrower, so.backend_asker(FakeBackend(same={"puppy"})), gate=False).changed


def test_cascade_never_asks_about_other_reasons():
    backend = FakeBackend(same={"marriage dessert"})
    check = MeaningCheck(True, ("object wedding cake -> marriage dessert", "colour red -> blue"))
    assert so.second_opinion(check, so.backend_asker(backend)) == check
    assert so.second_opinion(MeaningCheck(False), so.backend_asker(backend)) == MeaningCheck(False)
    assert backend.asked == []


def test_reply_cache_replays_by_model_version_and_question(tmp_path):
    path = tmp_path / "pairs.jsonl"
    check = MeaningCheck(True, ("object wedding cake -> marriage dessert",))
    backend = FakeBackend(same={"marriage dessert"})
    cache = so.ReplyCache(path, "fake.gguf")
    assert not so.second_opinion(check, cache.asker(so.backend_asker(backend))).changed
    assert len(backend.asked) == 1
    again = so.ReplyCache(path, "fake.gguf")
    assert not so.second_opinion(check, again.asker()).changed  # no backend: from the file
    assert so.second_opinion(check, so.ReplyCache(path, "other.gguf").asker()) == check  # another model: unanswered
    assert so.second_opinion(check, so.ReplyCache(path, "fake.gguf", "pair-every-v1").asker(), "pair-every-v1") == check
    row = json.loads(path.read_text().splitlines()[0])
    assert row["model"] == "fake.gguf" and row["version"] == so.PAIR_VERSION and row["reply"] == "Yes"
    assert so.all_requests([check, check, MeaningCheck(False)]) == [so.pair_request(so.swaps(check)[0])]
