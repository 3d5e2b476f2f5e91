"""Two-step paraphrasing (ParaCLIP, Kim et al., Findings of EACL 2024) over any backend.

    from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing
    backend = make_backend("openai", model="gpt-4o-mini", concurrency=32)
    summary = run_paraphrasing("captions.txt", "out.jsonl", backend, ParaphraseConfig())

Records (:class:`ParaphraseRecord`): ``index, image_id, caption, paraphrase_1, paraphrase_2, status,
error, backend, model, preset, quality{...}, review`` (+ raw outputs, tokens, samples). ``quality`` holds the
meaning-change flags (``meaning_changed``, ``meaning_changed_1/_2``, ``meaning_reason_1/_2``).
"""

from paraclip.paraphrase.backends import BACKENDS, Backend, ChatRequest, Completion, make_backend
from paraclip.paraphrase.config import CaptionInput, ParaphraseConfig
from paraclip.paraphrase.engine import (BackendFatalError, Paraphraser, paraphrase_captions, run_paraphrasing,
                                       select_captions)
from paraclip.paraphrase.io import CaptionItem, Captions, load_records, read_captions, update_review, update_reviews
from paraclip.paraphrase.local.pack import QWEN_PACK, installed_pack, setup_llm_pack
from paraclip.paraphrase.local.runtime import make_local_backend, resolve_local_model, shared_local_backend
from paraclip.paraphrase.meaning.rules import MeaningCheck, check_meaning, meaning_signals
from paraclip.paraphrase.postprocess import clean, rejection_reason
from paraclip.paraphrase.prompts import PRESETS, PromptPreset, Sampling
from paraclip.paraphrase.records import REVIEW_STATES, ParaphraseRecord

__all__ = [
    "BACKENDS", "Backend", "BackendFatalError", "CaptionInput", "CaptionItem", "Captions", "ChatRequest",
    "Completion", "MeaningCheck", "PRESETS", "ParaphraseConfig", "ParaphraseRecord", "Paraphraser", "PromptPreset",
    "QWEN_PACK", "REVIEW_STATES", "Sampling", "check_meaning", "clean", "installed_pack",
    "load_records", "make_backend", "make_local_backend", "meaning_signals", "paraphrase_captions", "read_captions",
    "rejection_reason", "resolve_local_model", "run_paraphrasing", "select_captions", "setup_llm_pack",
    "shared_local_backend", "update_review", "update_reviews",
]
