"""Local transformers causal-LM backend: an HF model id, a local directory, a GPU, or a GGUF file.

GGUF files on a CPU go to llama.cpp by default (``backends/llama_cpp.py``, measured faster
and lighter in ``bench/paraphrase_local.py``); this runtime is for model ids, folders, GPUs
and machines without llama-cpp-python.

GGUF files are de-quantised by transformers (``gguf_file=``; needs ``gguf``), which takes
~16 s for SmolLM2-135M and much longer for 1.5B models, so the first load saves a converted
copy under ``$PARACLIP_CACHE/llm/converted/`` and later loads read that copy (< 1 s for
SmolLM2). On CPU the default dtype is bfloat16, measured ~3x faster than float32 on this
project's CPU.

The engine calls ``generate`` from several threads, one request each; a small batcher
thread gathers concurrent requests (up to ``batch_size``, waiting at most ``linger_ms`` and
not at all once every outstanding request is in) into one left-padded ``model.generate`` call.
Each request carries its caller's ``should_stop``; a stopping criterion checks it between
tokens and ends only that caller's rows.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Sequence

from paraclip.errors import ModelLoadError
from paraclip.paraphrase.local.pack import llm_cache_dir
from paraclip.paraphrase.backends.base import (CANCELLED, ChatRequest, Completion, LocalModelBackend, StopCheck,
                                              await_completions, stop_worker)


def resolve_dtype(dtype: str | None, device: str):
    import torch

    if dtype in (None, "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16
    try:
        return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
                "fp32": torch.float32, "float32": torch.float32}[str(dtype).lower()]
    except KeyError:
        raise ModelLoadError(f"Unknown dtype {dtype!r}; use auto, bf16, fp16 or fp32.") from None


def converted_gguf_dir(gguf_path: Path, dtype_name: str) -> Path:
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{dtype_name}".encode()).hexdigest()
    return llm_cache_dir() / "converted" / f"{gguf_path.stem}-{dtype_name}-{key[:12]}"


def load_gguf_converted(gguf_path: Path, dtype) -> Path:
    """De-quantise ``gguf_path`` once and keep a transformers copy; returns the copy's directory."""
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype_name = str(dtype).replace("torch.", "")
    target = converted_gguf_dir(gguf_path, dtype_name)
    if (target / "COMPLETE").exists():
        return target
    kwargs: dict[str, Any] = {"gguf_file": gguf_path.name, "dtype": dtype}
    try:
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)  # a dense model can be saved
    except ImportError:  # older transformers de-quantise GGUF files anyway
        pass
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, **kwargs)
    except Exception as exc:
        raise ModelLoadError(f"Could not load the GGUF file {gguf_path}: {exc}. transformers needs the `gguf` "
                             f"package and must support this architecture.") from exc
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "COMPLETE").write_text(str(gguf_path))
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


class TransformersBackend(LocalModelBackend):
    runtime = "transformers"

    def __init__(
        self,
        model: str | os.PathLike,
        device: str | None = None,
        dtype: str | None = "auto",
        batch_size: int = 8,
        linger_ms: float = 25.0,
        seed: int = 0,
        threads: int | None = None,
        concurrency: int | None = None,  # accepted for symmetry with the API backend: same as batch_size
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(int(threads))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.parallelism = max(1, int(concurrency or batch_size))
        self.batch_size = max(1, int(batch_size))
        self.linger = float(linger_ms) / 1000.0
        self.seed = int(seed)
        source = Path(model).expanduser() if not isinstance(model, str) or os.path.exists(model) else None
        self.model = Path(model).name if source is not None else str(model)
        self.source = str(source.resolve()) if source is not None else str(model)
        try:
            if source is not None and source.is_file() and source.suffix.lower() == ".gguf":
                load_from: str | Path = load_gguf_converted(source.resolve(), self.torch_dtype)
            else:
                load_from = source if source is not None else str(model)
            self.loaded_from = str(load_from)
            self.tokenizer = AutoTokenizer.from_pretrained(load_from)
            self.lm = AutoModelForCausalLM.from_pretrained(load_from, dtype=self.torch_dtype).to(self.device).eval()
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"Could not load the local model {model!r}: {exc}. Give a local directory, a .gguf file, or (online) "
                f"a Hugging Face model id; `paraclip paraphrase --setup-llm-pack` installs the offline model."
            ) from exc
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.n_params = sum(p.numel() for p in self.lm.parameters())
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._batches = 0
        self._outstanding = 0  # requests submitted and not yet answered

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r}, device={self.device!r}, dtype={self.torch_dtype})"

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "source": self.source, "dtype": str(self.torch_dtype)}

    # -- batching -------------------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest], should_stop: StopCheck | None = None) -> list[Completion]:
        if self._closed:
            return [Completion(None, error="backend closed") for _ in requests]
        self._ensure_worker()
        futures = []
        with self._lock:
            self._outstanding += len(requests)
        for request in requests:
            fut: Future = Future()
            self._queue.put((request, fut, should_stop))
            futures.append(fut)
        try:
            return await_completions(futures, should_stop)
        finally:
            with self._lock:
                self._outstanding -= len(requests)

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="paraclip-local-batcher", daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            pending = [item]
            deadline = time.monotonic() + self.linger
            # wait (at most `linger`) for more requests, unless every request submitted is already here
            while len(pending) < min(self.batch_size, self._outstanding):
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                pending.append(nxt)
            groups: dict[tuple, list] = {}
            for request, fut, stop in pending:
                if stop is not None and stop():
                    fut.set_result(Completion(None, error=CANCELLED))
                else:
                    groups.setdefault(request.sampling_key, []).append((request, fut, stop))
            for group in groups.values():
                def answer_now(i, group=group):  # a stopped caller need not wait for the rest of the batch
                    group[i][1].set_result(Completion(None, error=CANCELLED))

                try:
                    results = self.generate_batch([r for r, _, _ in group], [s for _, _, s in group], answer_now)
                except Exception as exc:  # a failing batch fails its requests, not the engine
                    results = [Completion(None, error=f"local generation failed: {type(exc).__name__}: {exc}")
                               for _ in group]
                for (_, fut, _), result in zip(group, results):
                    if not fut.done():
                        fut.set_result(result)

    def generate_batch(self, requests: Sequence[ChatRequest], stops: Sequence[StopCheck | None] = (),
                       on_stopped=None) -> list[Completion]:
        """One left-padded ``generate`` call for requests sharing sampling parameters.

        ``stops[i]`` is polled between tokens; once it is true row ``i`` ends and ``on_stopped(i)`` is called.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        stops = list(stops) + [None] * (len(requests) - len(stops))
        stopped = [False] * len(requests)

        class CallerStopped(StoppingCriteria):  # polled between tokens; ends only the rows whose caller stopped
            def __call__(self, input_ids, scores, **kwargs):
                for i, stop in enumerate(stops):
                    if not stopped[i] and stop is not None and stop():
                        stopped[i] = True
                        if on_stopped is not None:
                            on_stopped(i)
                return torch.tensor(stopped, dtype=torch.bool, device=input_ids.device)

        prompts = [self._render(r) for r in requests]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        first = requests[0]
        sample = first.temperature > 0
        gen_kwargs: dict[str, Any] = {"max_new_tokens": first.max_tokens, "do_sample": sample,
                                      "pad_token_id": self.tokenizer.pad_token_id}
        if any(s is not None for s in stops):
            gen_kwargs["stopping_criteria"] = StoppingCriteriaList([CallerStopped()])
        if sample:
            gen_kwargs.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
        self._batches += 1
        torch.manual_seed(self.seed * 1_000_003 + self._batches + sum(r.seed or 0 for r in requests))
        with torch.inference_mode():
            out = self.lm.generate(**enc, **gen_kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        pad = self.tokenizer.pad_token_id
        new_tokens = (new != pad).sum(dim=1).tolist()
        return [Completion(None, error=CANCELLED) if halted else Completion(t, tokens=int(p + n))
                for t, p, n, halted in zip(texts, prompt_tokens, new_tokens, stopped)]

    def _render(self, request: ChatRequest) -> str:
        messages = request.message_dicts()
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    def close(self) -> None:
        if self.shared:  # a process-wide instance (local_runtime.shared_local_backend) stays loaded
            return
        self._closed = True
        stop_worker(self._queue, self._worker, lambda item: item[1])
        self._worker = None
