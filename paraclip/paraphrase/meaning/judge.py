"""An LLM as a yes/no judge of meaning changes (opt-in; ours).

The judge asks any paraphrasing backend (the local GGUF model, an OpenAI-compatible API)
whether a paraphrase describes the same picture as its caption, with greedy decoding and a
few tokens of output. It costs one request per paraphrase, so it is not the default: the
cheap lexical check (:mod:`paraclip.paraphrase.meaning.rules`) is. Both were measured on the same
labelled set; the figures are in the README.
"""

from __future__ import annotations

import re
from typing import Sequence

from paraclip.paraphrase.backends.base import Backend, ChatRequest
from paraclip.paraphrase.meaning.rules import MeaningCheck
from paraclip.paraphrase.prompts import Sampling

JUDGE_VERSION = "judge-v1"
JUDGE_SYSTEM = (
    "You check rewritten image captions. A rewrite is faithful when it describes exactly the same picture: the "
    "same objects, colours, numbers, sizes and positions, the same people doing the same things. Different words "
    "for the same thing are fine (couch/sofa, man/guy). A different object, colour, number, position or action, "
    "or an object that was added or left out, makes it unfaithful. Answer with one word: yes or no."
)
JUDGE_TEMPLATE = 'Caption: "{caption}"\nRewrite: "{paraphrase}"\nIs the rewrite faithful?'
JUDGE_SAMPLING = Sampling(temperature=0.0, top_p=1.0, max_tokens=4)
_ANSWER = re.compile(r"\b(yes|no)\b", re.I)


def judge_request(caption: str, paraphrase: str) -> ChatRequest:
    messages = [{"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": JUDGE_TEMPLATE.format(caption=caption, paraphrase=paraphrase)}]
    return ChatRequest.from_messages(messages, JUDGE_SAMPLING)


def parse_verdict(reply: str | None) -> bool | None:
    """True when the judge says the meaning changed ("no"), False for "yes", None when it said neither."""
    found = _ANSWER.search(reply or "")
    if found is None:
        return None
    return found.group(1).lower() == "no"


class LLMJudge:
    """``judge(caption, paraphrase) -> MeaningCheck``; ``judge.many(pairs)`` sends them as one batch."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def many(self, pairs: Sequence[tuple[str, str]]) -> list[MeaningCheck]:
        completions = self.backend.generate([judge_request(c, p) for c, p in pairs])
        out = []
        for completion in completions:
            verdict = parse_verdict(completion.text) if completion.ok else None
            reason = f"LLM judge ({self.backend.model}): not the same picture" if verdict else None
            out.append(MeaningCheck(bool(verdict), (reason,) if reason else ()))
        return out

    def __call__(self, caption: str, paraphrase: str) -> MeaningCheck:
        return self.many([(caption, paraphrase)])[0]
