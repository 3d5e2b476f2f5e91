"""The local model as the app uses it: messages for a visitor when a Space has no model."""

from __future__ import annotations

import pytest

from paraclip.errors import ModelLoadError
from workbench import local_llm, paraphrase


@pytest.mark.parametrize("fraction, message, text", [
    (None, "downloading Qwen2.5-1.5B-Instruct", "downloading Qwen2.5-1.5B-Instruct"),
    (0.25, "downloading", "downloading 25%"),
    (1.0, "model.gguf loaded", "model.gguf loaded 100%"),
])
def test_loader_progress_becomes_one_line(fraction, message, text):
    assert local_llm.describe_progress(fraction, message) == text


def test_without_a_model_the_visitor_is_told_who_can_fix_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = local_llm.explain_local_failure(ModelLoadError("No local paraphrasing model: run `paraclip ...`"))
    assert message.startswith("❌ No local paraphrasing model is installed on this server")
    assert "offline (HF_HUB_OFFLINE is set)" in message and "For the owner of this app" in message
    assert "OpenAI-compatible API" in message  # what the visitor can do now
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert "none could be fetched from the Hugging Face hub" in local_llm.explain_local_failure(ModelLoadError("x"))
    typed = local_llm.explain_local_failure(ModelLoadError("bad gguf header"), typed_model=True)
    assert "could not be loaded" in typed and "bad gguf header" in typed


def test_the_paraphrase_tab_shows_the_owner_message_not_a_traceback(services, monkeypatch):
    def no_model(model, progress):
        progress("looking for the local model")
        raise ModelLoadError("No local paraphrasing model: run `paraclip paraphrase --setup-llm-pack`")

    monkeypatch.setattr(paraphrase, "local_backend", no_model)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    last = None
    for last in paraphrase.run_paraphrase(services, {}, paraphrase.ParaphraseForm("a dog runs on the grass")):
        pass
    status = last[0]
    assert status.startswith("❌ No local paraphrasing model is installed") and "Traceback" not in status
    assert "For the owner of this app" in status


def test_explores_generate_button_gives_the_same_message(monkeypatch):
    from types import SimpleNamespace

    from workbench import explore

    def no_model(caption):
        raise ModelLoadError("No local paraphrasing model: run `paraclip paraphrase --setup-llm-pack`")

    _, note = explore.generate_paraphrase(SimpleNamespace(paraphrase_one=no_model), "a red circle")
    assert note.startswith("❌ No local paraphrasing model is installed") and "For the owner of this app" in note


def test_the_tab_says_which_local_model_runs_and_warns_about_the_tiny_fallback(monkeypatch, tmp_path):
    from paraclip.paraphrase.local import pack as llm_pack, runtime as local_runtime

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(local_runtime, "fetch_hub_gguf", lambda allow_download=None: None)
    monkeypatch.setattr(llm_pack, "installed_pack", lambda pack=None: gguf)
    pack = local_llm.local_model_status()
    assert pack.kind == "pack" and "Qwen2.5-Coder-1.5B" in pack.markdown() and not pack.weak
    monkeypatch.setattr(llm_pack, "installed_pack", lambda pack=None: None)
    monkeypatch.setattr(llm_pack, "smollm2_path", lambda: gguf)
    tiny = local_llm.local_model_status()
    assert tiny.kind == "fallback" and tiny.weak
    assert "only the tiny fallback SmolLM2-135M" in tiny.markdown() and "OpenAI-compatible API" in tiny.markdown()
    monkeypatch.setattr(local_runtime, "fetch_hub_gguf", lambda allow_download=None: gguf)
    assert local_llm.local_model_status().kind == "hub-cached"
    monkeypatch.setattr(local_runtime, "fetch_hub_gguf", lambda allow_download=None: None)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert local_llm.local_model_status().kind == "hub"  # fetched on first use
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(llm_pack, "smollm2_path", lambda: None)
    assert "No local model is installed" in local_llm.local_model_status().markdown()


def test_the_final_message_says_why_most_rows_failed():
    rows = [{"status": "failed", "error": "copy of the input"}] * 8 + [{"status": "ok"}] * 2
    note = local_llm.copy_failures_note(rows)
    assert "8 of 10 rows failed because the model returned the caption unchanged" in note
    assert "OpenAI-compatible API" in note
    assert local_llm.copy_failures_note([{"status": "ok"}]) == ""
    status = paraphrase.final_text({"summary": {"ok": 2, "failed": 8}}, rows, typed_model=False)
    assert status.startswith("✅ 2 paraphrased, 8 failed") and "caption unchanged" in status
