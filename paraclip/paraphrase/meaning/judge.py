"""An LLM as a yes/no judge of meaning changes: the request and the verdict parser (ours).

``bench/meaning_flag.py --judge-model`` asks any paraphrasing backend whether a paraphrase describes
the same picture as its caption (greedy decoding, a few tokens). Measured on the labelled set, alone
and as a second opinion on the rows the lexical check flags, it lost recall (it misses dropped
objects), so no code path uses it; the figures are in the README.
"""

from __future__ import annotations

import re

from paraclip.paraphrase.backends.base import ChatRequest
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
