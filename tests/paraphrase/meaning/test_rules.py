import json
from pathlib import Path

import pytest

from paraclip.paraphrase import ParaphraseConfig, load_records, make_backend, run_paraphrasing
from paraclip.paraphrase.meaning.rules import check_meaning, drop_if_changed, meaning_signals
from paraclip.paraphrase.meaning.parse import analyse

DATA = Path(__file__).parent.parent / "data" / "meaning"


@pytest.mark.parametrize("caption, paraphrase", [
    ("A cat sleeping on a couch.", "A cat is asleep on a sofa."),
    ("A man riding a horse on the beach.", "A guy rides a horse along the shore."),
    ("Two dogs playing in the snow.", "A pair of dogs play in the snow."),
    ("A boy to the left of a girl.", "A girl to the right of a boy."),
    ("A man eating a sandwich.", "A sandwich being eaten by a man."),
    ("Cars driving down a busy street.", "Vehicles travel along a busy road."),
    ("A photo of a dog sitting on grass.", "A dog sits on the grass."),
    ("A man with a beard wearing glasses.", "A bearded man wearing spectacles."),
])
def test_rewordings_keep_the_meaning(caption, paraphrase):
    result = check_meaning(caption, paraphrase)
    assert not result.changed, result.reason


@pytest.mark.parametrize("caption, paraphrase, reason", [
    ("A red fire hydrant next to the street.", "A red fire truck next to the street.",
     "object fire hydrant -> fire truck"),
    ("A dog catching a frisbee.", "A dog catching a tennis ball.", "object frisbee -> tennis ball"),
    ("A green triangle next to a blue circle.", "A green rectangle next to a blue circle.",
     "object triangle -> rectangle"),
    ("A cat on the mat.", "A mat on the cat.", "relation swapped: cat / mat (on)"),
    ("A dog under a table.", "A dog on a table.", "relation under -> on (dog / table)"),
    ("Two cats on a sofa.", "Three cats on a sofa.", "count two -> three (cat)"),
    ("A dog in the park.", "Two dogs in the park.", "count one -> two (dog)"),
    ("A red bus on the street.", "A blue bus on the street.", "colour red -> blue"),
    ("A black cat on a white chair.", "A white cat on a black chair.", "colour of cat: black -> white"),
    ("A laptop and a coffee mug on a desk.", "A laptop on a desk.", "coffee mug dropped"),
    ("A cat sitting on a car.", "A cat and a dog sitting on a car.", "dog added"),
    ("A dog chasing a cat.", "A cat chasing a dog.", "roles swapped: dog / cat (chase)"),
    ("An old man reading a newspaper.", "A young man reading a newspaper.", "old -> young (man)"),
    ("A tall giraffe near a tree.", "A giraffe near a tall tree.", "tall moved from giraffe to tree"),
    # a material the caption does not give is a change (issue 23 item 6)
    ("A dog sleeping on a bench.", "A dog sleeps on a metal bench.", "metal added (bench)"),
    ("A glass of water on a table.", "A glass of water on a wooden table.", "wood added (table)"),
    ("A bicycle leaning on a wooden fence.", "A bicycle leaning on a concrete fence.", "wood -> concrete (fence)"),
])
def test_meaning_changes_are_flagged_with_their_reason(caption, paraphrase, reason):
    result = check_meaning(caption, paraphrase)
    assert result.changed and reason in result.reasons, result.reasons


# the general fixes made from the errors on the second held-out set's heldout-dev half (README there)
@pytest.mark.parametrize("caption, paraphrase", [
    ("A woman typing at a cafe.", "A woman typing at a café."),  # accents folded
    ("A bride and groom cutting a wedding cake.", "A couple cuts a wedding cake."),  # collective noun: two people
    ("Three people sitting on a bench.", "A trio sits on a bench."),
    ("A bride and groom cutting a cake.", "Newlyweds cut a cake."),  # a plural person noun covers both
    ("A basket of laundry on a bed.", "A laundry basket on a bed."),  # compound order flips
    ("A large pizza with pepperoni and olives.", "A large pepperoni and olive pizza."),  # olive is no colour here
    ("A cow lying in the shade of a tree.", "A cow rests under a tree."),  # multiword relation
    ("A street lamp on a corner.", "A street light on a corner."),  # WordNet writes it "streetlight"
    ("Three horses standing in a muddy field.", "Three horses stand on muddy ground."),  # vague place word
    ("Two girls sitting on a bench.", "Two young ladies sit on a bench."),  # describing word + noun = one noun
    ("A woman walking a dog across a snowy park.", "A woman walks a dog through a snow-covered park."),
    ("Four children running through a sprinkler.", "Four children frolic in a sprinkler."),  # playing: broader
    ("Four children running through a sprinkler.", "Four kids play in a sprinkler."),
    ("A row of motorcycles parked along a street.", "A line of motorbikes parked along a street."),  # framing
    ("A desk with two monitors and a keyboard.", "A desk with two monitors plus a keyboard."),  # conjunction
])
def test_heldout_dev_fixes_keep_rewordings_unflagged(caption, paraphrase):
    result = check_meaning(caption, paraphrase)
    assert not result.changed, result.reason


@pytest.mark.parametrize("caption, paraphrase, reason", [
    ("A man and a woman sitting on a bench.", "A trio sits on a bench.", "count two -> three (person)"),
    ("A bowl of oranges on a table.", "An orange bowl on a table.", "colour orange added"),  # after an article
    ("A bride and groom cutting a cake.", "A couple cuts a pie.", "object cake -> pie"),
    ("Four children running through a sprinkler.", "Four children sleep in a sprinkler.", "action run -> sleep"),
])
def test_heldout_dev_fixes_still_flag_the_changes_next_to_them(caption, paraphrase, reason):
    result = check_meaning(caption, paraphrase)
    assert result.changed and reason in result.reasons, result.reasons


def test_parser_reads_collectives_coordinated_modifiers_and_participles():
    assert [(p.head, p.count) for p in analyse("A couple cuts a wedding cake.").phrases] == [
        ("person", 2), ("wedding cake", None)]
    pizza = analyse("A large pepperoni and olive pizza.", frozenset({"olive"})).phrases
    assert [(p.head, p.modifiers, sorted(p.adjectives)) for p in pizza] == [("pizza", ("pepperoni", "olive"), ["large"])]
    assert analyse("A large pepperoni and olive pizza.").colours() == ["green"]  # without the caption's olives
    bananas = analyse("A bowl of milk and sliced bananas.").phrases
    assert [(p.head, sorted(p.adjectives)) for p in bananas][-1] == ("banana", ["slice"])


def test_parser_reads_phrases_relations_and_passives():
    a = analyse("A black and white cat sitting on a laptop keyboard.")
    assert [(p.text, sorted(p.colours)) for p in a.phrases] == [("cat", ["black", "white"]), ("laptop keyboard", [])]
    assert a.relations == [(0, "on", 1)]
    passive = analyse("A sandwich being eaten by a man.")
    assert passive.actions == [(1, "eat", 0)]  # the man eats the sandwich
    assert analyse("A pair of scissors on top of a notebook.").phrases[0].count == 2


def test_signals_compare_both_steps_with_the_caption():
    q = meaning_signals("A dog catching a frisbee in a park.", "A dog catches a disc in a park.",
                        "A canine grabs a tennis ball in a garden.")
    assert q["meaning_changed_1"] is False and q["meaning_reason_1"] is None
    assert q["meaning_changed_2"] is True and "tennis ball" in q["meaning_reason_2"]
    assert q["meaning_changed"] is True
    missing = meaning_signals("A dog in a park.", None, None)
    assert missing["meaning_changed"] is False and missing["meaning_changed_1"] is None


def test_drop_if_changed_marks_ok_records_and_computes_missing_flags():
    old = {"caption": "A dog under a table.", "paraphrase_1": "A dog on a table.", "paraphrase_2": "A dog atop a desk.",
           "status": "ok", "error": None, "quality": {}}  # written before the flags existed
    assert drop_if_changed(old)
    assert old["status"] == "filtered" and old["error"].startswith("meaning changed at steps 1 and 2")
    assert "under -> on" in old["quality"]["meaning_reason_1"]
    failed = {"caption": "A dog.", "paraphrase_1": None, "paraphrase_2": None, "status": "failed", "quality": {}}
    assert not drop_if_changed(failed) and failed["status"] == "failed"


def _labelled_set() -> list[dict]:
    return [json.loads(line) for line in (DATA / "meaning_eval.jsonl").read_text().splitlines() if line.strip()]


def test_engine_records_flags_and_drop_changed_keeps_them_out_of_training(chat_server, tmp_path):
    from paraclip.training.data import read_records

    server = chat_server(replies={"fire hydrant": "A red fire truck on the side of a road.",
                                  "fire truck": "A crimson engine by the roadside."})
    captions = [("img1", "A red fire hydrant on the side of a road."), ("img2", "a dog runs on the beach")]
    out = tmp_path / "out.jsonl"
    with make_backend("openai", model="mock", base_url=server.base_url, backoff_base=0.01) as backend:
        run_paraphrasing(captions, out, backend, ParaphraseConfig(cache_path=str(tmp_path / "c.sqlite")))
        recs = load_records(out)
        assert [r["status"] for r in recs] == ["ok", "ok"]
        assert recs[0]["quality"]["meaning_changed"] is True
        assert recs[0]["quality"]["meaning_reason_1"] == "object fire hydrant -> fire truck"
        assert recs[1]["quality"]["meaning_changed"] is False
        assert len(read_records(out, ["paraphrase_1", "paraphrase_2"])[0]) == 2
        # rerunning on the finished output with --drop-changed marks the flagged record; training skips it
        summary = run_paraphrasing(captions, out, backend, ParaphraseConfig(cache_path=str(tmp_path / "c.sqlite"),
                                                                            drop_changed=True))
    assert summary["filtered"] == 1 and summary["ok"] == 1
    recs = load_records(out)
    assert recs[0]["status"] == "filtered" and "meaning changed" in recs[0]["error"]
    kept, report = read_records(out, ["paraphrase_1", "paraphrase_2"])
    assert [r.image_id for r in kept] == ["img2"] and report.skipped == {"status 'filtered'": 1}


def test_drop_changed_cli_option(chat_server, tmp_path):
    from paraclip.cli import main

    server = chat_server(replies={"umbrella": "A woman wearing a raincoat in the rain."})
    src = tmp_path / "captions.txt"
    src.write_text("A woman holding an umbrella in the rain.\nA bowl of oranges on a kitchen table.\n")
    out = tmp_path / "out.jsonl"
    rc = main(["paraphrase", str(src), "--out", str(out), "--backend", "openai", "--model", "mock",
               "--base-url", server.base_url, "--drop-changed"])
    assert rc == 0
    recs = load_records(out)
    assert [r["status"] for r in recs] == ["filtered", "ok"]
    assert recs[0]["quality"]["meaning_reason_1"].startswith("object umbrella -> raincoat")


@pytest.mark.parametrize("caption, paraphrase", [
    ("A cyclist riding past a bakery.", "A cyclist rides by a bakery."),  # "past" is a preposition
    ("A girl playing on a swing set.", "A girl plays on the swings."),  # the set is about the swings
    ("A wooden table in a kitchen.", "A table made of wood in a kitchen."),
    ("A dog on a beach.", "A dog on the sandy shore."),  # places are not checked for materials
])
def test_issue_23_general_fixes_keep_rewordings_unflagged(caption, paraphrase):
    result = check_meaning(caption, paraphrase)
    assert not result.changed, result.reason


@pytest.mark.parametrize("caption, paraphrase", [
    ("A baby goat standing on a rock.", "A kid standing on a rock."),  # WordNet: a kid is a young goat
    ("A young horse running in a field.", "A foal running in a field."),
    ("A foal in a field.", "A baby horse in a field."),
    ("A dog sitting by a lake.", "A dog sitting beside a lake."),  # beside a place: where it is
])
def test_young_animals_and_side_relations_keep_rewordings_unflagged(caption, paraphrase):
    result = check_meaning(caption, paraphrase)
    assert not result.changed, result.reason


@pytest.mark.parametrize("caption, paraphrase, reason", [
    ("A dog lying in the yard.", "A pup lying in the yard.", "object dog -> pup"),  # a young animal adds the age
    ("A boy standing behind a car.", "A boy standing beside a car.", "relation behind -> side (boy / car)"),
    ("A girl walking alongside a horse.", "A girl walking in front of a horse.", "relation side -> front (girl / horse)"),
    ("Two ducks swimming in a lake.", "Two ducks swimming in a pond.", "object lake -> pond"),  # a pond is smaller
])
def test_young_animals_side_relations_and_ponds_still_flag_changes(caption, paraphrase, reason):
    result = check_meaning(caption, paraphrase)
    assert result.changed and reason in result.reasons, result.reasons


def test_describing_words_ending_in_y_are_no_materials():
    from paraclip.paraphrase.meaning.rules import _material

    assert _material("wooden") == "wood" and _material("concrete") == "concrete"
    assert _material("leafy") is None and _material("fluffy") is None  # they describe, they are not made of
    assert not check_meaning("A tree in a park.", "A leafy tree in a park.").changed


@pytest.mark.parametrize("text, heads, verbs", [
    # a singular subject and its verb in -s, not the plural of a WordNet compound ("cat sleep", "horse race")
    ("A fluffy cat sleeps on a couch.", ["cat", "couch"], ["sleep"]),
    ("A brown horse races along a sandy beach.", ["horse", "beach"], ["race"]),
    # a plural subject, then a verb's base form, not a compound's first word ("jump rope")
    ("Two boys jump rope outside a school.", ["boy", "rope", "school"], ["jump"]),
    # a counted subject whose plural looks singular, then its verb
    ("Three sheep graze on a hill.", ["sheep", "hill"], ["graze"]),
    # real compounds stay compounds
    ("Kids holding jump ropes near a bus stop.", ["kid", "jump rope", "bus stop"], ["hold"]),
    ("A horse race on a dirt track.", ["horse race", "dirt track"], []),
])
def test_a_subject_and_its_verb_are_not_read_as_a_compound_noun(text, heads, verbs):
    parsed = analyse(text)
    assert [p.head for p in parsed.phrases] == heads
    assert [v for _, v, _ in parsed.actions] == verbs


@pytest.mark.parametrize("caption, paraphrase", [
    ("A fluffy cat sleeping on a couch.", "A fluffy cat sleeps on a couch."),
    ("A brown horse racing along a beach.", "A brown horse races along a beach."),
    ("Three sheep grazing on a hill.", "Three sheep graze on a hill."),
])
def test_a_verb_in_another_tense_keeps_the_meaning(caption, paraphrase):
    assert not check_meaning(caption, paraphrase).changed
