"""``ParaphraseConfig``: everything that decides a paraphrasing run; how the input is read
(:class:`CaptionInput`: columns, the image-id file, bad lines) is kept apart from how captions are
filtered and paraphrased. A YAML config and the command line name both kinds flat, as before.

Defaults are the paper's (ParaCLIP release, ``paraphrasing/call_openai.py``): keep captions
with more than 1 and at most 15 whitespace-separated words; prompts and sampling from the
chosen preset (``paper`` for API models, ``small-model`` for local models under 3B).
Fields left ``None`` fall back to the preset / the backend. :meth:`ParaphraseConfig.validate`
checks every field's type and range once, before any work, with a message naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraclip.errors import DataError
from paraclip.files import read_yaml_mapping
from paraclip.registry import suggest


@dataclass
class CaptionInput:
    """How captions are read from an input (see :func:`paraclip.paraphrase.read_captions`)."""

    caption_column: str = "caption"
    image_id_column: str = "image_id"
    image_ids_path: str | None = None  # parallel image-id file for text inputs, as in the paper
    skip_bad_lines: bool = False


INPUT_FIELDS = tuple(f.name for f in dataclasses.fields(CaptionInput))


@dataclass
class ParaphraseConfig:
    # prompts and sampling: a preset, optionally with some fields replaced
    preset: str | None = None  # None: the backend's suggestion (paper for APIs, small-model for < 3B local models)
    step1_prompt: str | None = None  # '{}' marks where the caption goes
    step2_prompt: str | None = None  # '{}' marks where step 1's output goes
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    # caption filter (paper: more than 1 and at most 15 words)
    min_words: int = 1
    max_words: int = 15
    limit: int | None = None  # paraphrase only the first N kept captions
    # post-processing and failure handling
    max_resamples: int = 2  # extra samples after an empty / copied / refused output, per step
    max_output_words: int | None = 64
    retry_failed: bool = False  # on resume, redo records that failed before
    # throughput and reuse
    concurrency: int | None = None  # records in flight; None: the backend's parallelism
    use_cache: bool = True
    cache_path: str | None = None  # None: $PARACLIP_CACHE/paraphrase/requests.sqlite
    # quality signals
    similarity: bool = False  # cosine similarity under an independent sentence encoder
    similarity_model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    min_similarity: float | None = None  # records below get status "filtered" (a user choice, not a correctness check)
    drop_changed: bool = False  # records flagged meaning_changed get status "filtered": training skips them
    input: CaptionInput = field(default_factory=CaptionInput)

    def validate(self, source: str = "paraphrase config") -> "ParaphraseConfig":
        """Raise :class:`DataError` naming ``source`` and the field for the first value out of range."""
        for name, (check, expected) in _RULES.items():
            value = getattr(self.input if name in INPUT_FIELDS else self, name)
            if value is None and name in _OPTIONAL:
                continue
            if not check(value):
                raise DataError(f"{source}: {name} must be {expected}; got {value!r}.")
        if self.preset is not None:
            from paraclip.paraphrase.prompts import PRESETS

            try:
                PRESETS.get(self.preset)
            except KeyError as exc:  # UnknownNameError lists close matches
                raise DataError(f"{source}: preset: {exc}") from None
        if self.max_words < self.min_words + 1:
            raise DataError(f"{source}: max_words ({self.max_words}) must be larger than min_words ({self.min_words}): "
                            f"captions are kept when min_words < words <= max_words (paper: 1 < words <= 15).")
        return self

    def resolve_preset(self, backend=None):
        """The prompt preset this run uses, with this config's overrides applied."""
        from paraclip.paraphrase.prompts import PRESETS

        name = self.preset or (backend.suggested_preset() if backend is not None else "paper")
        return PRESETS.get(name).with_overrides(
            step1=self.step1_prompt, step2=self.step2_prompt, system=self.system_prompt,
            temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
        )

    def keeps(self, caption: str) -> bool:
        """The paper's length filter: ``min_words < len(caption.split()) <= max_words``."""
        n = len(caption.split())
        return self.min_words < n <= self.max_words

    def to_dict(self) -> dict[str, Any]:
        """Every setting, flat (the input's too), as a YAML config names them."""
        flat = dataclasses.asdict(self)
        reading = flat.pop("input")
        return {**flat, **reading}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "ParaphraseConfig":
        known = [f.name for f in dataclasses.fields(cls) if f.name != "input"] + list(INPUT_FIELDS)
        for key in data:
            if key not in known:
                close = suggest(key, known)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise DataError(f"{source}: unknown paraphrase setting {key!r}.{hint} Known: {', '.join(known)}.")
        settings = {k: v for k, v in data.items() if k not in INPUT_FIELDS}
        reading = CaptionInput(**{k: v for k, v in data.items() if k in INPUT_FIELDS})
        return cls(**settings, input=reading).validate(source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ParaphraseConfig":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such paraphrase config file.")
        data, _ = read_yaml_mapping(path, "settings")
        return cls.from_dict(data, source=str(path))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and v == v


def _template(v) -> bool:
    return isinstance(v, str) and v.count("{}") == 1


_TEMPLATE = "text with '{}' exactly once (where the caption / step-1 output goes)"
_OPTIONAL = {"preset", "step1_prompt", "step2_prompt", "system_prompt", "temperature", "top_p", "max_tokens", "limit",
             "max_output_words", "concurrency", "cache_path", "similarity_model", "min_similarity", "image_ids_path"}
# field -> (check, what is expected); None is allowed for the fields in _OPTIONAL
_RULES = {
    "preset": (lambda v: isinstance(v, str), "a preset name (paper, small-model)"),
    "step1_prompt": (_template, _TEMPLATE),
    "step2_prompt": (_template, _TEMPLATE),
    "system_prompt": (lambda v: isinstance(v, str), "text"),
    "temperature": (lambda v: _is_number(v) and 0 <= v <= 2, "a number from 0 to 2"),
    "top_p": (lambda v: _is_number(v) and 0 < v <= 1, "a number above 0 and at most 1"),
    "max_tokens": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "min_words": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "max_words": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "limit": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1 (leave it out for all captions)"),
    "max_resamples": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "max_output_words": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "retry_failed": (lambda v: isinstance(v, bool), "true or false"),
    "concurrency": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "use_cache": (lambda v: isinstance(v, bool), "true or false"),
    "cache_path": (lambda v: isinstance(v, str) and v.strip() != "", "a file path"),
    "similarity": (lambda v: isinstance(v, bool), "true or false"),
    "drop_changed": (lambda v: isinstance(v, bool), "true or false"),
    "similarity_model": (lambda v: isinstance(v, str) and v.strip() != "", "a model name or folder"),
    "min_similarity": (lambda v: _is_number(v) and -1 <= v <= 1, "a number from -1 to 1"),
    "caption_column": (lambda v: isinstance(v, str) and v != "", "a column name"),
    "image_id_column": (lambda v: isinstance(v, str) and v != "", "a column name"),
    "image_ids_path": (lambda v: isinstance(v, str) and v.strip() != "", "a file path"),
    "skip_bad_lines": (lambda v: isinstance(v, bool), "true or false"),
}
