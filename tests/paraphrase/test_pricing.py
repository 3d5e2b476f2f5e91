import pytest

from paraclip.paraphrase.backends.base import ChatRequest
from paraclip.paraphrase.pricing import estimate_cost, price_for
from paraclip.paraphrase.prompts import PRESETS


def test_prices_match_the_longest_model_prefix_and_can_be_overridden():
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)  # a dated snapshot of the same model
    assert price_for("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_for("gpt-4.1-nano") == (0.10, 0.40)
    assert price_for("my-finetune") is None
    assert price_for("my-finetune", (1, 2)) == (1.0, 2.0)


def test_estimate_counts_chat_tokens_and_halves_the_realtime_price():
    """A worked example, figures computed by hand: one 40-character message is 3 (reply priming) + 4
    (message framing) + 10 (40 characters / 4) = 17 input tokens; a 20-character text to rewrite gives
    ceil(1.3 * 5) + 4 = 11 output tokens. 1,000 such requests on gpt-4o-mini ($0.15 / $0.60 per 1M):
    17,000 x 0.15e-6 + 11,000 x 0.60e-6 = $0.00915 realtime, $0.004575 with the Batch API."""
    request = ChatRequest(messages=(("user", "x" * 40),), temperature=1.0, top_p=1.0, max_tokens=64)
    estimate = estimate_cost([(request, "y" * 20)] * 1000, "gpt-4o-mini")
    assert (estimate.requests, estimate.input_tokens, estimate.output_tokens) == (1000, 17_000, 11_000)
    assert estimate.realtime_usd == pytest.approx(0.00915) and estimate.batch_usd == pytest.approx(0.004575)
    assert "$0.0046 with the Batch API" in estimate.describe() and "openai.com/api/pricing" in estimate.describe()
    assert "$0.0092 at realtime prices" in estimate.describe(batch=False)
    capped = ChatRequest(messages=(("user", "x"),), temperature=1.0, top_p=1.0, max_tokens=8)
    assert estimate_cost([(capped, "y" * 400)], "gpt-4o-mini").output_tokens == 8  # never above max_tokens
    unknown = estimate_cost([(request, "y" * 20)], "local-llama")
    assert unknown.batch_usd is None and "--price-input" in unknown.describe()


def test_a_real_paper_prompt_costs_cents_per_thousand_captions():
    """Order of magnitude on the paper's own prompt: 1,000 captions at step 1 on gpt-4o-mini cost well
    under a dollar (about 100 tokens per request)."""
    preset = PRESETS.get("paper")
    caption = "a dog runs along the beach with a red ball"
    request = ChatRequest.from_messages(preset.messages(1, caption), preset.sampling)
    estimate = estimate_cost([(request, caption)] * 1000, "gpt-4o-mini")
    assert 30_000 < estimate.input_tokens < 300_000 and 0.001 < estimate.batch_usd < 1.0