"""Local GGUF backend on llama.cpp (PyPI ``llama-cpp-python``): the quantised model runs as is.

Measured against the transformers path (which de-quantises the GGUF into a bf16 copy) in
``bench/paraphrase_local.py``; the figures are in the README. One worker thread owns the
llama.cpp context and serves every caller (several engine threads, several app sessions)
with *parallel sequences*: up to ``parallel`` requests share each ``llama_decode`` call,
and a request joins or leaves the batch between two tokens (continuous batching). Before
each decode the worker polls every request's own ``should_stop``, so stopping one caller
ends its generation within a token or two and never touches another caller's requests.

Prompts of one step share a long prefix (system message, few-shot turns), so the worker
keeps the last prompt's KV cells in a spare sequence and copies the common prefix into a
new request's sequence instead of evaluating it again.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from paraclip.errors import ModelLoadError
from paraclip.paraphrase.backends.base import (CANCELLED, ChatRequest, Completion, LocalModelBackend, StopCheck,
                                              await_completions, stop_worker)

LLAMA_CPP_VERSION = "0.3.36"  # the pinned, source-built version (scripts/setup.sh)
Progress = Callable[[float, str], None]
#: the cost of each extra sequence's token in a decode, relative to a one-token decode (for the ETA).
#: bench/paraphrase_local.py with the offline pack on 2 shared cores: 3 captions with 4 parallel sequences
#: ran 2.77x faster than one at a time (load ~9), i.e. about 0.05; 0.1 keeps the estimate on the safe side.
PARALLEL_TOKEN_COST = 0.1


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


@dataclass
class _Job:
    request: ChatRequest
    tokens: list[int]  # the rendered prompt
    should_stop: StopCheck | None
    future: Future
    seed: int
    slot: int = -1
    n_past: int = 0  # tokens of this sequence already in the KV cache
    out: list[int] = field(default_factory=list)
    next_token: int | None = None  # sampled, not yet decoded
    evaluating: bool = False  # its prompt evaluation has begun
    sampler: Any = None

    def stop_requested(self) -> bool:
        return bool(self.should_stop is not None and self.should_stop())


class LlamaCppBackend(LocalModelBackend):
    """A GGUF file on llama.cpp's CPU runtime; see the module docstring."""

    runtime = "llama.cpp"

    def __init__(
        self,
        model: str | os.PathLike,
        threads: int | None = None,
        parallel: int | None = None,
        ctx_per_sequence: int = 1024,
        batch_tokens: int = 512,
        seed: int = 0,
        progress: Progress | None = None,
        batch_size: int | None = None,  # the CLI's --concurrency for local backends: same as parallel
        concurrency: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        linger_ms: float | None = None,  # accepted for symmetry with the transformers backend; unused
    ):
        if device not in (None, "cpu", "auto"):
            raise ModelLoadError(f"The llama.cpp backend runs on the CPU (this build has no GPU support); got "
                                 f"--device {device}. Use the transformers runtime for GPUs.")
        if dtype not in (None, "auto"):
            raise ModelLoadError(f"--dtype {dtype} does not apply to a GGUF file on llama.cpp: the file's own "
                                 f"quantisation is used. Leave --dtype unset.")
        path = Path(model).expanduser()
        if path.suffix.lower() == ".gguf" and not path.is_file():
            raise ModelLoadError(f"{model}: no such file. Give the path of a .gguf file that exists "
                                 f"(`paraclip paraphrase --setup-llm-pack` installs the offline model).")
        if not (path.is_file() and path.suffix.lower() == ".gguf"):
            raise ModelLoadError(f"{model}: the llama.cpp backend needs a .gguf file; give its path (model "
                                 f"folders and Hugging Face ids go to the transformers runtime).")
        self.path = path.resolve()
        self.model = path.name
        self.source = str(self.path)
        self.threads = int(threads or os.cpu_count() or 1)
        self.parallel = max(1, int(parallel or concurrency or batch_size or 4))
        self.parallelism = self.parallel
        self.ctx_per_sequence = int(ctx_per_sequence)
        self.batch_tokens = int(batch_tokens)
        self.seed = int(seed)
        self._load(progress)
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.shared = False  # a process-wide instance ignores close() (see local_runtime.shared_local_backend)
        self.decodes = 0  # llama_decode calls so far (tests and the bench read it)
        self.speed = {"prompt_tokens": 0, "prompt_s": 0.0, "gen_tokens": 0, "gen_s": 0.0}

    # -- loading ----------------------------------------------------------------------------------
    def _load(self, progress: Progress | None) -> None:
        try:
            import llama_cpp
            from llama_cpp import _internals
            from llama_cpp._logger import set_verbose
        except ImportError as exc:
            raise ModelLoadError(
                f"llama-cpp-python is not installed ({exc}). `scripts/setup.sh` builds it from source, or "
                f"`pip install llama-cpp-python=={LLAMA_CPP_VERSION}`; without it GGUF files run through transformers."
            ) from exc
        set_verbose(bool(os.environ.get("PARACLIP_LLAMA_VERBOSE")))
        self._llama = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        if progress is not None:
            def report(fraction, _user_data):
                try:
                    progress(float(fraction), f"loading {self.model}")
                except Exception:  # noqa: BLE001 - a failing progress display must not abort the load
                    pass
                return True

            self._progress_cb = llama_cpp.llama_progress_callback(report)  # kept alive while loading
            model_params.progress_callback = self._progress_cb
        try:
            self.lm = _internals.LlamaModel(path_model=str(self.path), params=model_params, verbose=False)
        except Exception as exc:
            raise ModelLoadError(f"llama.cpp could not load {self.path}: {exc}. Is it a complete GGUF file of an "
                                 f"architecture this llama.cpp ({LLAMA_CPP_VERSION}) supports?") from exc
        ctx_params = llama_cpp.llama_context_default_params()
        # one spare sequence holds the prefix cache; unified KV cells let sequences share the prefix
        ctx_params.n_seq_max = self.parallel + 1
        ctx_params.n_ctx = self.ctx_per_sequence * (self.parallel + 1)
        ctx_params.n_batch = self.batch_tokens
        ctx_params.n_ubatch = self.batch_tokens
        ctx_params.n_threads = self.threads
        ctx_params.n_threads_batch = self.threads
        ctx_params.kv_unified = True
        try:
            self.ctx = _internals.LlamaContext(model=self.lm, params=ctx_params, verbose=False)
        except Exception as exc:
            raise ModelLoadError(f"llama.cpp could not create a context for {self.path}: {exc}.") from exc
        self._batch = _internals.LlamaBatch(n_tokens=self.batch_tokens, embd=0, n_seq_max=self.parallel + 1,
                                            verbose=False)
        self._sampler_cls = _internals.LlamaSampler
        self.n_params = int(self.lm.n_params())
        self._render = self._make_renderer()
        self._eos = self.lm.token_eos()
        self._add_bos = bool(self.lm.add_bos_token())
        self._prefix_slot = self.parallel
        self._prefix_tokens: list[int] = []
        if progress is not None:
            progress(1.0, f"{self.model} loaded")

    def _make_renderer(self) -> Callable[[list[dict[str, str]]], str]:
        template = self.lm.metadata().get("tokenizer.chat_template")
        if not template:
            return lambda messages: "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def piece(token: int) -> str:
            return self.lm.token_get_text(token) if token >= 0 else ""

        formatter = Jinja2ChatFormatter(template=template, eos_token=piece(self.lm.token_eos()),
                                        bos_token=piece(self.lm.token_bos()), add_generation_prompt=True)
        return lambda messages: formatter(messages=messages).prompt

    def __repr__(self) -> str:
        return f"LlamaCppBackend(model={self.model!r}, threads={self.threads}, parallel={self.parallel})"

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "source": self.source, "runtime": self.runtime}

    def tokenize(self, request: ChatRequest) -> list[int]:
        prompt = self._render(request.message_dicts())
        return self.lm.tokenize(prompt.encode("utf-8"), add_bos=self._add_bos, special=True)

    # -- the callers' side --------------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest], should_stop: StopCheck | None = None) -> list[Completion]:
        if self._closed:
            return [Completion(None, error="backend closed") for _ in requests]
        self._ensure_worker()
        futures = []
        for request in requests:
            fut: Future = Future()
            try:
                tokens = self.tokenize(request)
            except Exception as exc:  # noqa: BLE001 - one bad request fails alone
                fut.set_result(Completion(None, error=f"could not render the prompt: {exc}"))
            else:
                if len(tokens) >= self.ctx_per_sequence:
                    fut.set_result(Completion(None, error=f"prompt of {len(tokens)} tokens does not fit the "
                                                          f"context ({self.ctx_per_sequence} tokens per sequence)"))
                else:
                    self._queue.put(_Job(request, tokens, should_stop, fut, self._request_seed(request)))
            futures.append(fut)
        return await_completions(futures, should_stop)

    def _request_seed(self, request: ChatRequest) -> int:
        # depends on the request only, so an output does not change with what else was in the batch
        key = f"{self.seed}|{request.messages}|{request.seed}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="paraclip-llama-cpp", daemon=True)
                self._worker.start()

    # -- the worker ----------------------------------------------------------------------------------
    def _serve(self) -> None:
        active: list[_Job] = []
        while not self._closed:
            if not self._admit(active):
                break
            if not active:
                continue
            for job in [j for j in active if j.stop_requested()]:
                self._finish(active, job, Completion(None, error=CANCELLED))
            if not active:
                continue
            try:
                self._step(active)
            except Exception as exc:  # noqa: BLE001 - a failed decode fails its requests, not the process
                for job in list(active):
                    self._finish(active, job, Completion(None, error=f"llama.cpp: {type(exc).__name__}: {exc}"))
                self.ctx.kv_cache_clear()
                self._prefix_tokens = []
        for job in active:
            job.future.set_result(Completion(None, error="backend closed"))

    def _admit(self, active: list[_Job]) -> bool:
        """Move queued jobs into free sequences; blocks briefly while idle. False once closed."""
        while len(active) < self.parallel:
            try:
                job = self._queue.get(timeout=0.5) if not active else self._queue.get_nowait()
            except queue.Empty:
                return not self._closed
            if job is None:
                return False
            if job.stop_requested():
                job.future.set_result(Completion(None, error=CANCELLED))
                continue
            job.slot = min(set(range(self.parallel)) - {j.slot for j in active})
            self._start(job)
            active.append(job)
        return True

    def _start(self, job: _Job) -> None:
        self.ctx.kv_cache_seq_rm(job.slot, -1, -1)
        job.sampler = self._sampler(job)

    def _share_prefix(self, job: _Job) -> None:
        """Copy the prefix this job's prompt shares with the last evaluated prompt instead of evaluating it."""
        # the last prompt token is always decoded: its logits give the first new token
        shared = min(_shared_prefix(job.tokens, self._prefix_tokens), len(job.tokens) - 1)
        if shared > 0:
            self.ctx.kv_cache_seq_cp(self._prefix_slot, job.slot, 0, shared)
        job.n_past = shared
        job.evaluating = True

    def _sampler(self, job: _Job):
        request = job.request
        sampler = self._sampler_cls()
        if request.temperature <= 0:
            sampler.add_greedy()
        else:  # temperature before top-p, as transformers applies them
            sampler.add_temp(request.temperature)
            if request.top_p < 1.0:
                sampler.add_top_p(request.top_p, 1)
            sampler.add_dist(job.seed)
        return sampler

    def _step(self, active: list[_Job]) -> None:
        """One ``llama_decode``: a token for every generating job, prompt chunks for the rest."""
        batch = self._batch.batch
        batch.n_tokens = 0
        rows: list[tuple[_Job, int]] = []  # jobs whose last token in this batch asks for logits
        budget = self.batch_tokens
        generating = [j for j in active if j.next_token is not None]
        prompting = [j for j in active if j.next_token is None]
        for job in generating:
            self._put(batch, job.next_token, job.n_past, job.slot, True)
            rows.append((job, batch.n_tokens - 1))
            job.n_past += 1
            budget -= 1
        prompt_tokens = 0
        # one prompt at a time: the next one then finds this one's prefix (few-shot turns) in the cache
        for job in prompting[:1]:
            if not job.evaluating:
                self._share_prefix(job)
            chunk = job.tokens[job.n_past: job.n_past + budget]
            for k, token in enumerate(chunk):
                self._put(batch, token, job.n_past + k, job.slot, False)
            job.n_past += len(chunk)
            budget -= len(chunk)
            prompt_tokens += len(chunk)
            if job.n_past == len(job.tokens):
                batch.logits[batch.n_tokens - 1] = True
                rows.append((job, batch.n_tokens - 1))
        start = time.perf_counter()
        self.ctx.decode(self._batch)
        elapsed = time.perf_counter() - start
        self.decodes += 1
        self._account(prompt_tokens, len(generating), elapsed)
        for job, row in rows:
            if job.next_token is None:  # its prompt is complete: remember it as the prefix to share
                self._keep_prefix(job)
            token = job.sampler.sample(self.ctx, row)
            job.sampler.accept(token)
            if self._llama.llama_vocab_is_eog(self.lm.vocab, token):
                self._finish(active, job, self._completion(job))
                continue
            job.out.append(token)
            job.next_token = token
            limit = min(job.request.max_tokens, self.ctx_per_sequence - len(job.tokens))
            if len(job.out) >= limit:
                self._finish(active, job, self._completion(job))

    @staticmethod
    def _put(batch, token: int, pos: int, seq: int, logits: bool) -> None:
        i = batch.n_tokens
        batch.token[i] = token
        batch.pos[i] = pos
        batch.seq_id[i][0] = seq
        batch.n_seq_id[i] = 1
        batch.logits[i] = logits
        batch.n_tokens = i + 1

    def _keep_prefix(self, job: _Job) -> None:
        if job.tokens == self._prefix_tokens:
            return
        self.ctx.kv_cache_seq_rm(self._prefix_slot, -1, -1)
        self.ctx.kv_cache_seq_cp(job.slot, self._prefix_slot, 0, len(job.tokens))
        self._prefix_tokens = list(job.tokens)

    def _account(self, prompt_tokens: int, gen_tokens: int, elapsed: float) -> None:
        # a mixed batch is charged to both sides in proportion to its tokens (enough for an ETA)
        total = prompt_tokens + gen_tokens
        if total == 0:
            return
        self.speed["prompt_tokens"] += prompt_tokens
        self.speed["prompt_s"] += elapsed * prompt_tokens / total
        self.speed["gen_tokens"] += gen_tokens
        self.speed["gen_s"] += elapsed * gen_tokens / total

    def _completion(self, job: _Job) -> Completion:
        text = self.lm.detokenize(job.out, special=False).decode("utf-8", errors="replace")
        return Completion(text, tokens=len(job.tokens) + len(job.out))

    def _finish(self, active: list[_Job], job: _Job, completion: Completion) -> None:
        active.remove(job)
        self.ctx.kv_cache_seq_rm(job.slot, -1, -1)
        if job.sampler is not None:
            job.sampler.close()
        job.future.set_result(completion)

    # -- estimates and shutdown ---------------------------------------------------------------------
    def estimate_seconds(self, requests: Sequence[ChatRequest], new_tokens: int = 24) -> float | None:
        """Seconds to serve ``requests`` on this machine, from the speed measured so far.

        Before the first generation, the first request is run for a few tokens to measure the speed; this
        also leaves its prompt in the prefix cache, so the probe is not wasted work.
        """
        if not requests:
            return 0.0
        if self.speed["gen_tokens"] < 2 or self.speed["prompt_tokens"] < 16:
            self.generate([replace(requests[0], max_tokens=3)])
        prompt_tps = self.speed["prompt_tokens"] / max(self.speed["prompt_s"], 1e-9)
        gen_tps = self.speed["gen_tokens"] / max(self.speed["gen_s"], 1e-9)
        # the first prompt is evaluated in full, the others only past the prefix they share with it
        first = self.tokenize(requests[0])
        prompt = len(first) + sum(len(t) - _shared_prefix(t, first) for t in map(self.tokenize, requests[1:]))
        lanes = min(self.parallel, len(requests))
        gen = len(requests) * new_tokens / lanes * (1 + PARALLEL_TOKEN_COST * (lanes - 1))
        return prompt / prompt_tps + gen / gen_tps

    def close(self) -> None:
        if self.shared:
            return
        self.close_now()

    def close_now(self) -> None:
        """Stop the worker and free the model (also for a shared instance)."""
        self._closed = True
        stop_worker(self._queue, self._worker, lambda job: job.future)
        self._worker = None
