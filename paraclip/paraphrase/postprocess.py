"""Cleaning LLM outputs into one paraphrase, and deciding when an output must be re-sampled.

Chat models wrap answers in quotes, lead-ins ("Paraphrase:", "Here is a concise version:")
and extra sentences, sometimes after the closing quote ('"... shore." Hope it helps.').
``clean`` keeps the first line / sentence without them; ``rejection_reason`` says why a
cleaned output is unusable (empty, a copy of its input ignoring case and punctuation, a
restatement of the instruction prompt, a refusal, too long) or returns ``None``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

_QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb", "`": "`", "\u201e": "\u201c"}
_LEAD_INS = [
    re.compile(r"^(sure|certainly|of course|okay|ok|absolutely)\b[,.!:]*\s*", re.I),
    re.compile(r"^here(?:'s| is| are)\b[^:\n]{0,80}:\s*", re.I),
    re.compile(r"^(?:the\s+)?(?:a\s+)?(?:concise\s+|new\s+|possible\s+)?(?:paraphrased?|rephrased|rewritten|reworded|revised)"
               r"(?:\s+(?:caption|text|sentence|version|description))?(?:\s*\d+)?\s*(?:is)?\s*[:\-\u2013\u2014]\s*", re.I),
    re.compile(r"^(?:caption|answer|output|result|rewrite)(?:\s*\d+)?\s*[:\-\u2013\u2014]\s*", re.I),
    re.compile(r"^(?:[-*\u2022]|\d+[.)])\s+"),  # list bullets
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"\u201c(])")
_REFUSAL = re.compile(r"^(i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|as an ai|i'?m unable|i am unable)", re.I)


def clean(text: str | None) -> str:
    """The first paraphrase in ``text``: lead-ins, wrapping quotes, markdown and later lines removed."""
    if not text:
        return ""
    out = text.strip().replace("**", "")
    for _ in range(4):  # lead-ins can stack ("Sure! Here is a paraphrase: ...")
        before = out
        for pattern in _LEAD_INS:
            out = pattern.sub("", out, count=1).lstrip()
        if out == before:
            break
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    out = lines[0] if lines else ""
    out = _quoted_answer(out)
    out = _strip_quotes(out)
    first = _SENTENCE_END.split(out, maxsplit=1)[0]
    if len(first.split()) >= 2:  # a one-word "sentence" is more likely an abbreviation than the answer
        out = first
    return " ".join(_strip_quotes(out).split())


def _quoted_answer(text: str) -> str:
    """'"A dog sprints along the shore." Hope it helps.' -> the quoted sentence, without the chatter after it."""
    if len(text) < 2 or text[0] not in _QUOTE_PAIRS:
        return text
    close = _QUOTE_PAIRS[text[0]]
    end = text.find(close, 1)
    while close == "'" and end != -1 and re.match(r"\w", text[end + 1:end + 2] or " "):  # "dog's", not a quote
        end = text.find(close, end + 1)
    if end == -1:
        return text
    body, rest = text[1:end], text[end + 1:]
    if len(body.split()) < 2 or not rest.strip(" .!?"):
        return text  # '"Stop" sign on a pole', or a quote closed at the end (handled by _strip_quotes)
    ended = body.rstrip().endswith((".", "!", "?")) or rest[:1] in (".", "!", "?")
    if not ended or not re.match(r"^[.!?]?\s", rest):
        return text  # '"Happy Birthday" banner on a wall': the quote is part of the sentence
    return (body.strip() + rest[0]).strip() if rest[0] in ".!?" else body.strip()


def _strip_quotes(text: str) -> str:
    text = text.strip()
    for _ in range(2):
        if len(text) >= 2 and text[0] in _QUOTE_PAIRS:
            close = _QUOTE_PAIRS[text[0]]
            body, tail = text[1:], ""
            # allow '"A dog runs".' : closing quote followed only by punctuation
            m = re.match(r"^(.*)" + re.escape(close) + r"([.!?]?)$", body, re.S)
            if m and close not in m.group(1) and (close != "'" or not re.search(r"\w'\w", m.group(1))):
                body, tail = m.group(1), m.group(2)
                text = (body.strip() + tail).strip()
                continue
        break
    return text


def normalize(text: str) -> str:
    """Lower-case, punctuation removed, whitespace collapsed: what 'the same text' means for copies."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(text.split())


def is_copy(output: str, source: str) -> bool:
    return normalize(output) == normalize(source)


def repeats_instruction(output: str, instructions: Sequence[str]) -> bool:
    """Whether ``output`` restates the prompt: a fixed part of a template ('Rewrite this caption:',
    'concisely while preserving the meaning') or a sentence of the system message (3+ words each)."""
    out = f" {normalize(output)} "
    for text in instructions:
        for part in re.split(r"\{\}|(?<=[.!?:])\s+", text or ""):
            words = normalize(part)
            if len(words.split()) >= 3 and f" {words} " in out:
                return True
    return False


def rejection_reason(output: str, sources: list[str], max_words: int | None = None,
                     instructions: Sequence[str] = ()) -> str | None:
    """Why ``output`` (already cleaned) cannot be used as a paraphrase of ``sources[0]``; None when it can.

    ``instructions`` are the prompt's templates and system message: a reply that repeats them is
    rejected (small models sometimes echo the request instead of answering it).
    """
    if not normalize(output):
        return "empty output"
    for i, source in enumerate(sources):
        if is_copy(output, source):
            return "copy of the input" if i == 0 else "copy of the caption"
    if repeats_instruction(output, instructions):
        return "repeats the instruction prompt"
    if _REFUSAL.match(output):
        return "refusal"
    n = len(output.split())
    if max_words is not None and n > max_words:
        return f"too long ({n} words > {max_words})"
    return None
