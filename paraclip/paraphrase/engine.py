"""The two-step paraphrasing run: filter captions, paraphrase each twice, write JSONL as it goes.

Method (ParaCLIP, Kim et al. 2024; official ``paraphrasing/call_openai.py``): keep captions
with 1 < words <= 15; step 1 paraphrases the caption, step 2 paraphrases step 1's output
while avoiding its words; one record per kept caption with ``index`` = position among the
kept captions. What we add: concurrency (``backend.parallelism`` records in flight),
cleaning + re-sampling of unusable outputs, failures recorded rather than dropped, quality
signals, a request cache, and exact resume: records are appended as they finish, and a rerun
with the same output path only does the indices that are missing. Backends that take whole
files instead of single requests (the OpenAI Batch API) drive the run themselves through
``backend.run_records`` and hand finished records back to the same writer.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from paraclip.errors import DataError, ParaclipError
from paraclip.files import atomic_write_text
from paraclip.paraphrase.backends.base import CANCELLED, Backend, ChatRequest, Completion
from paraclip.paraphrase.cache import RequestCache, request_key
from paraclip.paraphrase.config import ParaphraseConfig
from paraclip.paraphrase.io import (
    CaptionItem,
    OutputWriter,
    RunLock,
    as_captions,
    check_output_path,
    recover_output,
    write_records,
)
from paraclip.paraphrase.meaning.rules import drop_if_changed
from paraclip.paraphrase.postprocess import clean, rejection_reason
from paraclip.paraphrase.prompts import PromptPreset
from paraclip.paraphrase.quality import quality_signals


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


class Paraphraser:
    """Paraphrases one caption in two steps; thread-safe (one instance serves all workers)."""

    def __init__(self, backend: Backend, preset: PromptPreset, config: ParaphraseConfig,
                 cache: RequestCache | None = None, scorer=None):
        self.backend = backend
        self.preset = preset
        self.config = config
        self.cache = cache
        self.scorer = scorer
        self.identity = backend.identity()
        self.stopping = threading.Event()  # this run's stop flag, passed to the backend with every call
        self._steps_lock = threading.Lock()
        self.steps_in_flight = 0  # step 1 done, step 2 not yet: per-step progress between records

    def request(self, step: int, text: str, sample: int) -> ChatRequest:
        return ChatRequest.from_messages(self.preset.messages(step, text), self.preset.sampling, seed=sample)

    def _complete(self, request: ChatRequest) -> Completion:
        key = request_key(self.identity, request) if self.cache is not None else None
        if key and (hit := self.cache.get(key)):
            return hit
        completion = self.backend.generate([request], should_stop=self.stopping.is_set)[0]
        if completion.fatal:
            raise BackendFatalError(completion.error)
        if key and completion.ok:
            self.cache.put(key, completion)
        return completion

    def step(self, step: int, text: str, sources: list[str]) -> StepResult:
        """Sample until an output passes the checks, at most ``1 + max_resamples`` times."""
        result = StepResult(None, None, None)
        for sample in range(self.config.max_resamples + 1):
            completion = self._complete(self.request(step, text, sample))
            if result.take(step, completion, sources, self.config.max_output_words,
                           self.preset.instructions()):
                result.cancelled = not completion.ok and (self.stopping.is_set() or completion.error == CANCELLED)
                return result
            if self.stopping.is_set():
                result.cancelled = True
                return result
        result.give_up(step)
        return result

    def paraphrase(self, index: int, item: CaptionItem) -> dict[str, Any] | None:
        """The record for one caption, or None when the run was stopped before it finished."""
        if self.stopping.is_set():
            return None
        caption = item.caption
        s1 = self.step(1, caption, [caption])
        if s1.text is not None:
            self._count_step(+1)
            try:
                s2 = self.step(2, s1.text, [s1.text, caption])
            finally:
                self._count_step(-1)
        else:
            s2 = None
        if s1.cancelled or (s2 is not None and s2.cancelled):
            return None
        return self.build_record(index, item, s1, s2)

    def build_record(self, index: int, item: CaptionItem, s1: StepResult, s2: StepResult | None) -> dict[str, Any]:
        """The output record of one caption from its two step results (shared by every backend)."""
        caption = item.caption
        steps = [s for s in (s1, s2) if s is not None]
        error = s1.error or (s2.error if s2 else None)
        record: dict[str, Any] = {
            "index": index,
            "image_id": item.image_id,
            "caption": caption,
            "paraphrase_1": s1.text,
            "paraphrase_2": s2.text if s2 else None,
            "status": "failed" if error else "ok",
            "error": error,
            "backend": self.backend.kind,
            "model": self.backend.model,
            "preset": self.preset.name,
            "quality": quality_signals(caption, s1.text, s2.text if s2 else None),
            "review": "unreviewed",
            "raw": {"paraphrase_1": s1.raw, "paraphrase_2": s2.raw if s2 else None},
            "samples": [s.samples for s in steps],
            "tokens": sum(s.tokens for s in steps),
            "cached_requests": sum(s.cached for s in steps),
            "requests": sum(s.requests for s in steps),
            "source_line": item.line,
        }
        if self.scorer is not None:
            sim1, sim2 = self.scorer(caption, [record["paraphrase_1"], record["paraphrase_2"]])
            record["quality"].update(similarity_1=sim1, similarity_2=sim2)
            floor = self.config.min_similarity
            if floor is not None and not error:
                low = [s for s in (sim1, sim2) if s is not None and s < floor]
                if low:
                    record["status"] = "filtered"
                    record["error"] = f"similarity {min(low):.3f} < min_similarity {floor}"
        if self.config.drop_changed:
            drop_if_changed(record)
        return record

    def _count_step(self, delta: int) -> None:
        with self._steps_lock:
            self.steps_in_flight += delta

    def estimate_seconds(self, items: list[CaptionItem]) -> float | None:
        """About how long both steps of ``items`` take on this backend, from a sample of step-1 prompts."""
        if not items:
            return 0.0
        sample = items[:8]
        try:
            seconds = self.backend.estimate_seconds([self.request(1, it.caption, 0) for it in sample])
        except Exception:  # noqa: BLE001 - an estimate is optional; the run must not fail for it
            return None
        return None if seconds is None else round(2 * seconds * len(items) / len(sample), 1)


def select_captions(captions, config: ParaphraseConfig) -> tuple[list[CaptionItem], int]:
    """The paper's length filter, then ``limit``; returns (kept, number filtered out)."""
    kept = [c for c in captions if config.keeps(c.caption)]
    filtered = len(captions) - len(kept)
    if config.limit is not None:
        kept = kept[: max(0, int(config.limit))]
    return kept, filtered


def prepare_run(records_or_input, out_path: str | Path, config: ParaphraseConfig | None):
    """What every run (and a dry run) starts from: the checked config and output path, the captions
    read, and those kept by the caption filter (with the number filtered out)."""
    config = config or ParaphraseConfig()
    config.validate()
    out_path = Path(out_path)
    check_output_path(out_path)
    captions = as_captions(records_or_input, config.input)
    kept, n_filtered = select_captions(captions, config)
    return config, out_path, captions, kept, n_filtered


def _check_resume(out_path: Path, existing: dict[int, dict], kept: list[CaptionItem]) -> None:
    for index, rec in existing.items():
        if index >= len(kept) or rec.get("caption") != kept[index].caption:
            have = kept[index].caption if index < len(kept) else "(no such caption)"
            raise DataError(
                f"{out_path}: record index {index} is for caption {rec.get('caption')!r} but the input's caption "
                f"{index} is {have!r}: this output belongs to another input or filter setting. Choose another "
                f"--out, or delete the file to start over."
            )


def run_paraphrasing(
    records_or_input,
    out_path: str | Path,
    backend: Backend,
    config: ParaphraseConfig | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Paraphrase every kept caption into ``out_path`` (JSONL), resuming what is already there.

    ``records_or_input`` is a path (see :func:`read_captions`), a :class:`Captions`, or an
    iterable of captions / dicts / (image_id, caption) pairs. ``progress`` receives a stats
    dict after each record; ``should_stop()`` is polled and ends the run early (finished
    records are kept; rerun to resume). Returns the run summary (also written to
    ``OUT.summary.json``).
    """
    config, out_path, captions, kept, n_filtered = prepare_run(records_or_input, out_path, config)
    preset = config.resolve_preset(backend)
    lock = RunLock(out_path)
    lock.acquire()
    cache = RequestCache(config.cache_path) if config.use_cache else None
    scorer = _similarity_scorer(config)
    writer = None
    try:
        existing = recover_output(out_path)
        _check_resume(out_path, existing, kept)
        _warn_if_settings_changed(out_path, preset, backend)
        if config.retry_failed and any(r.get("status") == "failed" for r in existing.values()):
            existing = {i: r for i, r in existing.items() if r.get("status") != "failed"}
            write_records(out_path, [existing[i] for i in sorted(existing)])
        if config.drop_changed and any([drop_if_changed(r) for r in existing.values()]):  # records from before
            write_records(out_path, [existing[i] for i in sorted(existing)])
        todo = [(i, item) for i, item in enumerate(kept) if i not in existing]
        stats = {
            "total": len(kept), "done": len(existing), "resumed": len(existing), "written": 0,
            "ok": sum(r.get("status") == "ok" for r in existing.values()),
            "failed": sum(r.get("status") == "failed" for r in existing.values()),
            "filtered": sum(r.get("status") == "filtered" for r in existing.values()),
            "cached_requests": 0, "requests": 0, "tokens": 0, "elapsed_s": 0.0, "records_per_s": 0.0,
            "eta_s": None, "steps_total": 2 * len(kept), "steps_done": 2 * len(existing), "estimate_s": None,
            "event": "start",
        }
        failure_reasons = _count_reasons(r.get("error") for r in existing.values())  # resumed ones too
        paraphraser = Paraphraser(backend, preset, config, cache, scorer)
        writer = OutputWriter(out_path)
        if progress is not None:  # before any work: the size of the run and, where the backend can tell, its ETA
            stats["estimate_s"] = stats["eta_s"] = paraphraser.estimate_seconds([item for _, item in todo])
            progress(dict(stats))
        start = time.monotonic()

        def refresh_clock() -> float:
            """Steps done (a caption has two), elapsed time and the ETA from this run's pace; returns elapsed."""
            elapsed = time.monotonic() - start
            stats["elapsed_s"] = round(elapsed, 3)
            # a record's steps leave "in flight" when its step 2 returns, a moment before it is written and
            # counted as done: never report that gap as steps going backwards
            stats["steps_done"] = max(stats["steps_done"], 2 * stats["done"] + paraphraser.steps_in_flight)
            run_steps = stats["steps_done"] - 2 * stats["resumed"]
            if run_steps > 0 and elapsed > 0:
                stats["eta_s"] = round((stats["steps_total"] - stats["steps_done"]) * elapsed / run_steps, 1)
            return elapsed

        def report_steps() -> None:  # a step finished between two records
            if 2 * stats["done"] + paraphraser.steps_in_flight <= stats["steps_done"]:
                return
            refresh_clock()
            if progress is not None:
                progress(dict(stats, event="step"))

        def record_done(rec: dict[str, Any]) -> None:
            writer.write(rec)
            stats["written"] += 1
            stats["done"] += 1
            stats[rec["status"]] += 1
            stats["cached_requests"] += rec["cached_requests"]
            stats["requests"] += rec["requests"]
            stats["tokens"] += rec["tokens"]
            if rec["error"]:
                key = _reason_group(rec["error"])
                failure_reasons[key] = failure_reasons.get(key, 0) + 1
            elapsed = refresh_clock()
            stats["records_per_s"] = round(stats["written"] / elapsed, 3) if elapsed > 0 else 0.0
            stats["event"] = "record"
            if progress is not None:
                progress(dict(stats))

        run_records = getattr(backend, "run_records", None)
        if run_records is not None:  # batch APIs: request files, polling and follow-up batches
            report = (lambda **extra: progress({**stats, **extra})) if progress is not None else None
            stopped, interrupted, fatal = run_records(todo, paraphraser, out_path, record_done, should_stop, report)
        else:
            stopped, interrupted, fatal = _run_concurrently(todo, paraphraser, config, record_done, should_stop,
                                                            on_tick=report_steps)
        writer.close()
        complete = stats["done"] == stats["total"]
        if complete:
            _sort_output(out_path)
        summary = {
            **stats,
            "input": captions.source,
            "input_captions": len(captions),
            "skipped_bad_lines": len(captions.skipped),
            "skipped_messages": captions.skipped[:20],
            "filtered_by_length": n_filtered,
            "kept": len(kept),
            "failure_reasons": failure_reasons,
            "complete": complete,
            "stopped": stopped or interrupted or fatal is not None,
            "out": str(out_path),
            "backend": backend.identity(),
            "preset": preset.to_dict(),
            "config": {k: v for k, v in config.to_dict().items() if k != "cache_path"},
        }
        if hasattr(backend, "run_summary"):  # e.g. the batch backend's estimate, batch ids and request files
            summary.update(backend.run_summary())
        atomic_write_text(str(out_path) + ".summary.json", _json(summary))
        if fatal is not None:
            raise BackendFatalError(f"{fatal} Finished records are kept in {out_path}; rerun to resume.")
        if interrupted:
            raise KeyboardInterrupt
        return summary
    finally:
        try:
            if writer is not None:
                writer.close()  # raises again on a full disk: the lock must still be released below
        finally:
            if cache is not None:
                cache.close()
            lock.release()


def paraphrase_captions(captions, backend: Backend, config: ParaphraseConfig | None = None,
                        should_stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """Records in, records out, in memory: the kept captions' records in index order, no output file
    (so no resume). For a few captions at a time, e.g. the app's one-off paraphrase; whole inputs go
    through :func:`run_paraphrasing`. ``captions`` as there; batch backends are driven record by record."""
    config = config or ParaphraseConfig()
    config.validate()
    kept, _ = select_captions(as_captions(captions, config.input), config)
    cache = RequestCache(config.cache_path) if config.use_cache else None
    try:
        paraphraser = Paraphraser(backend, config.resolve_preset(backend), config, cache, _similarity_scorer(config))
        records: list[dict[str, Any]] = []
        _, interrupted, fatal = _run_concurrently(list(enumerate(kept)), paraphraser, config, records.append,
                                                  should_stop)
    finally:
        if cache is not None:
            cache.close()
    if fatal is not None:
        raise fatal
    if interrupted:
        raise KeyboardInterrupt
    return sorted(records, key=lambda r: r["index"])


def _similarity_scorer(config: ParaphraseConfig):
    if not (config.similarity or config.min_similarity is not None):
        return None
    from paraclip.paraphrase.quality import SimilarityScorer

    return SimilarityScorer(config.similarity_model)


def _run_concurrently(todo, paraphraser: Paraphraser, config: ParaphraseConfig, record_done, should_stop,
                      on_tick: Callable[[], None] | None = None):
    """Keep ``concurrency`` records in flight; returns (stopped, interrupted, fatal error or None).
    ``on_tick`` is called a few times a second (step-level progress between records)."""
    backend = paraphraser.backend
    stopped, interrupted, fatal = False, False, None
    workers = max(1, int(config.concurrency or backend.parallelism))
    jobs = iter(todo)
    pending: set = set()
    with ThreadPoolExecutor(workers, thread_name_prefix="paraclip-paraphrase") as pool:
        def refill() -> None:
            while len(pending) < 2 * workers:
                job = next(jobs, None)
                if job is None:
                    return
                pending.add(pool.submit(paraphraser.paraphrase, *job))

        def stop() -> None:  # this run only: its calls end at their next check (the backend may serve others)
            paraphraser.stopping.set()

        refill()
        try:
            while pending:
                done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in done:
                    pending.discard(fut)
                    try:
                        rec = fut.result()
                    except BackendFatalError as exc:
                        fatal = fatal or exc
                        stop()
                        continue
                    if rec is not None:
                        record_done(rec)
                if on_tick is not None:
                    on_tick()
                if not stopped and should_stop is not None and should_stop():
                    stopped = True
                    stop()
                if not (stopped or fatal):
                    refill()
        except KeyboardInterrupt:
            interrupted = True
            stop()
            for fut in list(pending):  # keep what finishes; nothing half-done is written
                try:
                    rec = fut.result()
                except Exception:
                    continue
                if rec is not None:
                    record_done(rec)
    return stopped, interrupted, fatal


def _sort_output(out_path: Path) -> None:
    """Rewrite a finished output in index order (the official files are in index order)."""
    records = recover_output(out_path)
    order = sorted(records)
    try:
        with open(out_path, "rb") as f:
            current = [json.loads(line)["index"] for line in f if line.strip()]
    except (ValueError, KeyError, TypeError, RecursionError):
        current = None  # anything unexpected in the file: rewrite it from the recovered records
    if current != order:
        write_records(out_path, [records[i] for i in order])


def _warn_if_settings_changed(out_path: Path, preset: PromptPreset, backend: Backend) -> None:
    summary_path = Path(str(out_path) + ".summary.json")
    if not out_path.exists() or not summary_path.exists():
        return
    try:
        before = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return
    now = json.loads(_json({"preset": preset.to_dict(), "backend": backend.identity()}))  # as stored
    if before.get("preset") != now["preset"] or before.get("backend") != now["backend"]:
        warnings.warn(
            f"{out_path} was started with other prompts or another backend/model; the records will be mixed "
            f"(each record names its backend, model and preset). Use another --out to keep runs apart.",
            stacklevel=3,
        )


def _reason_group(error: str) -> str:
    """The part of an error message that is the same for every record failing the same way."""
    return error.split(" (after")[0]


def _count_reasons(errors) -> dict[str, int]:
    counts: dict[str, int] = {}
    for error in errors:
        if error:
            counts[_reason_group(error)] = counts.get(_reason_group(error), 0) + 1
    return counts


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
