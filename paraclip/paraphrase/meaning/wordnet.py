"""WordNet 3.0 knowledge for the meaning-change check: synonyms and broader words beyond the lexicon.

``data/wordnet30.json.gz`` is an extract of Princeton WordNet 3.0 (licence:
``data/WORDNET_LICENSE.txt``) made by ``scripts/build_wordnet_extract.py``: for nouns and verbs,
each lemma's synsets (most frequent sense first) and each synset's lexicographer file and
hypernyms. Nothing else (no glosses, no other relations); about 1.2 MB, loaded once on first use
(about 0.5 s).

Only a word's first few senses count, so a rare sense does not make two everyday words
synonyms, and a broader word must be broader than the specific word's first (most frequent)
sense: "boy" is also "a friendly reference to a grown man", which must not make ``boy -> man``
a broader word.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

#: knobs of the check (the defaults are the measured best; ``bench/meaning_flag.py`` compares the others):
#: WordNet for nouns (and which relations keep the meaning), for verbs, and its compounds as one word
OPTIONS: dict = {"wordnet": True, "wordnet_accept": ("broader", "scene", "intensity"), "wordnet_verbs": True,
                 "compounds": True, "plurals": True,
                 "scene_colours": True, "broader_senses": 1, "agent_nouns": True, "place_relations": True,
                 "modifiers": True, "added_actions": False, "verb_sisters": False, "play_verbs": True, "materials": True,
                 "young_animals": True}
DATA = Path(__file__).with_name("data") / "wordnet30.json.gz"
#: senses of a word that count (WordNet lists the most frequent first)
SENSES = 3
#: lexicographer files of places and landforms, and the vague words a paraphrase may use for any of them
#: ("a grassy field" -> "a green area")
SCENE_FILES = frozenset({"noun.location", "noun.object"})
PLACE_WORDS = frozenset({"area", "place", "spot", "location", "setting", "surroundings", "scene", "region", "space",
                         "ground", "terrain", "land", "landscape", "outdoors", "site", "expanse", "stretch",
                         "plot", "patch", "tract", "surface"})
#: weather and similar happenings: a narrower word only says how strong it is ("rain" / "downpour")
INTENSITY_FILES = frozenset({"noun.phenomenon"})


def clear_caches() -> None:
    """Forget cached answers: call after changing :data:`OPTIONS`."""
    senses.cache_clear()
    relation.cache_clear()


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(gzip.decompress(DATA.read_bytes()))


def available() -> bool:
    return DATA.exists()


def compound(words: str) -> bool:
    """Whether ``words`` (two or more) is one WordNet noun ("dining room", "fire hydrant", "french fries")."""
    return OPTIONS["compounds"] and " " in words and words in _data()["noun"]["lemmas"]


@lru_cache(maxsize=65536)
def senses(word: str, pos: str = "noun", k: int = SENSES) -> tuple[int, ...]:
    """The first ``k`` senses of ``word``, and for a noun those of its plural too: the check compares
    singular lemmas, and some things are named in the plural ("french fry" / "fries")."""
    lemmas = _data()[pos]["lemmas"]
    word = word.lower()
    out = list(lemmas.get(word, ())[:k])
    if pos == "noun" and OPTIONS["plurals"]:
        plural = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
        out += [s for s in lemmas.get(plural, ())[:k] if s not in out]
    return tuple(out)


def lexfile(synset: int, pos: str = "noun") -> str:
    data = _data()
    return data["lexnames"][data[pos]["synsets"][synset][0]]


@lru_cache(maxsize=65536)
def ancestors(synset: int, pos: str = "noun") -> dict[int, int]:
    """Every hypernym of ``synset`` with its distance (1 = direct hypernym)."""
    table = _data()[pos]["synsets"]
    out: dict[int, int] = {}
    front = [(synset, 0)]
    while front:
        current, depth = front.pop()
        for parent in table[current][1]:
            if parent not in out or out[parent] > depth + 1:
                out[parent] = depth + 1
                front.append((parent, depth + 1))
    return out


@lru_cache(maxsize=65536)
def relation(specific: str, general: str, pos: str = "noun") -> str | None:
    """``"synonym"`` (a shared synset), ``"broader"`` (``general`` is a hypernym of ``specific``),
    ``"narrower"`` (the other way round), ``"scene"`` (a vague place word for a place or landform),
    ``"intensity"`` (a narrower weather word), or None."""
    a, b = senses(specific, pos), senses(general, pos)
    if not a or not b:
        return None
    if set(a) & set(b):
        return "synonym"
    if any(y in ancestors(x, pos) for x in a[:OPTIONS["broader_senses"]] for y in b):
        return "broader"
    if pos == "noun" and general in PLACE_WORDS and lexfile(a[0]) in SCENE_FILES:
        return "scene"  # before "narrower": a rare sense of "ground" must not make it narrower than "field"
    narrower = [(x, y) for x in a for y in b if x in ancestors(y, pos)]
    if narrower:
        if pos == "noun" and any(lexfile(y) in INTENSITY_FILES and ancestors(y)[x] == 1 for x, y in narrower):
            return "intensity"
        return "narrower"
    return None


def below(word: str, general: str, lexname: str, pos: str = "verb") -> bool:
    """Whether a first-three sense of ``word`` lies under a sense of ``general`` from lexicographer file ``lexname``
    (``below("frolic", "play", "verb.social")``: frolicking is playing)."""
    tops = {s for s in _data()[pos]["lemmas"].get(general, ())[:6] if lexfile(s, pos) == lexname}
    return any(tops & (set(ancestors(x, pos)) | {x}) for x in senses(word, pos))


def is_person(noun: str) -> bool:
    """Whether the first sense of ``noun`` is a person (a man, a skier, a chef)."""
    first = senses(noun, "noun", 1)
    return bool(first) and lexfile(first[0]) == "noun.person"


def is_young(noun: str) -> bool:
    """Whether a first-three sense of ``noun`` is a young animal (WordNet's "young, offspring" and below: a calf, a
    cub, a foal, a chick, a pup)."""
    young = set(_data()["noun"]["lemmas"].get("young", ())[:1])
    return any(lexfile(s) == "noun.animal" and young & set(ancestors(s)) for s in senses(noun))


def is_animal(noun: str) -> bool:
    first = senses(noun, "noun", 1)
    return bool(first) and lexfile(first[0]) == "noun.animal"


def is_material(noun: str) -> bool:
    """Whether the first sense of ``noun`` is a substance, or one of its first two senses a material or building
    material ("wood", "concrete", "brick", "stone")."""
    first = senses(noun, "noun", 1)
    if not first:
        return False
    if lexfile(first[0]) == "noun.substance":
        return True
    lemmas = _data()["noun"]["lemmas"]
    tops = set(lemmas["material"][:1]) | set(lemmas.get("building material", ())[:1])
    return any(tops & set(ancestors(s)) for s in senses(noun, "noun", 2))


def is_place(noun: str) -> bool:
    """Whether the first sense of ``noun`` is a place or landform (a beach, a field, a slope)."""
    first = senses(noun, "noun", 1)
    return bool(first) and lexfile(first[0]) in SCENE_FILES


def sisters(a: str, b: str, pos: str = "verb", k: int = 2) -> bool:
    """Whether a first-``k`` sense of ``a`` and one of ``b`` share a direct hypernym ("brush" / "wash")."""
    table = _data()[pos]["synsets"]
    parents = {p for x in senses(a, pos, k) for p in table[x][1]}
    return any(p in parents for y in senses(b, pos, k) for p in table[y][1])
