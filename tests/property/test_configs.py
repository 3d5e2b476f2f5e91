"""YAML and JSON settings files fed arbitrary content: a ParaclipError naming the file (the CLI: exit 2),
never a traceback. Training config (``paraclip train --config``), paraphrase config, evaluation results."""

from __future__ import annotations

import contextlib
import io

import yaml
from hypothesis import given
from hypothesis import strategies as st

from paraclip.cli import main
from paraclip.paraphrase.config import ParaphraseConfig
from paraclip.training.config import load_config

from .strategies import JSON_DOC, JSONISH, assert_clean_failure, contents, reproducible

_KEYS = st.one_of(st.sampled_from(["lr", "steps", "batch_size", "data", "images", "loss", "model", "seed",
                                   "loss_weights", "temperature", "preset", "concurrency", "caption_column",
                                   "step1_prompt", "max_words", "use_cache", "unknown_option"]),
                  st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False), st.text(max_size=6))
_MAPPING = st.dictionaries(_KEYS, JSONISH, max_size=5).map(
    lambda d: yaml.safe_dump(d, allow_unicode=True, sort_keys=False))
_YAML_TOKENS = st.sampled_from(["a: 1\n", "- x\n", "? [a]\n: 1\n", "&a [1, 2]\n", "b: *a\n", "c: *zz\n",
                                "<<: *a\n", "d: !!python/name:os.system\n", "e: !!binary 'AAAA'\n", "f: [1, 2\n",
                                "'1': x\n", "1: x\n", "2024-01-01: y\n", "null: z\n", "lr: 1e400\n",
                                "steps: " + "9" * 5000 + "\n", "{b: " * 1200 + "}" * 1200 + "\n", "\t", "---\n",
                                "...\n", "x: \x07\n", 'data: "a\\0b"\n', "\ufeff", "%YAML 1.1\n", "g: |\n  text\n"])
YAML_TEXT = st.one_of(_MAPPING, st.lists(st.one_of(_YAML_TOKENS, st.text(max_size=10)), max_size=12).map("".join))


@reproducible(60)
@given(contents(YAML_TEXT))
def test_training_config_yaml(tmp_path, data):
    path = tmp_path / "train.yaml"
    path.write_bytes(data)
    assert_clean_failure(load_config, path)


@reproducible(50)
@given(contents(YAML_TEXT))
def test_paraphrase_config_yaml(tmp_path, data):
    path = tmp_path / "para.yaml"
    path.write_bytes(data)
    assert_clean_failure(ParaphraseConfig.from_yaml, path)


@reproducible(15)
@given(contents(YAML_TEXT))
def test_the_cli_exits_2_on_any_training_config(tmp_path, data):
    path = tmp_path / "train.yaml"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--config", str(path), "--print-config"])
    assert code in (0, 2), err.getvalue()
    if code == 2:
        assert "train.yaml" in err.getvalue() and "Traceback" not in err.getvalue()


@reproducible(40)
@given(contents(JSON_DOC))
def test_evaluation_results_json(tmp_path, data):
    from paraclip.results import load_results

    path = tmp_path / "results.json"
    path.write_bytes(data)
    assert_clean_failure(load_results, path)
