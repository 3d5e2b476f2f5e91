"""Paraphrasing backends behind one interface (:class:`Backend`), chosen by name.

``make_backend("openai", model=..., base_url=..., concurrency=...)``,
``make_backend("local", model=PATH_OR_ID, batch_size=...)`` (llama.cpp for a GGUF file on a CPU,
else transformers; ``"llama.cpp"`` or ``"transformers"`` picks one) or
``make_backend("openai-batch", model=...)`` (the OpenAI Batch API: files of requests, 50 % price).
Adding a backend is one module
plus one ``BACKENDS.register`` line.
"""

from __future__ import annotations

import importlib
from typing import Any

from paraclip.paraphrase.backends.base import Backend, ChatRequest, Completion
from paraclip.registry import Registry

# name -> "module:Class"; imported on use so that the API backend never loads torch.
BACKENDS: Registry[str] = Registry("paraphrase backend")
BACKENDS.register("openai", "paraclip.paraphrase.backends.openai_compat:OpenAICompatibleBackend", "api")
# "local" picks the runtime: llama.cpp for GGUF files on a CPU, transformers otherwise
BACKENDS.register("local", "paraclip.paraphrase.local.runtime:make_local_backend")
BACKENDS.register("llama.cpp", "paraclip.paraphrase.local.runtime:llama_cpp_backend", "llama-cpp", "gguf")
BACKENDS.register("transformers", "paraclip.paraphrase.local.runtime:transformers_backend", "hf")
BACKENDS.register("openai-batch", "paraclip.paraphrase.backends.openai_batch:OpenAIBatchBackend", "batch")


def make_backend(kind: str, **options: Any) -> Backend:
    """Build a backend by name; ``options`` go to its constructor (``None`` values are dropped)."""
    module_name, factory_name = BACKENDS.get(kind).split(":")
    factory = getattr(importlib.import_module(module_name), factory_name)  # a Backend class or a function
    return factory(**{k: v for k, v in options.items() if v is not None})


__all__ = ["BACKENDS", "Backend", "ChatRequest", "Completion", "make_backend"]
