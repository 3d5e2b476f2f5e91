"""One step, sample by sample (shared by the realtime engine and the batch run), and the declared capability
that sends a batch backend's run through BatchRun."""

from __future__ import annotations

from paraclip.paraphrase.backends.base import Backend, Completion
from paraclip.paraphrase.backends.openai_batch import OpenAIBatchBackend
from paraclip.paraphrase.steps import StepResult


def test_a_copy_is_resampled_and_an_accepted_sample_decides_the_step():
    step = StepResult(None, None, None)
    assert not step.take(1, Completion("A dog runs on the beach.", tokens=5), ["a dog runs on the beach"], None)
    assert step.reason == "copy of the input" and step.text is None
    assert step.take(1, Completion("  A hound sprints along the shore. ", tokens=7, cached=True),
                     ["a dog runs on the beach"], None)
    assert step.text == "A hound sprints along the shore." and step.error is None
    assert (step.samples, step.tokens, step.requests, step.cached) == (2, 12, 1, 1)


def test_a_backend_error_decides_the_step_and_giving_up_names_the_last_reason():
    failed = StepResult(None, None, None)
    assert failed.take(2, Completion(None, error="HTTP 500"), ["x"], None)
    assert failed.error == "step 2: HTTP 500" and failed.text is None
    rejected = StepResult(None, None, None)
    for _ in range(3):
        assert not rejected.take(1, Completion("a cat"), ["a cat"], None)
    rejected.give_up(1)
    assert rejected.error == "step 1: copy of the input (after 3 samples)"


def test_only_the_batch_backend_declares_batch_runs():
    assert Backend.runs_batches is False and OpenAIBatchBackend.runs_batches is True
    assert not hasattr(OpenAIBatchBackend, "run_records")  # the engine starts BatchRun itself
