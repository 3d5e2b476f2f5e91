"""An LLM as a yes/no judge of meaning changes: the requests and the verdict parser (ours).

``bench/meaning_flag.py --judge-model`` asks any paraphrasing backend whether a paraphrase describes
the same picture as its caption (greedy decoding, a few tokens). Two prompt versions:

- ``judge-v1``: a short definition. Measured with Qwen2.5-Coder-1.5B on the labelled set, alone and as a
  second opinion on the rows the lexical check flags, it lost recall (it misses dropped objects).
- ``judge-v2``: the labelling rules of ``tests/paraphrase/data/meaning/README.md`` ("How it was labelled"),
  written as instructions, so a capable model judges by the rules the sets were labelled with. This is the
  prompt of ``--meaning-judge`` (:func:`apply_verdicts`): the run's own LLM judges each paraphrase, and its
  verdict replaces the lexical flag (the lexical reasons stay in the record, for review).

Figures for both are in the README.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from paraclip.errors import DataError
from paraclip.paraphrase.backends.base import ChatRequest
from paraclip.paraphrase.meaning.rules import meaning_signals
from paraclip.paraphrase.prompts import Sampling
from paraclip.paraphrase.records import status_of


@dataclass(frozen=True)
class JudgePrompt:
    version: str
    system: str
    template: str  # the user message; {caption} and {paraphrase} are filled in


JUDGE_PROMPTS: dict[str, JudgePrompt] = {p.version: p for p in (
    JudgePrompt(
        "judge-v1",
        "You check rewritten image captions. A rewrite is faithful when it describes exactly the same picture: the "
        "same objects, colours, numbers, sizes and positions, the same people doing the same things. Different words "
        "for the same thing are fine (couch/sofa, man/guy). A different object, colour, number, position or action, "
        "or an object that was added or left out, makes it unfaithful. Answer with one word: yes or no.",
        'Caption: "{caption}"\nRewrite: "{paraphrase}"\nIs the rewrite faithful?'),
    JudgePrompt(
        "judge-v2",
        "You check rewritten image captions. A rewrite is faithful when it still describes exactly the caption's "
        "picture.\n"
        "Unfaithful: it names another object, also a narrower or more specific one (a man -> a chef, a dog -> a "
        "puppy, a boat -> a sailboat); it drops or adds an object; it changes, drops or adds a colour; it changes a "
        "count (three birds -> birds, trees -> a tree); it changes an attribute (clay court -> grass court) or moves "
        "it to another object; it changes a spatial relation or who does what to whom; it changes, adds or garbles "
        "an action.\n"
        "Faithful: other words for the same thing (couch -> sofa, man -> guy, red -> crimson); broader words (man -> "
        "person, cars -> vehicles, laptop -> computer); a dropped adjective that is not a colour (a tall tree -> a "
        "tree); a description the noun already implies (a grassy field -> a green grassy area); a dropped framing "
        "phrase (a photo of); another tense or word order.\n"
        "Answer with one word: yes (faithful) or no (unfaithful).",
        'Caption: "{caption}"\nRewrite: "{paraphrase}"\nIs the rewrite faithful?'),
)}
JUDGE_VERSION = "judge-v1"  # the version the bench asks by default (its replies are cached in the repository)
RUN_JUDGE_VERSION = "judge-v2"  # the version --meaning-judge asks
# measured on the fourth blind set (README: "Meaning-change flags"): a model under 3B parameters judges worse than
# the lexical check
SMALL_JUDGE_WARNING = ("--meaning-judge with a small local model: Qwen2.5-Coder-1.5B as the judge found 79 % of the "
                       "meaning changes at 60 % precision on a blind labelled set, where the default lexical check "
                       "found 94 % at 52 %. The judge is for capable (API) models; leave it off here.")
JUDGE_SAMPLING = Sampling(temperature=0.0, top_p=1.0, max_tokens=4)
_ANSWER = re.compile(r"\b(yes|no)\b", re.I)


def judge_request(caption: str, paraphrase: str, version: str = JUDGE_VERSION) -> ChatRequest:
    prompt = JUDGE_PROMPTS[version]
    messages = [{"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.template.format(caption=caption, paraphrase=paraphrase)}]
    return ChatRequest.from_messages(messages, JUDGE_SAMPLING)


def parse_verdict(reply: str | None) -> bool | None:
    """True when the judge says the meaning changed ("no"), False for "yes", None when it said neither."""
    found = _ANSWER.search(reply or "")
    if found is None:
        return None
    return found.group(1).lower() == "no"


def apply_verdicts(quality: dict[str, Any], replies: dict[int, str | None], judge: str) -> None:
    """Let the judge's replies (per step; None = the request failed) decide the meaning flags in ``quality``.

    Per judged step: ``meaning_judge_<step>`` keeps the reply, ``meaning_lexical_<step>`` the lexical check's
    reason (or None), and ``meaning_changed_<step>`` becomes the judge's verdict. A reply that says neither yes nor
    no, or a failed request, keeps the lexical flag for that step, so no paraphrase goes unchecked; the method
    says how many steps that was."""
    fallback = 0
    for step, reply in sorted(replies.items()):
        lexical_reason = quality.get(f"meaning_reason_{step}")
        quality[f"meaning_judge_{step}"] = None if reply is None else reply.strip()[:80]
        quality[f"meaning_lexical_{step}"] = lexical_reason
        verdict = parse_verdict(reply)
        if verdict is None:
            fallback += 1
            continue
        quality[f"meaning_changed_{step}"] = verdict
        quality[f"meaning_reason_{step}"] = (lexical_reason or "the judge: not faithful") if verdict else None
    quality["meaning_changed"] = bool(quality.get("meaning_changed_1") or quality.get("meaning_changed_2"))
    method = f"llm-{RUN_JUDGE_VERSION} ({judge})"
    quality["meaning_method"] = method + (f"; lexical for {fallback} step(s) without a verdict" if fallback else "")


def check_judge_backend(config, runs_batches: bool) -> None:
    """``--meaning-judge`` asks the model one request per paraphrase after it is written; a Batch API run returns
    whole files a day later, so the two do not go together (yet): say what to do instead."""
    if config.meaning_judge and runs_batches:
        raise DataError("--meaning-judge needs a realtime backend: the Batch API answers whole files, up to a day "
                        "later. Run the batch without it, then rerun on the finished output with the same model "
                        "over the realtime API (--backend openai --meaning-judge): it judges the records already "
                        "there and paraphrases nothing again.")


def judge_existing(record: dict[str, Any], paraphraser) -> bool:
    """``--meaning-judge`` on a record already in the output (read back as its JSON object, changed in place):
    judge it if it has both paraphrases and no reply yet for a step (never judged, or its request failed: a rerun
    asks again). A record that ``--drop-changed`` filtered on the lexical flag goes back to ``ok`` when the judge
    finds both texts faithful (``--drop-changed`` then decides again on the judge's flags). A record is changed only
    when both replies came back, so a stopped or failing run leaves it to be judged next time. Returns whether the
    record changed."""
    quality = record.setdefault("quality", {})
    dropped = status_of(record) == "filtered" and str(record.get("error") or "").endswith("(--drop-changed)")
    p1, p2 = record.get("paraphrase_1"), record.get("paraphrase_2")
    answered = all(quality.get(f"meaning_judge_{step}") is not None for step in (1, 2))
    if not (status_of(record) == "ok" or dropped) or not (p1 and p2) or answered:
        return False
    caption = record.get("caption") or ""
    replies = paraphraser.judge(caption, {1: p1, 2: p2})
    if paraphraser.stopping.is_set() or len(replies) < 2 or None in replies.values():
        return False
    if "meaning_changed" not in quality or "meaning_lexical_1" in quality:  # start from the lexical flags (again)
        quality.update(meaning_signals(caption, p1, p2))
    apply_verdicts(quality, replies, f"{paraphraser.backend.kind}:{paraphraser.backend.model}")
    if dropped and not quality["meaning_changed"]:
        record["status"], record["error"] = "ok", None
    return True
