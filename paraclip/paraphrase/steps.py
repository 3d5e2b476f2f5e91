"""One step of a caption's paraphrasing, sample by sample: what the realtime engine and the batch runner
(:mod:`paraclip.paraphrase.batch`) both decide a step with, and the error that stops a run."""

from __future__ import annotations

from dataclasses import dataclass

from paraclip.errors import ParaclipError
from paraclip.paraphrase.backends.base import Completion
from paraclip.paraphrase.postprocess import clean, rejection_reason


class BackendFatalError(ParaclipError):
    """The backend cannot serve any request (bad key, unknown model); the run stops, finished work is kept."""


@dataclass
class StepResult:
    text: str | None
    raw: str | None
    error: str | None
    tokens: int = 0
    samples: int = 0
    requests: int = 0  # sent to the backend (not served by the cache)
    cached: int = 0
    cancelled: bool = False
    reason: str | None = None  # why the last sample was rejected

    def take(self, step: int, completion: Completion, sources: list[str], max_output_words: int | None,
             instructions: tuple[str, ...] | list[str] = ()) -> bool:
        """Count one sample; True when the step is decided (an accepted paraphrase, or an error)."""
        self.samples += 1
        self.cached += completion.cached
        self.requests += not completion.cached
        self.tokens += completion.tokens
        if not completion.ok:  # the backend already retried transport errors
            self.error = f"step {step}: {completion.error}"
            return True
        self.raw = completion.text
        candidate = clean(completion.text)
        self.reason = rejection_reason(candidate, sources, max_output_words, instructions)
        if self.reason is None:
            self.text = candidate
            return True
        return False

    def give_up(self, step: int) -> None:
        """Every sample was rejected: the step fails with the last reason."""
        self.error = f"step {step}: {self.reason} (after {self.samples} samples)"


__all__ = ["BackendFatalError", "StepResult"]
