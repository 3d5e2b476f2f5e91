"""Meaning-change flags: does a paraphrase still describe the caption's picture? (ours)

The default check is cheap and offline (about a millisecond per pair, no model): both texts
are parsed (:mod:`paraclip.paraphrase.meaning.parse`) and compared. A paraphrase changes the
meaning when it

* names another object (``fire hydrant -> fire truck``), drops one or adds one,
* changes, drops or adds a colour, or moves colours between objects,
* changes a count (``two -> three``, ``a dog -> dogs``, ``three birds -> birds``),
* swaps the objects of a relation or an action (``cat on mat -> mat on cat``), or links them by a
  contradicting relation (``under -> on``, ``left -> right``),
* replaces an attribute or moves it to another object (``old -> young``), or
* replaces a listed action with an unrelated one (``riding -> repairing``).

Synonyms and broader words keep the meaning (``couch -> sofa``, ``man -> person``,
``cars -> vehicles``); dropped non-colour adjectives count as concision. Beyond the hand-written
lexicon, WordNet 3.0 (:mod:`paraclip.paraphrase.meaning.wordnet`) supplies synonyms and broader
words (``cart -> wagon``, ``flowers -> blooms``), compound nouns (``dining room``), vague place
words (``grassy field -> green area``) and verbs; a narrower or sister word is still a change
(``boat -> sailboat``, ``bench -> chair``). A person named by what they do is the same person
(``a man skiing -> a skier``), and on / in / by a place all say where something is. A collective noun
counts people (``a bride and groom -> a couple``, ``three people -> a trio``), a compound may flip its order
(``a basket of laundry -> a laundry basket``), and a playing verb is broader than the action it replaces
(``children running -> children frolic``). A young animal is "a baby X" or "a young X" said in one word
(``a baby elephant -> a calf``), but not any X (``dog -> pup`` adds the age); "beside" / "alongside" say at the side
(``behind -> beside`` is a change), and a material the caption does not give an object is a change
(``a table -> a wooden surface``, ``a brick wall -> a concrete wall``). Step 2 is compared
with the caption, not with step 1, so a change made at step 1 shows at both steps.
Precision and recall on the committed labelled sets are in the README; an LLM judge
(:mod:`paraclip.paraphrase.meaning.judge`) and a targeted LLM second opinion on the flagged word swaps
(:mod:`paraclip.paraphrase.meaning.second_opinion`) were measured on the same sets and are not used.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from paraclip.paraphrase.meaning.lexicon import (COMPATIBLE_RELATIONS, CONVERSE_RELATIONS, GENERALISATIONS,
                                                 IMPLIED_COLOURS, ROLE_NOUNS, SYNONYM_GROUPS)
from paraclip.paraphrase.meaning import wordnet
from paraclip.paraphrase.meaning.verbs import VERB_GROUPS
from paraclip.paraphrase.meaning.parse import Analysis, Phrase, analyse, known_verb, synonym_groups, verb_groups
from paraclip.paraphrase.records import ParaphraseRecord

METHOD = "lexical-wordnet-v3"
OPTIONS = wordnet.OPTIONS
#: relations that all just say where something is when the second object is a place or landform
_AT_PLACE = frozenset({"on", "in", "near", "side"})
#: verb groups that only say where or how something is placed (sit, lie, stand, park, lean, hang)
_STILL = frozenset(i for i, group in enumerate(VERB_GROUPS) if group[0] in ("sit", "lie", "stand", "park", "lean", "hang"))
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                 9: "nine", 10: "ten", 12: "twelve"}


@dataclass(frozen=True)
class MeaningCheck:
    changed: bool
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons[:3]) if self.reasons else None


def _broader(word: str) -> set[str]:
    out = set(GENERALISATIONS.get(word, ()))
    for gid in synonym_groups(word):
        for synonym in SYNONYM_GROUPS[gid]:
            out |= set(GENERALISATIONS.get(synonym, ()))
    return out


def words_match(specific: str, general: str, deep: bool = True) -> int:
    """3 same word, 2 synonyms, 1 ``general`` is a broader word for ``specific``, 0 unrelated.

    ``deep=False`` asks the lexicon only, not WordNet."""
    if specific == general:
        return 3
    if synonym_groups(specific) & synonym_groups(general):
        return 2
    broader = _broader(specific)
    if general in broader or any(synonym_groups(general) & synonym_groups(b) for b in broader):
        return 1
    for role, other in ((specific, general), (general, specific)):  # "cyclist" ~ "bicycle"
        if any(other == w or synonym_groups(other) & synonym_groups(w) for w in ROLE_NOUNS.get(role, ())):
            return 1
    short, long_ = sorted((specific, general), key=len)
    if len(short) >= 5 and long_.startswith(short):  # skateboard / skateboarder
        return 1
    if deep and OPTIONS["wordnet"]:
        found = wordnet.relation(_spelling(specific), _spelling(general))
        if found == "synonym":
            return 2
        if found in OPTIONS["wordnet_accept"]:
            return 1
    return 0


def _spelling(noun: str) -> str:
    """A two-word noun WordNet writes as one word ("street light" -> "streetlight", "motor bike" -> "motorbike")."""
    if " " not in noun or wordnet.senses(noun):
        return noun
    joined = noun.replace(" ", "")
    return joined if wordnet.senses(joined) else noun


def phrases_match(caption: Phrase, paraphrase: Phrase) -> int:
    return max(words_match(c, p) for c in caption.keys for p in paraphrase.keys)


def agent_noun(verb: str, noun: str) -> bool:
    """Whether ``noun`` names someone doing ``verb`` ("ski" / "skier", "ride" / "rider", "cycle" / "cyclist")."""
    stem = verb[:-1] if verb.endswith("e") else verb
    return (len(stem) >= 3 and noun.startswith(stem) and len(noun) - len(stem) <= 4
            and noun.endswith(("er", "or", "ist")) and wordnet.is_person(noun))


def _agent_match(cap: Analysis, i: int, par_phrase: Phrase) -> int:
    """1 when the caption's ``i``-th phrase does something and the paraphrase names it by that action
    ("a man skiing" -> "a skier"): the person is the same, said in one word."""
    if not OPTIONS["agent_nouns"]:
        return 0
    verbs = [v for s, v, _ in cap.actions if s == i] or (cap.verbs() if wordnet.is_person(cap.phrases[i].head) else [])
    return int(any(agent_noun(v, par_phrase.head) for v in verbs))


#: describing words that make an animal a young one ("a baby elephant" is a calf)
_YOUNG = frozenset({"baby", "young"})


def _young_match(caption: Phrase, paraphrase: Phrase) -> int:
    """1 when one text names a young animal ("a calf", "a cub") and the other the same as "a baby X" / "a young X"
    (an animal): the age is said either way; which animal's young it is WordNet does not say."""
    if not OPTIONS["young_animals"]:
        return 0
    for young, named in ((paraphrase, caption), (caption, paraphrase)):
        if wordnet.is_young(young.head) and _YOUNG & {*named.adjectives, *named.modifiers} and wordnet.is_animal(named.head):
            return 1
    return 0


def align(cap: Analysis, par: Analysis) -> dict[int, int]:
    """Caption phrase -> paraphrase phrase, best matches first; several caption phrases may share one."""
    scored = sorted(((phrases_match(c, p) or _agent_match(cap, i, p) or _young_match(c, p), -abs(i - j), i, j)
                     for i, c in enumerate(cap.phrases) for j, p in enumerate(par.phrases)), reverse=True)
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for score, _, i, j in scored:
        if score and i not in pairs and j not in used:
            pairs[i] = j
            used.add(j)
    for score, _, i, j in scored:  # "a man and a woman" -> "a couple": one phrase may cover two
        if score and i not in pairs:
            pairs[i] = j
    people = {j for i, j in pairs.items() if _person(cap.phrases[i]) and _person(par.phrases[j])
              and (par.phrases[j].plural or (par.phrases[j].count or 0) >= 2)}
    for i, c in enumerate(cap.phrases):  # "a bride and groom" -> "newlyweds": the others of the group too
        if i not in pairs and people and _person(c) and not c.plural:
            pairs[i] = min(people)
    return pairs


def _person(phrase: Phrase) -> bool:
    return phrase.head in ("person", "people") or wordnet.is_person(phrase.head)


def _tolerated_drop(phrase: Phrase, par: Analysis, matched: set[int]) -> bool:
    """A head said another way: its modifier survives ("city street" -> "city"), or it became a
    describing word ("a man with a beard" -> "a bearded man", "a woman" -> "a female cyclist")."""
    if any(words_match(m, p.head) or words_match(p.head, m) for m in phrase.modifiers for p in par.phrases):
        return True
    if any(words_match(phrase.head, m) >= 2 for j, p in enumerate(par.phrases) if j in matched
           for m in p.modifiers + tuple(p.head.split())):
        return True  # it is part of a matched compound now: "a basket of laundry" -> "a laundry basket"
    described = {a for p in par.phrases for a in p.adjectives} | set(par.verbs())
    return any(words_match(phrase.head, a) or words_match(a, phrase.head) or derived(a, phrase.head) for a in described)


def derived(adjective: str, noun: str) -> bool:
    """Whether ``adjective`` is made from ``noun`` ("snowy" / "snow", "muddy" / "mud", "wooden" / "wood",
    "smoky" / "smoke"): "a snowy park" and "a snow-covered park" say the same."""
    if len(noun) < 3 or not adjective.startswith(noun[:-1]):
        return False
    rest = adjective[len(noun):] if adjective.startswith(noun) else None
    if rest is None:  # "smoke" / "smoky"
        return noun.endswith("e") and adjective == noun[:-1] + "y"
    return rest in ("y", "en", "ed", "ny", "dy", "ty", "gy", "py", "ey")


def _objects(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    matched = set(pairs.values())
    dropped = [p for i, p in enumerate(cap.phrases) if i not in pairs and not _tolerated_drop(p, par, matched)]
    cap_words = {w for p in cap.phrases for w in p.keys + p.modifiers}
    added = [p for j, p in enumerate(par.phrases) if j not in matched
             and not any(words_match(w, k) or words_match(k, w, deep=False) for w in cap_words for k in p.keys + p.modifiers)
             and not any(words_match(v, p.head) for v in cap.verbs())
             and not any(derived(a, p.head) for c in cap.phrases for a in c.adjectives)]
    heads = Counter(p.head for p in cap.phrases)
    repeated = [h for h, n in Counter(p.head for p in par.phrases).items() if heads[h] and n > heads[h]]
    reasons = [f"object {c.text} -> {p.text}" for c, p in zip(dropped, added)]
    reasons += [f"another {h} added" for h in repeated]
    reasons += [f"{c.text} dropped" for c in dropped[len(added):]]
    reasons += [f"{p.text} added" for p in added[len(dropped):]]
    return reasons


def _count_word(n: int | None) -> str:
    return _NUMBER_WORDS.get(n, str(n)) if n is not None else "unspecified"


def _counts(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    reasons = []
    shared = {j for j in pairs.values() if list(pairs.values()).count(j) > 1}
    for j in shared:  # "a bride and a groom" -> "a couple": the paraphrase counts them together
        total = sum(cap.phrases[i].count or (1 if not cap.phrases[i].plural else 0) for i in pairs if pairs[i] == j)
        p = par.phrases[j]
        if p.count and total and p.count != total and all(cap.phrases[i].count or not cap.phrases[i].plural
                                                           for i in pairs if pairs[i] == j):
            reasons.append(f"count {_count_word(total)} -> {_count_word(p.count)} ({p.head})")
    for i, j in pairs.items():
        if j in shared:
            continue
        c, p = cap.phrases[i], par.phrases[j]
        what = c.head
        if c.count and p.count and c.count != p.count:
            reasons.append(f"count {_count_word(c.count)} -> {_count_word(p.count)} ({what})")
        elif c.count and c.count >= 2 and not p.count and not p.plural:
            reasons.append(f"count {_count_word(c.count)} -> one ({what})")
        elif c.count and c.count >= 2 and not p.count and p.head == c.head:
            reasons.append(f"count {_count_word(c.count)} -> unspecified ({what})")
        elif c.singular and (p.plural or (p.count or 0) >= 2) and not c.plural:
            reasons.append(f"count one -> {_count_word(p.count) if p.count else 'several'} ({what})")
        elif c.plural and not c.count and p.singular and p.head == c.head:
            reasons.append(f"count several -> one ({what})")
    if not reasons:
        missing = Counter(cap.numbers()) - Counter(par.numbers())
        extra = Counter(par.numbers()) - Counter(cap.numbers())
        for n in missing:
            reasons.append(f"count {_count_word(n)} -> {_count_word(next(iter(extra), None))}")
    return reasons


def _colours(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    before, after = Counter(cap.colours()), Counter(par.colours())
    lost, new = list((before - after).elements()), list((after - before).elements())
    described = {w for p in par.phrases for w in (p.head, *p.adjectives)}
    if OPTIONS["scene_colours"]:  # the caption's scene already implies it: "a grassy field" -> "a green area"
        described |= {w for p in cap.phrases for w in (p.head, *p.adjectives, *p.modifiers)}
    new = [c for c in new if not IMPLIED_COLOURS.get(c, frozenset()) & described]  # "green grass"
    reasons = [f"colour {a} -> {b}" for a, b in zip(lost, new)]
    reasons += [f"colour {a} dropped" for a in lost[len(new):]]
    reasons += [f"colour {b} added" for b in new[len(lost):]]
    if not reasons:  # same colours, maybe on other objects: "black cat on a white chair" -> "white cat ..."
        for i, j in pairs.items():
            c, p = cap.phrases[i], par.phrases[j]
            moved = {x for x in c.colours - p.colours
                     if any(x in q.colours for k, q in enumerate(par.phrases) if k != j)}
            if (c.colours and p.colours and c.colours != p.colours) or moved:
                reasons.append(f"colour of {c.head}: {'/'.join(sorted(c.colours))} -> "
                               f"{'/'.join(sorted(p.colours)) or 'none'}")
    return reasons


def _same_adjective(a: str, b: str) -> bool:
    return a == b or bool(synonym_groups(a) & synonym_groups(b))


def _attributes(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    reasons = []
    par_adjs = {a for p in par.phrases for a in p.adjectives}
    cap_adjs = {a for p in cap.phrases for a in p.adjectives}
    owner = {}
    for j, p in enumerate(par.phrases):
        for a in p.adjectives:
            owner.setdefault(a, j)
    for i, j in pairs.items():
        c, p = cap.phrases[i], par.phrases[j]
        described_by = p.adjectives | {m for m in p.modifiers if m not in c.modifiers}  # "metal table"
        for a in c.adjectives:
            if any(_same_adjective(a, b) for b in p.adjectives):
                continue
            elsewhere = [k for b, k in owner.items() if _same_adjective(a, b) and k != j]
            if elsewhere and any(k == elsewhere[0] and i2 != i for i2, k in pairs.items()):
                reasons.append(f"{a} moved from {c.head} to {par.phrases[elsewhere[0]].head}")
                continue
            if not any(_same_adjective(a, b) for b in par_adjs) and synonym_groups(a):
                new = [b for b in described_by if not any(_same_adjective(b, x) for x in cap_adjs)
                       and synonym_groups(b)]
                if new:
                    reasons.append(f"{a} -> {new[0]} ({c.head})")
    return reasons


def _modifiers(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    """A noun modifier replaced by an unrelated one on the same object ("clay court" -> "grass court")."""
    if not OPTIONS["modifiers"]:
        return []
    reasons = []
    cap_words = {w for p in cap.phrases for w in (p.head, *p.modifiers, *p.adjectives)}
    for i, j in pairs.items():
        c, p = cap.phrases[i], par.phrases[j]
        said = p.modifiers + tuple(p.adjectives)
        lost = [m for m in c.modifiers if not any(words_match(m, w) or words_match(w, m) for w in said)]
        new = [m for m in p.modifiers if not any(words_match(w, m) or words_match(m, w) for w in cap_words)]
        if lost and new:
            reasons.append(f"{lost[0]} -> {new[0]} ({c.head})")
    return reasons


def _material(word: str) -> str | None:
    """The material ``word`` names or is made from ("wooden" -> "wood", "brick", "concrete"), or None."""
    for base in (word, word[:-2] if word.endswith("en") else None):  # not "-y": "fluffy", "leafy" describe
        if base and len(base) >= 3 and wordnet.is_material(base):
            return base
    return None


def _materials(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    """A material said of an object that the caption does not give it ("a table" -> "a wooden surface",
    "a brick wall" -> "a concrete wall"); places are left alone ("a sandy beach")."""
    if not OPTIONS["materials"]:
        return []
    said = {m for p in cap.phrases for w in (p.head, *p.modifiers, *p.adjectives) if (m := _material(w) or w)}
    reasons = []
    for i, j in pairs.items():
        c, p = cap.phrases[i], par.phrases[j]
        if wordnet.is_place(c.head) or wordnet.is_place(p.head):
            continue
        new = [m for w in (*p.modifiers, *p.adjectives) if (m := _material(w))
               and not any(words_match(m, x) or words_match(x, m) for x in said)]
        old = [m for w in (*c.modifiers, *c.adjectives) if (m := _material(w))]
        if new:
            reasons.append(f"{old[0]} -> {new[0]} ({c.head})" if old else f"{new[0]} added ({c.head})")
    return reasons


def _relations(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    reasons = []
    links: dict[tuple[int, int], set[str]] = {}
    for a, rel, b in par.relations:
        links.setdefault((a, b), set()).add(rel)
    for a, rel, b in cap.relations:
        if a not in pairs or b not in pairs or pairs[a] == pairs[b]:
            continue
        a2, b2 = pairs[a], pairs[b]
        forward, backward = links.get((a2, b2), set()), links.get((b2, a2), set())
        if rel in forward or CONVERSE_RELATIONS.get(rel) in backward:
            continue
        names = f"{cap.phrases[a].head} / {cap.phrases[b].head}"
        if (OPTIONS["place_relations"] and rel in _AT_PLACE and forward and forward <= _AT_PLACE
                and wordnet.is_place(cap.phrases[b].head)):
            continue  # where something is: "on the beach" / "by the beach" / "at the shore"
        if rel in backward and rel not in ("near", "side"):
            reasons.append(f"relation swapped: {names} ({rel})")
        elif any(r not in COMPATIBLE_RELATIONS[rel] for r in forward):
            reasons.append(f"relation {rel} -> {'/'.join(sorted(forward))} ({names})")
        elif any(r not in COMPATIBLE_RELATIONS[CONVERSE_RELATIONS.get(rel, rel)] for r in backward):
            reasons.append(f"relation {rel} -> {'/'.join(sorted(backward))} reversed ({names})")
    return reasons


def _playing(verb: str) -> bool:
    """Whether ``verb`` says someone plays ("play", "frolic", "romp", "gambol"): WordNet's "be at play" and below."""
    return verb == "play" or wordnet.below(verb, "play", "verb.social")


def _same_verb(a: str, b: str) -> bool:
    if a == b or verb_groups(a) & verb_groups(b):
        return True
    return bool(OPTIONS["wordnet_verbs"]) and (wordnet.relation(a, b, "verb") in ("synonym", "broader")
                                               or wordnet.relation(b, a, "verb") in ("synonym", "broader")
                                               or (OPTIONS["verb_sisters"] and wordnet.sisters(a, b, "verb")))


def _actions(cap: Analysis, par: Analysis, pairs: dict[int, int]) -> list[str]:
    reasons = []
    for s, verb, o in cap.actions:
        if s is None or o is None or s not in pairs or o not in pairs or pairs[s] == pairs[o]:
            continue
        for s2, verb2, o2 in par.actions:
            if (s2, o2) == (pairs[o], pairs[s]) and _same_verb(verb, verb2):
                reasons.append(f"roles swapped: {cap.phrases[s].head} / {cap.phrases[o].head} ({verb})")
    if reasons:
        return reasons
    cap_verbs = [v for v in cap.verbs() if known_verb(v)]
    par_verbs = [v for v in par.verbs() if known_verb(v)]
    playing = OPTIONS["play_verbs"] and any(_playing(w) for w in par.verbs())
    lost = [v for v in cap_verbs if not any(_same_verb(v, w) for w in par.verb_readings())
            and not any(v in ROLE_NOUNS.get(p.head, ()) or p.head.startswith(v[:4]) for p in par.phrases)
            and not playing]  # "children running through a sprinkler" -> "children play in it": a broader verb
    new = [w for w in par_verbs if not any(_same_verb(w, v) for v in cap.verb_readings())
           and not (OPTIONS["play_verbs"] and _playing(w))]
    reasons = [f"action {a} -> {b}" for a, b in zip(lost, new)]
    if OPTIONS["added_actions"]:  # "a frog on a leaf" -> "a frog sleeps on a leaf"; "rests on" only places it
        reasons += [f"action {b} added" for b in new[len(lost):] if not verb_groups(b) & _STILL]
    return reasons


def _nouns(analysis: Analysis) -> frozenset[str]:
    return frozenset(w for p in analysis.phrases for w in (p.head, *p.modifiers))


def check_meaning(caption: str, paraphrase: str) -> MeaningCheck:
    """Does ``paraphrase`` still say what ``caption`` says? (the cheap, default check)"""
    cap, par = analyse(caption), analyse(paraphrase)
    cap_nouns, par_nouns = _nouns(cap), _nouns(par)  # "pizza with olives" / "olive pizza": olive is no colour
    cap, par = analyse(caption, par_nouns), analyse(paraphrase, cap_nouns)
    pairs = align(cap, par)
    reasons: list[str] = []
    for rule in (_objects, _colours, _counts, _relations, _actions, _attributes, _modifiers, _materials):
        reasons += rule(cap, par, pairs)
    return MeaningCheck(bool(reasons), tuple(dict.fromkeys(reasons)))


def drop_if_changed(record: ParaphraseRecord | dict[str, Any]) -> bool:
    """``--drop-changed``: mark an ``ok`` record whose meaning changed as ``filtered`` (training skips it).

    ``record`` is a :class:`ParaphraseRecord` or its JSON object (a record read back from an output),
    changed in place. The reasons stay in ``quality.meaning_reason_1/_2``. Records written before the
    flags existed get them computed here. Returns whether the record was marked.
    """
    if isinstance(record, ParaphraseRecord):
        if record.status != "ok":
            return False
        reason = meaning_change(record.caption, record.paraphrase_1, record.paraphrase_2, record.quality)
        if reason is not None:
            record.mark("filtered", reason)
        return reason is not None
    if record.get("status") != "ok":
        return False
    reason = meaning_change(record.get("caption") or "", record.get("paraphrase_1"), record.get("paraphrase_2"),
                            record.setdefault("quality", {}))
    if reason is not None:
        record["status"], record["error"] = "filtered", reason
    return reason is not None


def meaning_change(caption: str, p1: str | None, p2: str | None, quality: dict[str, Any]) -> str | None:
    """Why ``--drop-changed`` filters these texts (``"meaning changed at step 2 (--drop-changed)"``), or
    None; fills ``quality``'s meaning keys when they are missing."""
    if "meaning_changed" not in quality:
        quality.update(meaning_signals(caption, p1, p2))
    if not quality.get("meaning_changed"):
        return None
    steps = [str(s) for s in (1, 2) if quality.get(f"meaning_changed_{s}")]
    return f"meaning changed at step{'s' if len(steps) > 1 else ''} {' and '.join(steps)} (--drop-changed)"


def meaning_signals(caption: str, p1: str | None, p2: str | None) -> dict[str, Any]:
    """The ``quality`` keys: ``meaning_changed`` (either step), and per step the flag and its reason.

    Both steps are compared with the caption; a missing paraphrase gives ``None`` for its step.
    """
    out: dict[str, Any] = {}
    for step, text in ((1, p1), (2, p2)):
        if text:
            result = check_meaning(caption, text)
            out[f"meaning_changed_{step}"] = result.changed
            out[f"meaning_reason_{step}"] = result.reason
        else:
            out[f"meaning_changed_{step}"] = None
            out[f"meaning_reason_{step}"] = None
    out["meaning_changed"] = bool(out["meaning_changed_1"] or out["meaning_changed_2"])
    out["meaning_method"] = METHOD
    return out
