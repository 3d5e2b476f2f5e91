import pytest

from paraclip.paraphrase.backends.base import ChatRequest
from paraclip.paraphrase.pricing import BATCH_DISCOUNT, estimate_cost, price_for, request_tokens
from paraclip.paraphrase.prompts import PRESETS


def test_prices_match_the_longest_model_prefix_and_can_be_overridden():
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)  # a dated snapshot of the same model
    assert price_for("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_for("gpt-4.1-nano") == (0.10, 0.40)
    assert price_for("my-finetune") is None
    assert price_for("my-finetune", (1, 2)) == (1.0, 2.0)


def test_estimate_counts_chat_tokens_and_halves_the_realtime_price():
    preset = PRESETS.get("paper")
    caption = "a dog runs along the beach with a red ball"  # 42 characters
    request = ChatRequest.from_messages(preset.messages(1, caption), preset.sampling)
    text = request.messages[0][1]
    assert request_tokens(request) == 3 + 4 + -(-len(text) // 4)
    estimate = estimate_cost([(request, caption)] * 1000, "gpt-4o-mini")
    assert estimate.requests == 1000 and estimate.output_tokens == 1000 * (-(-11 * 13 // 10) + 4)
    realtime = (estimate.input_tokens * 0.15 + estimate.output_tokens * 0.60) / 1e6
    assert estimate.realtime_usd == pytest.approx(realtime) and estimate.batch_usd == pytest.approx(realtime * BATCH_DISCOUNT)
    assert "$" in estimate.describe() and "openai.com/api/pricing" in estimate.describe()
    unknown = estimate_cost([(request, caption)], "local-llama")
    assert unknown.batch_usd is None and "--price-input" in unknown.describe()
