"""The one interface every paraphrasing backend implements.

A backend turns chat requests into completions. ``generate`` takes a list so that a backend
can batch (local models) or fan out (HTTP APIs); it never raises for a single request's
failure: that request's :class:`Completion` carries the error. Errors that make every
further request pointless (bad API key, unknown model) set ``fatal=True`` and the engine
stops. A new backend (e.g. the OpenAI Batch API) is one module with one class.

Stopping is per call: ``generate(requests, should_stop=check)`` polls ``check()`` while it
works and answers the requests it had not finished with ``Completion(None, error="cancelled")``
soon after ``check()`` turns true. One backend object may serve several runs at once (the
app shares one loaded local model between sessions), so stopping one call never affects
another call's requests.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Callable, Sequence

StopCheck = Callable[[], bool]
CANCELLED = "cancelled"  # the error of a request given up because its caller asked to stop

from paraclip.checks import Bounds
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
    #: a process-wide instance shared by several callers: ``close()`` leaves it loaded
    shared: bool = False
    #: takes whole files of requests (a batch API): the engine runs it through
    #: :class:`paraclip.paraphrase.batch.BatchRun` (upload, poll, collect) instead of request by request
    runs_batches: bool = False

    @abstractmethod
    def generate(self, requests: Sequence[ChatRequest], should_stop: StopCheck | None = None) -> list[Completion]:
        """One completion per request, in order. Per-request failures are returned, not raised.

        Requests not finished when ``should_stop()`` turns true return ``Completion(None, error=CANCELLED)``.
        """

    def estimate_seconds(self, requests: Sequence[ChatRequest], new_tokens: int = 24) -> float | None:
        """Seconds this backend needs for ``requests`` on this machine, or None when it cannot tell."""
        return None

    def identity(self) -> dict[str, Any]:
        """What decides the output besides the request: part of the cache key. Never holds secrets."""
        return {"kind": self.kind, "model": self.model}

    def suggested_preset(self) -> str:
        return "paper"

    def cancel(self) -> None:
        """Make every pending request of this backend, whoever sent it, return soon (prefer ``should_stop``)."""

    def uncancel(self) -> None:
        """Undo :meth:`cancel`."""

    def close(self) -> None:
        """Release connections / memory. Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: below this many parameters the ``small-model`` preset is suggested: the paper's prompts measured on a
#: 1.5B model kept the meaning only 45 % of the time at step 2 (prompts.py)
SMALL_MODEL_PARAMS = 3_000_000_000


class LocalModelBackend(Backend):
    """What both local runtimes (llama.cpp, transformers) share: the preset suggested by the model's size.
    (The default model when none is named is chosen by ``paraclip.paraphrase.local.runtime``.)"""

    kind = "local"
    n_params: int = 0

    def suggested_preset(self) -> str:
        return "small-model" if self.n_params < SMALL_MODEL_PARAMS else "paper"


def check_number(name: str, value, minimum: float | None = None, inclusive: bool = True, integer: bool = False) -> None:
    """Raise a one-line :class:`ParaclipError` naming the option when ``value`` is out of range."""
    option = "--" + name.replace("_", "-")
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int))
    if bad_type or value != value:
        raise ParaclipError(f"{option} ({name}) must be {'an integer' if integer else 'a number'}; got {value!r}.")
    problem = Bounds(minimum, low_open=not inclusive).problem(value)
    if problem:
        raise ParaclipError(f"{option} ({name}) {problem}.")


def stop_worker(jobs: queue.Queue, worker: threading.Thread | None, future_of: Callable[[Any], Any]) -> None:
    """Stop a local backend's worker thread (``None`` in its queue ends it) and answer every request still
    queued with "backend closed", so that no caller waits forever. ``future_of(item)`` is an item's Future."""
    if worker is not None:
        jobs.put(None)
        worker.join(timeout=30)
    while True:
        try:
            item = jobs.get_nowait()
        except queue.Empty:
            return
        if item is not None and not future_of(item).done():
            future_of(item).set_result(Completion(None, error="backend closed"))


def await_completions(futures: Sequence[Future], should_stop: StopCheck | None,
                      poll_s: float = 0.1) -> list[Completion]:
    """The results of ``futures``; once ``should_stop()`` is true, the unfinished ones are answered as cancelled
    at once (a request still queued behind other callers' work need not wait for it; the worker drops it)."""
    results = []
    for fut in futures:
        while True:
            try:
                results.append(fut.result(timeout=poll_s if should_stop is not None else None))
                break
            except FutureTimeout:
                if should_stop():
                    results.append(Completion(None, error=CANCELLED))
                    break
    return results
