"""``ParaphraseConfig``: everything that decides a paraphrasing run; how the input is read
(:class:`CaptionInput`: columns, the image-id file, bad lines) is kept apart from how captions are
filtered and paraphrased. A YAML config and the command line name both kinds flat, as before.

Defaults are the paper's (ParaCLIP release, ``paraphrasing/call_openai.py``): keep captions
with more than 1 and at most 15 whitespace-separated words; prompts and sampling from the
chosen preset (``paper`` for API models, ``small-model`` for local models under 3B).
Fields left ``None`` fall back to the preset / the backend. Each field declares its type and range
(:func:`paraclip.settings.setting`); :meth:`ParaphraseConfig.validate` checks them once, before any
work, with a message naming the source (file and line, or the option) and the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from paraclip.checks import AT_LEAST_0, AT_LEAST_1, Bounds
from paraclip.errors import ConfigError, DataError
from paraclip.files import read_yaml_mapping
from paraclip.settings import bounds_of, check_keys, problems, read_settings, setting

_TEMPLATE = "text with '{}' exactly once (where the caption / step-1 output goes)"


def _template_problem(value: str) -> str | None:
    return None if value.count("{}") == 1 else f"must be {_TEMPLATE} (got {value!r})"


def _preset_names() -> list[str]:
    from paraclip.paraphrase.prompts import PRESETS

    return PRESETS.names()


@dataclass
class CaptionInput:
    """How captions are read from an input (see :func:`paraclip.paraphrase.read_captions`)."""

    caption_column: str = setting("caption", "caption column / field", expected="a column name", not_empty=True)
    image_id_column: str = setting("image_id", "image-id column / field", expected="a column name", not_empty=True)
    image_ids_path: str | None = setting(None, "parallel image-id file for text inputs, as in the paper",
                                         expected="a file path", not_empty=True)
    skip_bad_lines: bool = setting(False, "report and skip malformed input lines")


INPUT_FIELDS = tuple(f.name for f in dataclasses.fields(CaptionInput))


@dataclass
class ParaphraseConfig:
    # prompts and sampling: a preset, optionally with some fields replaced
    preset: str | None = setting(None, "prompt preset; none: the backend's suggestion (paper for APIs, small-model "
                                 "for < 3B local models)", choices=_preset_names)
    step1_prompt: str | None = setting(None, "step-1 prompt; '{}' marks where the caption goes",
                                       check=_template_problem, expected=_TEMPLATE)
    step2_prompt: str | None = setting(None, "step-2 prompt; '{}' marks where step 1's output goes",
                                       check=_template_problem, expected=_TEMPLATE)
    system_prompt: str | None = setting(None, "system message")
    temperature: float | None = setting(None, "sampling temperature", bounds=Bounds(0, 2))
    top_p: float | None = setting(None, "nucleus sampling mass", bounds=Bounds(0, 1, low_open=True))
    max_tokens: int | None = setting(None, "tokens per reply", bounds=AT_LEAST_1)
    # caption filter (paper: more than 1 and at most 15 words)
    min_words: int = setting(1, "keep captions with more words than this", bounds=AT_LEAST_0)
    max_words: int = setting(15, "keep captions with at most this many words", bounds=AT_LEAST_1)
    limit: int | None = setting(None, "paraphrase only the first N kept captions (leave it out for all)",
                                bounds=AT_LEAST_1)
    # post-processing and failure handling
    max_resamples: int = setting(2, "extra samples after an empty / copied / refused output, per step",
                                 bounds=AT_LEAST_0)
    max_output_words: int | None = setting(64, "longest paraphrase kept, in words", bounds=AT_LEAST_1)
    retry_failed: bool = setting(False, "on resume, redo records that failed before")
    # throughput and reuse
    concurrency: int | None = setting(None, "records in flight; none: the backend's parallelism", bounds=AT_LEAST_1)
    use_cache: bool = setting(True, "read and write the request cache")
    cache_path: str | None = setting(None, "request cache file; none: $PARACLIP_CACHE/paraphrase/requests.sqlite",
                                     expected="a file path", not_empty=True)
    # quality signals
    similarity: bool = setting(False, "cosine similarity under an independent sentence encoder")
    similarity_model: str | None = setting(None, "sentence encoder; none: the packaged all-MiniLM-L6-v2",
                                           expected="a model name or folder", not_empty=True)
    # records below get status "filtered" (a user choice, not a correctness check)
    min_similarity: float | None = setting(None, "records below this similarity are filtered", bounds=Bounds(-1, 1))
    # records flagged meaning_changed get status "filtered": training skips them
    drop_changed: bool = setting(False, "filter records whose paraphrase changed the caption's meaning")
    # the run's own LLM judges each paraphrase (judge-v2 prompt: one short extra request per paraphrase) and its
    # verdict sets the meaning flags; measured in the README ("Meaning-change flags"); needs a capable model
    meaning_judge: bool = setting(False, "let the run's LLM judge whether each paraphrase keeps the meaning")
    input: CaptionInput = field(default_factory=CaptionInput)

    bounds = classmethod(bounds_of)  # ParaphraseConfig.bounds("temperature"): a field's range, for options and forms

    def validate(self, source: str = "paraphrase config") -> "ParaphraseConfig":
        """Raise :class:`ConfigError` naming ``source`` and the field for every value not allowed."""
        found = problems(self) + problems(self.input)
        if found:
            raise ConfigError(f"{source}: " + "; ".join(p.rstrip(".") for p in found) + ".")
        if self.max_words < self.min_words + 1:
            raise ConfigError(f"{source}: max_words ({self.max_words}) must be larger than min_words "
                              f"({self.min_words}): captions are kept when min_words < words <= max_words "
                              f"(paper: 1 < words <= 15).")
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

    def updated(self, values: Mapping[str, Any], source: str = "config", *, lines: Mapping[str, int] | None = None,
                flags: Mapping[str, str] | None = None) -> "ParaphraseConfig":
        """A copy with ``values`` (flat names, the input's too) checked and applied, then validated.
        ``lines``: each key's line in the file ``source``; ``flags``: the option that gave each key
        (``{"limit": "--limit"}``), which errors name instead of the file."""
        check_keys(ParaphraseConfig, values, source, kind="paraphrase setting", known=KNOWN_SETTINGS, lines=lines)
        outer = read_settings(ParaphraseConfig, {k: v for k, v in values.items() if k not in INPUT_FIELDS}, source,
                              lines=lines, flags=flags)
        reading = read_settings(CaptionInput, {k: v for k, v in values.items() if k in INPUT_FIELDS}, source,
                                lines=lines, flags=flags)
        return dataclasses.replace(self, **outer, input=dataclasses.replace(self.input, **reading)).validate(source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config",
                  lines: Mapping[str, int] | None = None) -> "ParaphraseConfig":
        return cls().updated(data, source, lines=lines)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ParaphraseConfig":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such paraphrase config file.")
        data, lines = read_yaml_mapping(path, "settings")
        return cls.from_dict(data, source=str(path), lines=lines)


# every setting, by the flat name a YAML config and a summary use
KNOWN_SETTINGS = tuple(f.name for f in dataclasses.fields(ParaphraseConfig) if f.name != "input") + INPUT_FIELDS
