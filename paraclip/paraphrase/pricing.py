"""Cost estimates before a batch run: tokens estimated from text, a dated per-model price table.

Prices are OpenAI's standard (realtime) rates in USD per 1M tokens, as listed on
https://openai.com/api/pricing (quoted by several dated copies of that page, March–June 2026;
gpt-3.5-turbo is the 0125 rate). The Batch API costs 50 % of the realtime rate (OpenAI Batch
API guide: "50% cost discount compared to synchronous APIs"). Prices change: pass your own
with ``prices=(input, output)`` / ``--price-input``, ``--price-output`` (realtime USD per 1M tokens).

Token counts are estimated, not counted (no tokenizer is needed): about 4 characters per
token for English text (OpenAI's rule of thumb) plus a few tokens of chat formatting per
message. The output of a paraphrase is estimated from the length of the text it rewrites.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

from paraclip.paraphrase.backends.base import ChatRequest

PRICES_SOURCE = "https://openai.com/api/pricing (standard rates, as listed March-June 2026)"
BATCH_DISCOUNT = 0.5  # Batch API price / realtime price
#: model name prefix -> (input, output) USD per 1M tokens at realtime rates; the longest prefix wins
PRICES: dict[str, tuple[float, float]] = {
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators
TOKENS_PER_REQUEST = 3  # the reply's priming


def price_for(model: str, override: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """Realtime (input, output) USD per 1M tokens for ``model``: the override, else the longest matching prefix."""
    if override is not None:
        return (float(override[0]), float(override[1]))
    matches = [prefix for prefix in PRICES if model == prefix or model.startswith(prefix + "-")]
    return PRICES[max(matches, key=len)] if matches else None


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def request_tokens(request: ChatRequest) -> int:
    return TOKENS_PER_REQUEST + sum(TOKENS_PER_MESSAGE + text_tokens(content) for _, content in request.messages)


def reply_tokens(rewritten_text: str, max_tokens: int) -> int:
    """A paraphrase is about as long as its input; a little more for punctuation and the odd lead-in."""
    return min(max_tokens, math.ceil(1.3 * text_tokens(rewritten_text)) + 4)


@dataclass
class CostEstimate:
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    price: tuple[float, float] | None  # realtime USD per 1M tokens (input, output)
    price_source: str

    @property
    def realtime_usd(self) -> float | None:
        if self.price is None:
            return None
        return (self.input_tokens * self.price[0] + self.output_tokens * self.price[1]) / 1e6

    @property
    def batch_usd(self) -> float | None:
        realtime = self.realtime_usd
        return None if realtime is None else realtime * BATCH_DISCOUNT

    def describe(self, batch: bool = True) -> str:
        """The estimate in one paragraph: at the Batch API's price (``batch``) or the realtime one."""
        tokens = (f"{self.requests} requests, about {self.input_tokens:,} input + {self.output_tokens:,} output "
                  f"tokens (estimated from text length)")
        if self.price is None:
            return (f"{tokens}. No price is known for model {self.model!r}: give --price-input and --price-output "
                    f"(USD per 1M tokens at realtime rates) for a cost estimate.")
        cost = (f"about ${self.batch_usd:,.4f} with the Batch API (50 % of the realtime ${self.realtime_usd:,.4f}; "
                if batch else f"about ${self.realtime_usd:,.4f} at realtime prices (")
        return (f"{tokens}: {cost}{self.model} at ${self.price[0]:g} / ${self.price[1]:g} per 1M input / output "
                f"tokens, {self.price_source}). Re-samples of rejected outputs and retries of failed requests are extra.")

    def to_dict(self) -> dict:
        return {**asdict(self), "realtime_usd": self.realtime_usd, "batch_usd": self.batch_usd}


def estimate_cost(requests: Iterable[tuple[ChatRequest, str]], model: str,
                  prices: tuple[float, float] | None = None) -> CostEstimate:
    """Estimate for (request, text it rewrites) pairs."""
    n = tokens_in = tokens_out = 0
    for request, rewritten in requests:
        n += 1
        tokens_in += request_tokens(request)
        tokens_out += reply_tokens(rewritten, request.max_tokens)
    source = "your prices" if prices is not None else PRICES_SOURCE
    return CostEstimate(model, n, tokens_in, tokens_out, price_for(model, prices), source)
