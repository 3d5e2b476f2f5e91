import dataclasses

import pytest

from paraclip.errors import DataError
from paraclip.paraphrase.config import _RULES, CaptionInput, ParaphraseConfig


def test_every_field_has_a_rule_and_the_defaults_pass():
    fields = {f.name for f in dataclasses.fields(ParaphraseConfig) if f.name != "input"}
    assert set(_RULES) == fields | {f.name for f in dataclasses.fields(CaptionInput)}
    assert ParaphraseConfig().validate() is not None


def test_input_settings_are_apart_but_named_flat_as_before(tmp_path):
    (tmp_path / "c.yaml").write_text("caption_column: text\nskip_bad_lines: true\ntemperature: 0.5\n")
    config = ParaphraseConfig.from_yaml(tmp_path / "c.yaml")
    assert config.input == CaptionInput(caption_column="text", skip_bad_lines=True) and config.temperature == 0.5
    flat = config.to_dict()
    assert "input" not in flat and flat["caption_column"] == "text" and flat["temperature"] == 0.5
    assert ParaphraseConfig.from_dict(flat) == config  # what a summary records reads back
    with pytest.raises(DataError, match="cfg.yaml: caption_column must be a column name"):
        ParaphraseConfig.from_dict({"caption_column": ""}, source="cfg.yaml")


@pytest.mark.parametrize("field,value,expected", [
    ("max_words", "many", "max_words must be a whole number >= 1; got 'many'"),
    ("step2_prompt", "no placeholder", "step2_prompt must be text with '{}' exactly once"),
    ("step1_prompt", "{} and {}", "step1_prompt must be text with '{}' exactly once"),
    ("top_p", 0, "top_p must be a number above 0 and at most 1"),
    ("temperature", float("nan"), "temperature must be a number from 0 to 2"),
    ("max_resamples", -1, "max_resamples must be a whole number >= 0"),
    ("concurrency", 2.5, "concurrency must be a whole number >= 1"),
    ("use_cache", "yes", "use_cache must be true or false"),
    ("limit", True, "limit must be a whole number >= 1"),
])
def test_a_bad_value_names_the_source_and_the_field(field, value, expected):
    with pytest.raises(DataError, match="^cfg.yaml: " + expected.replace("(", r"\(").replace(")", r"\)")
                       .replace("{", r"\{").replace("}", r"\}")):
        ParaphraseConfig.from_dict({field: value}, source="cfg.yaml")


def test_yaml_errors_name_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("max_words: [1, 2]\n")
    with pytest.raises(DataError, match=r"c\.yaml: max_words must be a whole number"):
        ParaphraseConfig.from_yaml(tmp_path / "c.yaml")
