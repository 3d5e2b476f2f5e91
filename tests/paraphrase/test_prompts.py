import pytest

from paraclip.paraphrase.prompts import PAPER_STEP1, PAPER_STEP2, PRESETS, fill
from paraclip.errors import UnknownNameError


def test_paper_preset_is_verbatim_from_the_release():
    paper = PRESETS.get("paper")
    assert paper.step1 == 'Paraphrase the given caption "{}" concisely while preserving the meaning.'
    assert paper.step2 == ('Paraphrase the given text "{}" concisely while preserving the meaning and avoiding '
                           'use of existing words.')
    assert (paper.sampling.temperature, paper.sampling.top_p, paper.sampling.max_tokens) == (1.0, 0.1, 512)
    assert paper.system is None
    assert paper.messages(1, "a dog") == [{"role": "user", "content": PAPER_STEP1.replace("{}", "a dog")}]
    assert paper.messages(2, "a hound") == [{"role": "user", "content": PAPER_STEP2.replace("{}", "a hound")}]


def test_small_model_preset_has_instruction_few_shot_and_its_sampling():
    small = PRESETS.get("small-model")
    msgs = small.messages(2, "A dog sprints on sand.")
    assert msgs[0]["role"] == "system"
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[-1]["content"].endswith("A dog sprints on sand.")
    assert (small.sampling.temperature, small.sampling.top_p, small.sampling.max_tokens) == (0.3, 0.9, 48)


def test_fill_keeps_other_braces_and_caption_braces_literal():
    assert fill('Say "{}" {not a field}', "a {weird} caption") == 'Say "a {weird} caption" {not a field}'


def test_overrides_replace_only_given_fields():
    paper = PRESETS.get("paper")
    changed = paper.with_overrides(temperature=0.7, step1="Rephrase: {}", top_p=None)
    assert changed.sampling.temperature == 0.7 and changed.sampling.top_p == 0.1
    assert changed.step1 == "Rephrase: {}" and changed.step2 == paper.step2


def test_template_without_placeholder_is_rejected():
    with pytest.raises(ValueError, match="exactly once"):
        PRESETS.get("paper").with_overrides(step1="no placeholder")


def test_unknown_preset_suggests_close_match():
    with pytest.raises(UnknownNameError, match=r"'papr'\. Did you mean 'paper'\?"):
        PRESETS.get("papr")


def test_paper_preset_names_the_papers_model_and_its_replacement():
    import inspect

    from paraclip.paraphrase.backends.openai_compat import OpenAICompatibleBackend
    from paraclip.paraphrase.prompts import PAPER_MODEL, PRESETS

    default_model = inspect.signature(OpenAICompatibleBackend).parameters["model"].default
    description = PRESETS.get("paper").description
    assert PAPER_MODEL == "gpt-3.5-turbo-0301" and PAPER_MODEL in description and "retired" in description
    assert f"{default_model}," in description  # the model that replaces it by default
