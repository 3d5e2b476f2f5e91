"""Shared pieces of the property tests: reproducible settings, file contents that break readers, and the
one assertion every reader must satisfy (it returns, or raises a ParaclipError naming the file)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from paraclip.errors import ParaclipError


def reproducible(max_examples: int, shrink: bool = True):
    """Derandomized (CI sees the same examples every run), no example database, no deadline (a loaded
    2-core machine is slow, not wrong); the files live in the test's tmp_path, rewritten per example.
    ``shrink=False`` for a test expected to fail: shrinking would take minutes."""
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None, phases=phases,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def assert_clean_failure(read: Callable[[Path], Any], path: Path) -> Any:
    """``read(path)`` returns, or raises a ParaclipError whose message names the file; anything else
    (a traceback for the user) fails the test."""
    try:
        return read(path)
    except ParaclipError as exc:
        assert path.name in str(exc), f"the error does not name {path.name}: {exc}"
        return None


# -- contents ------------------------------------------------------------------------------------

# Pieces that matter to CSV/TSV/JSONL/YAML parsers, mixed with arbitrary text.
_TOKENS = st.sampled_from(['"', '""', ",", "\t", ";", "\n", "\r\n", "\r", " ", "\x00", "\ufeff", "\\", "{", "}",
                           "[", "]", ":", "- ", "&a", "*a", "!!python/object", "#", "caption", "image_id",
                           "sentence1", "sentence2", "score", "3.5", "nan", "-1", "1e400", "9" * 4400, "null",
                           "true", "status", "ok", "index", "paraphrase_1", "x" * 140_000])
_TEXT = st.lists(st.one_of(_TOKENS, st.text(max_size=12)), max_size=25).map("".join)

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=15), st.sampled_from(["ok", "failed", "rejected", "a dog", ""]))
JSONISH = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(["caption", "image_id", "index", "status", "paraphrase_1",
                                               "paraphrase_2", "sentence1", "sentence2", "score", "review",
                                               "path", "results", "model_type", "state_dict", "arch"]),
                              st.text(max_size=8)), inner, max_size=6)), max_leaves=20)


def _deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


JSON_DOC = st.one_of(
    JSONISH.map(lambda v: json.dumps(v, allow_nan=True)),
    st.tuples(JSONISH.map(json.dumps), st.integers(0, 40)).map(lambda t: t[0][: max(0, len(t[0]) - t[1])]),
    st.sampled_from([_deep(100_000), '{"caption": ' + _deep(5000) + "}", '{"a": ' + "9" * 5000 + "}",
                     '{"index": 1e400}', '{"caption": "\\ud800"}']),
    _TEXT,
)
JSONL_TEXT = st.lists(JSON_DOC, max_size=6).map(lambda lines: "\n".join(lines) + "\n")
TABLE_TEXT = st.lists(_TEXT, max_size=8).map("\n".join)


def _encodings(text: str) -> st.SearchStrategy[bytes]:
    raw = text.encode("utf-8", "surrogatepass")
    return st.sampled_from([raw, text.encode("utf-16", "surrogatepass"), raw.replace(b"a", b"\xe9")])


def contents(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Bytes of a file: structured text in a few encodings, or arbitrary bytes."""
    return st.one_of(text.flatmap(_encodings), st.binary(max_size=200))


def gz_variants(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """For a ``.gz`` name: compressed, compressed then cut short, or not compressed at all."""
    return st.tuples(data, st.integers(0, 3), st.integers(1, 30)).map(
        lambda t: gzip.compress(t[0]) if t[1] == 0 else gzip.compress(t[0])[:-t[2]] if t[1] == 1 else
        b"\x1f\x8b" + t[0] if t[1] == 2 else t[0])
