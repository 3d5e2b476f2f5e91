"""Local paraphrasing models: which runtime to use (:mod:`.runtime`), llama.cpp for GGUF files on a CPU
(:mod:`.llama_cpp`), transformers for hub ids, folders and GPUs (:mod:`.transformers_runtime`), and the
offline model packs installed from PyPI (:mod:`.pack`).

Nothing is imported here, so that ``import paraclip.paraphrase`` never loads torch or llama.cpp.
"""
