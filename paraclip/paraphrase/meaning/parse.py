"""A small English caption parser for the meaning-change check (ours; no model, no downloads).

Turns a caption into noun phrases (head noun, nouns before it, colours, count, other
adjectives), spatial relations between phrases, and actions (subject, verb, object). Words
are lemmatised with PyPI ``lemminflect`` (its lexicon ships inside the wheel); multi-word
entries of the lexicon ("fire hydrant", "in front of", "a pair of") are read as one unit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from paraclip.paraphrase.meaning.lexicon import (COLLECTIVE_PEOPLE, COLOURS, FRAMING_NOUNS, GENERALISATIONS, NUMBERS, RELATIONS,
                                                 STOPWORDS, SYNONYM_GROUPS)
from paraclip.paraphrase.meaning import wordnet
from paraclip.paraphrase.meaning.verbs import LIGHT_VERBS, VERB_GROUPS

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_BE = frozenset("is are was were be been being am".split())
_SINGULAR_DETERMINERS = frozenset({"a", "an", "one", "single", "lone", "solitary"})
_PLURAL_WORDS = frozenset("people folks persons children men women feet teeth mice geese".split())
_DIGITS = {str(n): n for n in range(2, 21)}
_PLURAL_MODIFIERS = frozenset("sports arts clothes news goods glasses sales".split())  # "a sports car"
_MAX_PHRASE = 4
#: words that never start a WordNet compound here: a colour, number or article keeps its own meaning
#: ("a white house" is a house that is white)
_ARTICLES = frozenset("a an the his her their its this that".split())
_NOT_IN_COMPOUNDS = frozenset(COLOURS) | frozenset(NUMBERS) | frozenset(STOPWORDS) | _BE


@dataclass
class Token:
    text: str
    lemma: str
    kind: str  # noun | adj | verb | colour | number | relation | stop | other
    index: int
    plural: bool = False
    value: int | None = None  # numbers
    passive_by: bool = False  # "by" introducing the agent of a passive verb


@dataclass
class Phrase:
    head: str
    modifiers: tuple[str, ...]
    colours: frozenset[str]
    adjectives: frozenset[str]
    count: int | None
    singular: bool  # said with a/an/one
    plural: bool
    start: int
    end: int

    @property
    def keys(self) -> tuple[str, ...]:
        """The head alone and, when it has noun modifiers, the whole compound ("fire hydrant"); also a describing
        word with the head when WordNet has them as one noun ("young lady" is a girl)."""
        keys = (" ".join(self.modifiers + (self.head,)), self.head) if self.modifiers else (self.head,)
        return keys + tuple(sorted(f"{a} {self.head}" for a in self.adjectives if wordnet.compound(f"{a} {self.head}")))

    @property
    def text(self) -> str:
        return " ".join(self.modifiers + (self.head,))


@dataclass
class Analysis:
    tokens: list[Token]
    phrases: list[Phrase] = field(default_factory=list)
    relations: list[tuple[int, str, int]] = field(default_factory=list)  # (phrase, class, phrase)
    actions: list[tuple[int | None, str, int | None]] = field(default_factory=list)  # (subject, verb, object)
    collective: list[int] = field(default_factory=list)  # numbers said by a collective noun ("a trio": 3)

    def colours(self) -> list[str]:
        return [t.lemma for t in self.tokens if t.kind == "colour"]

    def numbers(self) -> list[int]:
        return [t.value for t in self.tokens if t.kind == "number" and t.value and t.value >= 2] + self.collective

    def verbs(self) -> list[str]:
        return [t.lemma for t in self.tokens if t.kind == "verb"]

    def verb_readings(self) -> set[str]:
        """The verb lemmas of every inflected verb form ("feeds" read as a noun, "sitting" inside "sitting on")."""
        return {lemma for t in self.tokens for w in t.text.split() for lemma in _readings(w).get("VERB", ())
                if lemma != w}


# -- lexicon indexes ---------------------------------------------------------------------------

def _group_index(groups, with_singulars: bool) -> dict[str, frozenset[int]]:
    """word -> the ids of the groups it is in (and, for nouns, under its singular too: "pedestrians" is
    found as "pedestrian")."""
    index: dict[str, set[int]] = {}
    for gid, group in enumerate(groups):
        for word in group:
            index.setdefault(word, set()).add(gid)
            if with_singulars and " " not in word:
                index.setdefault(_singular(word), set()).add(gid)
    return {w: frozenset(g) for w, g in index.items()}


@lru_cache(maxsize=1)
def _groups() -> dict[str, frozenset[int]]:
    return _group_index(SYNONYM_GROUPS, with_singulars=True)


def _singular(word: str) -> str:
    lemmas = _readings(word).get("NOUN")
    return lemmas[-1] if lemmas else word


@lru_cache(maxsize=1)
def _verb_groups() -> dict[str, frozenset[int]]:
    return _group_index(VERB_GROUPS, with_singulars=False)


@lru_cache(maxsize=1)
def _phrases() -> frozenset[str]:
    words = set(COLOURS) | set(NUMBERS) | set(RELATIONS) | set(GENERALISATIONS)
    words |= {w for group in SYNONYM_GROUPS for w in group}
    words |= {w for broader in GENERALISATIONS.values() for w in broader}
    return frozenset(w for w in words if " " in w)


def synonym_groups(word: str) -> frozenset[int]:
    return _groups().get(word, frozenset())


def verb_groups(word: str) -> frozenset[int]:
    return _verb_groups().get(word, frozenset())


def known_verb(word: str) -> bool:
    return word in _verb_groups()


# -- tokenising --------------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def _readings(word: str) -> dict[str, tuple[str, ...]]:
    import lemminflect

    return dict(lemminflect.getAllLemmas(word))


def _noun_lemma(word: str) -> str:
    readings = _readings(word)
    lemmas = readings.get("NOUN")
    if lemmas:
        known = [lemma for lemma in lemmas if lemma in _groups() or lemma in GENERALISATIONS]
        return (known or list(lemmas))[-1]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _fold(text: str) -> str:
    """Letters without their accents ("café" -> "cafe", "jalapeño" -> "jalapeno"): the word lists are ASCII."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    text = _fold(text.lower()).replace("\u2019", "'").replace("-", " ")
    out = []
    for w in _WORD.findall(text):
        if w.endswith("'s"):
            w = w[:-2]
        out.append(w)
    return [w for w in out if w]


def _may_start_compound(words: list[str], i: int) -> bool:
    """Whether ``words[i]`` may start a WordNet compound: not a colour, number, article or describing word
    ("an old woman" is a woman who is old), and a gerund only after an article ("a dining room", not
    "a cat drinking water")."""
    word = words[i]
    if word in _NOT_IN_COMPOUNDS or "ADJ" in _readings(word):
        return False
    return not word.endswith("ing") or (i > 0 and words[i - 1] in _ARTICLES)


def _verb_after_subject(words: list[str], i: int, span: list[str]) -> bool:
    """Whether a two-word WordNet compound ``span`` at ``i`` is rather a subject and its verb, by number agreement:
    "a fluffy cat sleeps" (one cat: "sleeps" is a verb, not the plural of "cat sleep"), "a green coat stands",
    "two girls jump rope" (a plural subject, then a verb's base form: "jump" is no noun modifier there)."""
    if len(span) != 2:
        return False
    last = span[1]
    if last.endswith("s") and _readings(last).get("VERB", (last,))[0] != last:
        j = i - 1
        while j >= 0 and (words[j] in COLOURS or "ADJ" in _readings(words[j])):
            j -= 1
        if j >= 0 and words[j] in _SINGULAR_DETERMINERS:
            return True
    first, before = span[0], words[i - 1] if i else ""
    verb = _readings(first).get("VERB")
    noun_before = _readings(before).get("NOUN")
    return bool(verb and verb[0] == first and noun_before and noun_before[0] != before)


def _merge(words: list[str]) -> list[str]:
    """Join multi-word lexicon entries into one unit (longest first; the last word may be plural)."""
    phrases = _phrases()
    out, i = [], 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 1, -1):
            span = words[i:i + n]
            candidates = (" ".join(span), " ".join(span[:-1] + [_noun_lemma(span[-1])]))
            hit = next((c for c in candidates if c in phrases), None)
            if (hit is None and _may_start_compound(words, i) and not any(w in RELATIONS for w in span)
                    and not _verb_after_subject(words, i, span)):
                hit = next((c for c in candidates if wordnet.compound(c)), None)
            if hit:
                out.append(hit if hit == candidates[0] else " ".join(span))
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def _classify(unit: str, index: int) -> Token:
    if unit in NUMBERS:
        return Token(unit, unit, "number", index, value=NUMBERS[unit])
    if unit in _DIGITS:
        return Token(unit, unit, "number", index, value=_DIGITS[unit])
    if unit in COLOURS:
        return Token(unit, COLOURS[unit], "colour", index)
    if unit in RELATIONS:
        return Token(unit, RELATIONS[unit], "relation", index)
    if unit in STOPWORDS:
        return Token(unit, unit, "stop", index)
    if " " in unit:
        last = unit.split()[-1]
        lemma = unit if unit in _groups() or unit in GENERALISATIONS else " ".join(
            unit.split()[:-1] + [_noun_lemma(last)])
        return Token(unit, lemma, "noun", index, plural=_noun_lemma(last) != last or last in _PLURAL_WORDS)
    readings = _readings(unit)
    if "NOUN" in readings and unit in _groups() and not {"VERB", "ADJ"} & set(readings):
        return Token(unit, unit, "noun", index)
    tags = set(readings)
    if not tags:
        if unit.endswith("ly"):
            return Token(unit, unit, "other", index)
        lemma = _noun_lemma(unit)
        return Token(unit, lemma, "noun", index, plural=lemma != unit)
    return Token(unit, unit, "?" + ",".join(sorted(tags)), index)  # decided with context in _resolve


def _nounish(tok: Token | None) -> bool:
    if tok is None:
        return False
    if tok.kind == "noun":
        return True
    return tok.kind.startswith("?") and "NOUN" in tok.kind and not tok.text.endswith(("ing", "ed"))


def _starts_singular(tokens: list[Token], i: int) -> bool:
    """Whether the noun phrase ending before ``i`` began with a/an/one ("a fire hydrant sprays")."""
    j = i - 1
    while j >= 0 and (_nounish(tokens[j]) or tokens[j].kind in ("adj", "colour")):
        j -= 1
    return j >= 0 and j < i - 1 and tokens[j].text in _SINGULAR_DETERMINERS


def _pos(tokens: list[Token], i: int) -> tuple[str, str]:
    """(kind, lemma) of the ambiguous word ``tokens[i]``, from its readings and its neighbours."""
    tok = tokens[i]
    tags = set(tok.kind[1:].split(","))
    readings = _readings(tok.text)
    prev = tokens[i - 1] if i else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    verb = readings["VERB"][0] if "VERB" in tags else None
    inflected = verb is not None and verb != tok.text
    after_determiner = prev is not None and (prev.kind in ("adj", "colour", "number")
                                             or prev.text in ("a", "an", "the", "his", "her", "their", "its"))
    if verb and tok.text.endswith("ing"):
        if after_determiner and _nounish(nxt):
            return "adj", verb  # "a sleeping cat"
        if _nounish(prev) or "NOUN" not in tags:
            return "verb", verb  # "people flying kites"
    if "ADJ" in tags and (_nounish(nxt) or (nxt is not None and nxt.kind in ("colour", "adj"))
                          or not tags & {"NOUN", "VERB"}):
        return "adj", readings["ADJ"][0]
    if verb and inflected and tok.text.endswith(("ed", "en")):
        starts_phrase = prev is None or (prev.kind in ("stop", "relation") and prev.text not in _BE)
        if (after_determiner or starts_phrase) and _nounish(nxt):
            return "adj", verb  # "a fenced pasture", "milk and sliced bananas"
        return "verb", verb
    if verb and _nounish(prev) and not after_determiner:
        if inflected and tok.text.endswith("s") and (_starts_singular(tokens, i) or not _nounish(nxt)):
            return "verb", verb  # "a fire hydrant sprays water", "someone skis down"
    if "NOUN" in tags:
        return "noun", _noun_lemma(tok.text)
    if "ADJ" in tags:
        return "adj", readings["ADJ"][0]
    if verb:
        return "verb", verb
    return "other", tok.text


def _resolve(tokens: list[Token]) -> None:
    """Pick noun / verb / adjective for ambiguous words (right to left: the right neighbour is decided)."""
    for i in range(len(tokens) - 1, -1, -1):
        tok = tokens[i]
        if not tok.kind.startswith("?"):
            continue
        tok.kind, tok.lemma = _pos(tokens, i)
        if tok.kind == "noun":
            tok.plural = tok.lemma != tok.text or tok.text in _PLURAL_WORDS
        if tok.kind == "verb" and tok.lemma in ("be", "have", "do"):
            tok.kind = "stop"
    for i in range(1, len(tokens)):  # a plural subject and its verb: "two dogs play in the snow", "three deer graze"
        tok, prev = tokens[i], tokens[i - 1]
        counted = i >= 2 and tokens[i - 2].kind == "number" and (tokens[i - 2].value or 0) > 1
        if (tok.kind == "noun" and not tok.plural and prev.kind == "noun" and (prev.plural or counted)
                and prev.text not in _PLURAL_MODIFIERS
                and "VERB" in _readings(tok.text) and _readings(tok.text)["VERB"][0] == tok.text):
            tok.kind, tok.lemma = "verb", _readings(tok.text)["VERB"][0]
    for i, tok in enumerate(tokens):  # the agent of a passive: "being eaten by a man"
        if tok.text == "by" and i >= 2 and tokens[i - 1].kind in ("verb", "adj") and tokens[i - 2].text in _BE:
            tok.kind, tok.passive_by = "stop", True


def tokenize(text: str, as_nouns: frozenset[str] = frozenset()) -> list[Token]:
    """``as_nouns``: colour words to read as the things they name (the other text's nouns: "olive", "orange")."""
    units = _merge(_words(text))
    tokens = [_classify(unit, i) for i, unit in enumerate(units)]
    for i, tok in enumerate(tokens):  # "pizza with olives" / "olive pizza"; right after an article it is a colour
        if (tok.kind == "colour" and (tok.text in as_nouns or _noun_lemma(tok.text) in as_nouns)
                and (i == 0 or units[i - 1] not in _ARTICLES)):
            tokens[i] = Token(tok.text, _noun_lemma(tok.text), "noun", i, plural=_noun_lemma(tok.text) != tok.text)
    _resolve(tokens)
    return tokens


# -- structure ---------------------------------------------------------------------------------

def analyse(text: str, as_nouns: frozenset[str] = frozenset()) -> Analysis:
    """Noun phrases, relations and actions of one caption."""
    tokens = tokenize(text, as_nouns)
    result = Analysis(tokens)
    pending_colours: list[str] = []
    pending_adjs: list[str] = []
    pending_count: int | None = None
    singular = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "colour":
            pending_colours.append(tok.lemma)
        elif tok.kind == "adj":
            pending_adjs.append(tok.lemma)
        elif tok.kind == "number":
            pending_count = tok.value
            singular = singular or tok.value == 1
        elif tok.text in _SINGULAR_DETERMINERS:
            singular = True
        elif tok.kind == "noun":
            j = i
            while j + 1 < len(tokens) and tokens[j + 1].kind == "noun":
                j += 1
            nouns = tokens[i:j + 1]
            head = nouns[-1]
            if head.lemma in FRAMING_NOUNS and j + 1 < len(tokens) and tokens[j + 1].text == "of":
                i = j + 1  # "a photo of", "a group of": the phrase is what follows
                continue
            if head.lemma in FRAMING_NOUNS and len(nouns) > 1:  # "a pizza slice" is about the pizza
                nouns, head = nouns[:-1], nouns[-2]
            elif head.lemma in FRAMING_NOUNS and pending_adjs and wordnet.senses(pending_adjs[-1]):
                pending_adjs, noun = pending_adjs[:-1], pending_adjs[-1]  # "a swing set" is about swings
                result.phrases.append(Phrase(
                    head=noun, modifiers=(), colours=frozenset(pending_colours), adjectives=frozenset(pending_adjs),
                    count=pending_count, singular=False, plural=True, start=head.index, end=head.index))
                pending_colours, pending_adjs, pending_count, singular = [], [], None, False
                i = j + 1
                continue
            if head.lemma in COLLECTIVE_PEOPLE and len(nouns) == 1:  # "a couple", "the trio": N people
                result.phrases.append(Phrase(
                    head="person", modifiers=(), colours=frozenset(pending_colours), adjectives=frozenset(pending_adjs),
                    count=COLLECTIVE_PEOPLE[head.lemma], singular=False, plural=True, start=head.index, end=head.index))
                result.collective.append(COLLECTIVE_PEOPLE[head.lemma])
            elif _coordinated_modifier(result, tokens, nouns):  # "a pepperoni and olive pizza"
                first = result.phrases.pop()
                result.phrases.append(Phrase(
                    head=head.lemma, modifiers=(first.head,) + tuple(n.lemma for n in nouns[:-1]),
                    colours=first.colours | frozenset(pending_colours), adjectives=first.adjectives | frozenset(pending_adjs),
                    count=first.count, singular=first.singular, plural=head.plural, start=first.start, end=head.index))
            elif head.lemma not in FRAMING_NOUNS:
                result.phrases.append(Phrase(
                    head=head.lemma, modifiers=tuple(n.lemma for n in nouns[:-1]),
                    colours=frozenset(pending_colours), adjectives=frozenset(pending_adjs), count=pending_count,
                    singular=singular and not head.plural, plural=head.plural, start=nouns[0].index, end=head.index,
                ))
            pending_colours, pending_adjs, pending_count, singular = [], [], None, False
            i = j
        elif tok.kind in ("verb", "relation") or tok.text in ("and", "with", "of"):
            if tok.text != "and" or not (pending_colours or pending_adjs):  # "black and white cat"
                pending_colours, pending_adjs, pending_count, singular = [], [], None, False
        i += 1
    _link(result)
    return result


def _coordinated_modifier(result: Analysis, tokens: list[Token], nouns: list[Token]) -> bool:
    """Whether ``nouns`` (a compound: "olive pizza") follows "X and" with nothing between, X a bare singular noun:
    then X describes the same thing ("pepperoni and olive pizza" is one pizza)."""
    if len(nouns) < 2 or not result.phrases or nouns[0].index < 2 or tokens[nouns[0].index - 1].text != "and":
        return False
    first = result.phrases[-1]
    if "VERB" in _readings(nouns[-1].text):  # "a bride and groom cut the cake": the last word is the verb
        return False
    return first.end == nouns[0].index - 2 and not first.modifiers and not first.plural and not first.count


def _phrase_before(result: Analysis, index: int) -> int | None:
    found = [k for k, p in enumerate(result.phrases) if p.end < index]
    return found[-1] if found else None


def _phrase_after(result: Analysis, index: int) -> int | None:
    return next((k for k, p in enumerate(result.phrases) if p.start > index), None)


def _link(result: Analysis) -> None:
    tokens = result.tokens
    for tok in tokens:
        if tok.kind == "relation":
            left, right = _phrase_before(result, tok.index), _phrase_after(result, tok.index)
            if left is not None and right is not None:
                result.relations.append((left, tok.lemma, right))
    for tok in tokens:
        if tok.kind != "verb" or tok.lemma in LIGHT_VERBS:
            continue
        subject, obj = _phrase_before(result, tok.index), _phrase_after(result, tok.index)
        if obj is not None:
            between = tokens[tok.index + 1:result.phrases[obj].start]
            if any(t.kind in ("relation", "verb") for t in between):
                obj = None
        agent = next((t for t in tokens[tok.index + 1:tok.index + 3] if t.passive_by), None)
        if agent is not None:  # passive: "a sandwich being eaten by a man" == "a man eating a sandwich"
            subject, obj = _phrase_after(result, agent.index), subject
        result.actions.append((subject, tok.lemma, obj))
