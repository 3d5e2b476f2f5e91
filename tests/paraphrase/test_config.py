"""ParaphraseConfig's settings: a bad value is refused naming the source (file and line, or the option), the
field and what is allowed; good values pass; a YAML config and the command line merge, the options given
overriding the file both ways."""

import argparse

import pytest

from paraclip.commands import paraphrase as command
from paraclip.errors import ConfigError, DataError
from paraclip.paraphrase.config import CaptionInput, ParaphraseConfig


def test_the_defaults_and_good_values_pass():
    assert ParaphraseConfig().validate() is not None
    config = ParaphraseConfig.from_dict({"temperature": 0, "top_p": 1, "max_tokens": 1, "min_words": 0,
                                         "max_words": 1, "min_similarity": -1, "preset": "small-model",
                                         "step1_prompt": "Reword: {}", "limit": 3, "use_cache": False})
    assert config.temperature == 0.0 and isinstance(config.temperature, float) and config.limit == 3
    assert ParaphraseConfig.from_dict({"temperature": "1e-1"}).temperature == 0.1  # YAML 1.1 reads 1e-1 as text


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
    ("max_words", "many", "max_words must be an integer >= 1 (got 'many')"),
    ("step2_prompt", "no placeholder", "step2_prompt must be text with '{}' exactly once"),
    ("step1_prompt", "{} and {}", "step1_prompt must be text with '{}' exactly once"),
    ("top_p", 0, "top_p must be in (0, 1] (got 0)"),
    ("temperature", 2.5, "temperature must be in [0, 2] (got 2.5)"),
    ("temperature", float("nan"), "temperature must be a finite number in [0, 2] (got nan)"),
    ("max_resamples", -1, "max_resamples must be >= 0 (got -1)"),
    ("concurrency", 2.5, "concurrency must be an integer >= 1 (got 2.5)"),
    ("use_cache", "yes", "use_cache must be true or false (got 'yes')"),
    ("limit", True, "limit must be an integer >= 1 (got True)"),
    ("min_similarity", 1.5, "min_similarity must be in [-1, 1] (got 1.5)"),
    ("preset", "papr", "preset must be one of paper, small-model (got 'papr'). Did you mean 'paper'?"),
    ("max_wrods", 9, "unknown paraphrase setting 'max_wrods'. Did you mean 'max_words'"),
])
def test_a_bad_value_names_the_source_the_field_and_what_is_allowed(field, value, expected):
    with pytest.raises(ConfigError) as caught:
        ParaphraseConfig.from_dict({field: value}, source="cfg.yaml")
    assert str(caught.value).startswith("cfg.yaml: " + expected), str(caught.value)


def test_yaml_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "c.yaml").write_text("temperature: 0.5\nmax_words: [1, 2]\n")
    with pytest.raises(DataError, match=r"c\.yaml:2: max_words must be an integer >= 1 \(got \[1, 2\]\)"):
        ParaphraseConfig.from_yaml(tmp_path / "c.yaml")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(["in.txt", "--out", "o.jsonl", *argv])


@pytest.mark.parametrize("yaml_text, flags, expected", [
    ("similarity: true\n", ["--no-similarity"], {"similarity": False}),  # an option turns a YAML true off
    ("similarity: false\n", ["--similarity"], {"similarity": True}),  # and a YAML false on
    ("similarity: true\n", [], {"similarity": True}),  # an option not given leaves the file's value
    ("use_cache: false\n", ["--cache"], {"use_cache": True}),
    ("use_cache: true\n", ["--no-cache"], {"use_cache": False}),
    ("retry_failed: true\ndrop_changed: true\n", ["--no-retry-failed", "--no-drop-changed"],
     {"retry_failed": False, "drop_changed": False}),
    ("limit: 100\n", ["--limit", "5"], {"limit": 5}),  # a number given replaces the file's
    ("limit: 100\nmin_similarity: 0.2\n", ["--min-similarity", "0.7"], {"limit": 100, "min_similarity": 0.7}),
    ("", ["--limit", "5"], {"limit": 5, "similarity": False}),
])
def test_options_override_the_yaml_both_ways(tmp_path, yaml_text, flags, expected):
    (tmp_path / "c.yaml").write_text(yaml_text)
    config = command._config(_args("--config", str(tmp_path / "c.yaml"), *flags))
    assert {key: getattr(config, key) for key in expected} == expected


def test_input_options_override_the_yaml_both_ways(tmp_path):
    (tmp_path / "c.yaml").write_text("skip_bad_lines: true\ncaption_column: text\n")
    config = command._config(_args("--config", str(tmp_path / "c.yaml"), "--no-skip-bad-lines",
                                   "--caption-column", "cap"))
    assert config.input == CaptionInput(caption_column="cap", skip_bad_lines=False)
    assert command._config(_args("--skip-bad-lines")).input.skip_bad_lines is True


def test_a_bad_option_is_named_as_the_option(capsys):
    with pytest.raises(ConfigError, match=r"^--preset must be one of paper, small-model \(got 'papr'\)"):
        command._config(_args("--preset", "papr"))
    with pytest.raises(SystemExit):  # the option's range is the field's, checked by argparse
        _args("--min-similarity", "2")
    assert "--min-similarity: must be in [-1, 1] (got 2)" in capsys.readouterr().err
    assert ParaphraseConfig.bounds("min_similarity").describe() == "in [-1, 1]"
