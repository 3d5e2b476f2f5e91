"""A targeted LLM second opinion on the word swaps the lexical check flags (ours; opt-in).

The lexical check (:mod:`.rules`) is reliable on counts, colours, relations, attributes and dropped objects, but
it flags every object or action word it cannot relate through its word lists and WordNet, and fresh outputs
(API-style step-2 texts above all) use rare or vague words for the same thing (``basket -> hamper``,
``farmer -> grower``). For a flagged pair whose only reasons are such swaps (``object basket -> hamper``,
``action brush -> wash``), an LLM is asked one narrow question per swapped pair: does the new word name the
same thing, or a broader word for it, in this picture? The flag is cleared only when every swap is answered
"yes"; any other reason (a count, a colour, a dropped or added object, a relation...) keeps the flag without a
question. A swap WordNet already knows is narrower or a sister (``dog -> puppy``, ``shoe -> boot``) keeps the flag
too (the "gate"). Greedy decoding, a couple of tokens, any backend (local or API).

Measured with Qwen2.5-Coder-1.5B (README): it answers "yes" to rewordings and to many changes alike (``dog -> pup``,
``shelf -> rack``), so it trades recall for precision about one for one; no code path uses it.

:class:`ReplyCache` keeps the replies in a JSONL file keyed by (model, prompt version, the exact question), so a
bench or a test can replay them without the model. Measured figures are in the README ("Meaning-change flags").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from paraclip.paraphrase.backends.base import ChatRequest
from paraclip.paraphrase.meaning import wordnet
from paraclip.paraphrase.meaning.rules import MeaningCheck
from paraclip.paraphrase.prompts import Sampling

#: the question asked per swapped pair, by prompt version: (system message, template for an object pair, for an
#: action pair). The questions leave the caption out: with the caption and rewrite beside them the 1.5B model
#: answered "yes" to every pair, dog -> cat included (README).
PROMPTS = {
    "pair-v1": ("You answer questions about words in photo captions with one word: yes or no.",
                'In a photo, could you call any {old} "a {new}"?',
                'In a photo, is someone who is {old} also {new}?'),
    "pair-every-v1": ("Answer with one word: yes or no.", "Is every {old} a {new}?",
                      "Is everyone who is {old} also {new}?"),
}
PAIR_VERSION = "pair-v1"
#: reason kinds the question is asked about (the rest keep the rule's flag)
ASKED_KINDS = ("object", "action")
PAIR_SAMPLING = Sampling(temperature=0.0, top_p=1.0, max_tokens=3)
_ANSWER = re.compile(r"\b(yes|no)\b", re.I)
_SWAP = re.compile(r"^(object|action) (.+?) -> (.+)$")


@dataclass(frozen=True)
class Swap:
    kind: str  # "object" or "action"
    old: str
    new: str
    reason: str


def swaps(check: MeaningCheck) -> list[Swap] | None:
    """The swapped word pairs behind a flag, or None when some reason is not a swap that is asked about (then
    the rule's flag stands) or nothing was flagged."""
    if not check.changed or not check.reasons:
        return None
    found = []
    for reason in check.reasons:
        m = _SWAP.match(reason)
        if m is None or m.group(1) not in ASKED_KINDS:
            return None
        found.append(Swap(m.group(1), m.group(2), m.group(3), reason))
    return found


def known_narrower(swap: Swap) -> bool:
    """Whether WordNet already says the new word is narrower than the old one or a sister of it (``dog -> puppy``,
    ``shoe -> boot``, ``sheep -> goat``), or a young animal for one that is not (``dog -> pup``): a change by the
    labelling rules, so no question is asked."""
    pos = "noun" if swap.kind == "object" else "verb"
    old, new = (_noun(swap.old), _noun(swap.new)) if pos == "noun" else (swap.old, swap.new)
    if not wordnet.senses(old, pos) or not wordnet.senses(new, pos):
        return False
    if pos == "noun" and wordnet.is_young(new) and not wordnet.is_young(old):
        return True
    return wordnet.relation(old, new, pos) == "narrower" or (wordnet.relation(old, new, pos) is None
                                                              and wordnet.sisters(old, new, pos, 3))


def _noun(text: str) -> str:
    """The WordNet noun for a phrase: the phrase itself ("fire hydrant", "street light" -> "streetlight") or its
    last word."""
    joined = text.replace(" ", "")
    for candidate in (text, joined):
        if wordnet.senses(candidate):
            return candidate
    return text.split()[-1]


def _ing(verb: str) -> str:
    from lemminflect import getInflection

    forms = getInflection(verb, "VBG")
    return forms[0] if forms else verb + "ing"


def pair_request(swap: Swap, version: str = PAIR_VERSION) -> ChatRequest:
    system, object_template, action_template = PROMPTS[version]
    if swap.kind == "object":
        user = object_template.format(old=swap.old, new=swap.new)
    else:
        user = action_template.format(old=_ing(swap.old), new=_ing(swap.new))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return ChatRequest.from_messages(messages, PAIR_SAMPLING)


def parse_same(reply: str | None) -> bool | None:
    """True when the reply says the new word names the same thing ("yes"), False for "no", None for neither."""
    found = _ANSWER.search(reply or "")
    if found is None:
        return None
    return found.group(1).lower() == "yes"


Ask = Callable[[Sequence[ChatRequest]], Sequence[str | None]]


def questions(check: MeaningCheck, gate: bool = True) -> list[Swap] | None:
    """The swaps to ask about, or None when the flag stands without a question (not only swaps, or with
    ``gate`` a swap WordNet already knows is narrower or a sister)."""
    found = swaps(check)
    if not found or (gate and any(known_narrower(s) for s in found)):
        return None
    return found


def second_opinion(check: MeaningCheck, ask: Ask, version: str = PAIR_VERSION, gate: bool = True) -> MeaningCheck:
    """``check`` after the second opinion: cleared (``changed=False``, the swaps kept in ``reasons`` with a
    ``cleared:`` prefix) when every swap is answered "yes"; otherwise ``check`` unchanged. ``ask`` answers a
    list of requests with one reply text (or None) each; an unreadable reply keeps the flag."""
    found = questions(check, gate)
    if not found:
        return check
    replies = ask([pair_request(s, version) for s in found])
    if all(parse_same(r) for r in replies):
        return MeaningCheck(False, tuple(f"cleared: {s.reason}" for s in found))
    return check


def backend_asker(backend) -> Ask:
    """An :data:`Ask` on any paraphrasing backend (``generate``); a failed request gives None."""
    def ask(requests: Sequence[ChatRequest]) -> list[str | None]:
        return [c.text if c.ok else None for c in backend.generate(list(requests))]
    return ask


class ReplyCache:
    """Replies to second-opinion requests in a JSONL file, keyed by (model, prompt version, question text)."""

    def __init__(self, path: str | Path, model: str, version: str = PAIR_VERSION):
        self.path, self.model, self.version = Path(path), model, version
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if row.get("model") == model and row.get("version") == version:
                    self.rows[row["question"]] = row

    @staticmethod
    def question(request: ChatRequest) -> str:
        return request.messages[-1][1]

    def get(self, request: ChatRequest) -> str | None:
        row = self.rows.get(self.question(request))
        return None if row is None else row["reply"]

    def __contains__(self, request: ChatRequest) -> bool:
        return self.question(request) in self.rows

    def add(self, request: ChatRequest, reply: str | None, seconds: float | None = None) -> None:
        row = {"model": self.model, "version": self.version, "question": self.question(request), "reply": reply,
               "seconds": seconds}
        self.rows[row["question"]] = row
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def asker(self, fallback: Ask | None = None) -> Ask:
        """Answers from the cache; requests it lacks go to ``fallback`` (and are stored) or give None."""
        def ask(requests: Sequence[ChatRequest]) -> list[str | None]:
            missing = [r for r in requests if r not in self]
            if missing and fallback is not None:
                for r, reply in zip(missing, fallback(missing)):
                    self.add(r, reply)
            return [self.get(r) for r in requests]
        return ask


def all_requests(checks: Iterable[MeaningCheck], version: str = PAIR_VERSION, gate: bool = True) -> list[ChatRequest]:
    """Every second-opinion request the ``checks`` need, each once."""
    out: dict[ChatRequest, None] = {}
    for check in checks:
        for s in questions(check, gate) or ():
            out[pair_request(s, version)] = None
    return list(out)
