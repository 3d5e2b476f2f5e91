"""The one interface every paraphrasing backend implements.

A backend turns chat requests into completions. ``generate`` takes a list so that a backend
can batch (local models) or fan out (HTTP APIs); it never raises for a single request's
failure: that request's :class:`Completion` carries the error. Errors that make every
further request pointless (bad API key, unknown model) set ``fatal=True`` and the engine
stops. A new backend (e.g. the OpenAI Batch API) is one module with one class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from paraclip.errors import ParaclipError


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs; hashable for batching and caching
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None  # a re-sample of the same request uses a different seed

    @classmethod
    def from_messages(cls, messages: Sequence[dict[str, str]], sampling, seed: int | None = None) -> "ChatRequest":
        return cls(
            messages=tuple((m["role"], m["content"]) for m in messages),
            temperature=float(sampling.temperature),
            top_p=float(sampling.top_p),
            max_tokens=int(sampling.max_tokens),
            seed=seed,
        )

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    @property
    def sampling_key(self) -> tuple[float, float, int]:
        return (self.temperature, self.top_p, self.max_tokens)


@dataclass
class Completion:
    text: str | None
    error: str | None = None
    fatal: bool = False
    tokens: int = 0
    attempts: int = 1
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class Backend(ABC):
    """Turns chat requests into completions. Subclasses set ``kind`` and ``model``."""

    kind: str = "?"
    model: str = "?"
    #: how many requests the engine should keep in flight (API concurrency or local batch size)
    parallelism: int = 1

    @abstractmethod
    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """One completion per request, in order. Per-request failures are returned, not raised."""

    def identity(self) -> dict[str, Any]:
        """What decides the output besides the request: part of the cache key. Never holds secrets."""
        return {"kind": self.kind, "model": self.model}

    def suggested_preset(self) -> str:
        return "paper"

    def cancel(self) -> None:
        """Make pending requests return soon (the engine calls this when asked to stop)."""

    def uncancel(self) -> None:
        """Undo :meth:`cancel` (the engine calls this when a run starts, so a backend can be reused)."""

    def close(self) -> None:
        """Release connections / memory. Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_number(name: str, value, minimum: float | None = None, inclusive: bool = True, integer: bool = False) -> None:
    """Raise a one-line :class:`ParaclipError` naming the option when ``value`` is out of range."""
    option = "--" + name.replace("_", "-")
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int))
    if bad_type or value != value:
        raise ParaclipError(f"{option} ({name}) must be {'an integer' if integer else 'a number'}; got {value!r}.")
    if minimum is not None and (value < minimum or (not inclusive and value == minimum)):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ParaclipError(f"{option} ({name}) must be {bound}; got {value!r}.")
