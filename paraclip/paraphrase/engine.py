"""The two-step paraphrasing run: filter captions, paraphrase each twice, write JSONL as it goes.

Method (ParaCLIP, Kim et al. 2024; official ``paraphrasing/call_openai.py``): keep captions
with 1 < words <= 15; step 1 paraphrases the caption, step 2 paraphrases step 1's output
while avoiding its words; one record per kept caption with ``index`` = position among the
kept captions. What we add: concurrency (``backend.parallelism`` records in flight),
cleaning + re-sampling of unusable outputs, failures recorded rather than dropped, quality
signals, a request cache, and exact resume: records are appended as they finish, and a rerun
with the same output path only does the indices that are missing. A backend that takes whole
files instead of single requests (the OpenAI Batch API) says so (``runs_batches``); the engine
then runs the captions through :class:`paraclip.paraphrase.batch.BatchRun`, which builds records
with the same :meth:`Paraphraser.build_record` and hands them to the same writer.
"""

from __future__ import annotations

import json
import threading
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from paraclip.errors import DataError
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
from paraclip.paraphrase.meaning.judge import (RUN_JUDGE_VERSION, SMALL_JUDGE_WARNING, apply_verdicts,
                                              check_judge_backend, judge_existing, judge_request)
from paraclip.paraphrase.meaning.rules import drop_if_changed
from paraclip.paraphrase.prompts import PromptPreset
from paraclip.paraphrase.quality import quality_signals
from paraclip.paraphrase.records import ParaphraseRecord, status_of
from paraclip.paraphrase.run_stats import RunStats
from paraclip.paraphrase.steps import BackendFatalError, StepResult


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

    def paraphrase(self, index: int, item: CaptionItem) -> ParaphraseRecord | None:
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
        replies = None
        if self.config.meaning_judge and s1.error is None and s2 is not None and s2.error is None:
            replies = self.judge(caption, {1: s1.text, 2: s2.text})
            if self.stopping.is_set():
                return None
        return self.build_record(index, item, s1, s2, replies)

    def judge(self, caption: str, texts: dict[int, str | None]) -> dict[int, str | None]:
        """``--meaning-judge``: the backend's reply per step to "does this paraphrase keep the caption's meaning?"
        (greedy, a few tokens; cached like every request); None where the request failed."""
        replies: dict[int, str | None] = {}
        for step, text in texts.items():
            if text:
                completion = self._complete(judge_request(caption, text, RUN_JUDGE_VERSION))
                replies[step] = completion.text if completion.ok else None
        return replies

    def build_record(self, index: int, item: CaptionItem, s1: StepResult, s2: StepResult | None,
                     judge_replies: dict[int, str | None] | None = None) -> ParaphraseRecord:
        """The output record of one caption from its two step results (shared by every backend): ``failed``
        when a step failed, ``filtered`` below the similarity floor or (``--drop-changed``) when the
        meaning changed, else ``ok``. ``judge_replies`` (``--meaning-judge``) decide the meaning flags."""
        caption, p2 = item.caption, (s2.text if s2 else None)
        steps = [s for s in (s1, s2) if s is not None]
        error = s1.error or (s2.error if s2 else None)
        record = ParaphraseRecord(
            index=index, image_id=item.image_id, caption=caption, paraphrase_1=s1.text, paraphrase_2=p2,
            status="failed" if error else "ok", error=error, backend=self.backend.kind, model=self.backend.model,
            preset=self.preset.name, quality=quality_signals(caption, s1.text, p2),
            extra={"raw": {"paraphrase_1": s1.raw, "paraphrase_2": s2.raw if s2 else None},
                   "samples": [s.samples for s in steps], "tokens": sum(s.tokens for s in steps),
                   "cached_requests": sum(s.cached for s in steps), "requests": sum(s.requests for s in steps),
                   "source_line": item.line})
        if judge_replies is not None:
            apply_verdicts(record.quality, judge_replies, f"{self.backend.kind}:{self.backend.model}")
            record.extra["judge_requests"] = len(judge_replies)
        if self.scorer is not None:
            sim1, sim2 = self.scorer(caption, [record.paraphrase_1, record.paraphrase_2])
            record.quality.update(similarity_1=sim1, similarity_2=sim2)
            floor = self.config.min_similarity
            low = [s for s in (sim1, sim2) if s is not None and s < floor] if floor is not None and not error else []
            if low:
                record.mark("filtered", f"similarity {min(low):.3f} < min_similarity {floor}")
        if self.config.drop_changed:
            drop_if_changed(record)
        return record

    def close(self) -> None:
        """Close the request cache (the backend belongs to the caller)."""
        if self.cache is not None:
            self.cache.close()

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


def kept_on_resume(existing: dict[int, dict], config: ParaphraseConfig) -> dict[int, dict]:
    """The records of an output that a run keeps (``retry_failed`` does the failed ones again)."""
    if not config.retry_failed:
        return existing
    return {i: r for i, r in existing.items() if status_of(r) != "failed"}


def open_paraphraser(backend: Backend, config: ParaphraseConfig, preset: PromptPreset | None = None) -> Paraphraser:
    """A :class:`Paraphraser` with the config's request cache and similarity scorer (close it after)."""
    cache = RequestCache(config.cache_path) if config.use_cache else None
    try:
        return Paraphraser(backend, preset or config.resolve_preset(backend), config, cache, _similarity_scorer(config))
    except BaseException:
        if cache is not None:
            cache.close()
        raise


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
    check_judge_backend(config, getattr(backend, "runs_batches", False))
    if config.meaning_judge and backend.suggested_preset() == "small-model":
        warnings.warn(SMALL_JUDGE_WARNING, stacklevel=2)
    preset = config.resolve_preset(backend)
    lock = RunLock(out_path)
    lock.acquire()
    paraphraser = sink = None
    try:
        paraphraser = open_paraphraser(backend, config, preset)
        existing = _resume(out_path, kept, config, preset, paraphraser)
        todo = [(i, item) for i, item in enumerate(kept) if i not in existing]
        stats = RunStats.resuming(len(kept), existing.values())
        sink = _RecordSink(OutputWriter(out_path), stats, paraphraser, progress)
        if progress is not None:  # before any work: the size of the run and, where the backend can tell, its ETA
            stats.estimate_s = stats.eta_s = paraphraser.estimate_seconds([item for _, item in todo])
            progress(stats.to_dict())
        stats.start_clock()
        stopped, interrupted, fatal, extra = _write_as_you_go(todo, paraphraser, out_path, sink, should_stop)
        sink.writer.close()
        summary = _finish(out_path, stats, captions, n_filtered, stopped or interrupted or fatal is not None,
                          backend, preset, config, extra)
        if fatal is not None:
            raise BackendFatalError(f"{fatal} Finished records are kept in {out_path}; rerun to resume.")
        if interrupted:
            raise KeyboardInterrupt
        return summary
    finally:
        try:
            if sink is not None:
                sink.writer.close()  # raises again on a full disk: the lock must still be released below
        finally:
            if paraphraser is not None:
                paraphraser.close()
            lock.release()


def _resume(out_path: Path, kept: list[CaptionItem], config: ParaphraseConfig, preset: PromptPreset,
            paraphraser: Paraphraser) -> dict[int, dict[str, Any]]:
    """The records already in the output that this run keeps, by index; the file is rewritten without
    those it does again (``retry_failed``), with the judge's verdicts on those not judged yet
    (``meaning_judge``) and with those ``drop_changed`` now filters."""
    existing = recover_output(out_path)
    _check_resume(out_path, existing, kept)
    kept_records = kept_on_resume(existing, config)
    if len(kept_records) < len(kept):  # records will be added: say if they come from other settings
        _warn_if_settings_changed(out_path, preset, paraphraser.backend)
    if len(kept_records) < len(existing):
        existing = kept_records
        write_records(out_path, [existing[i] for i in sorted(existing)])
    if config.meaning_judge:  # records written without the judge: ask it now, as many at once as the backend takes
        with ThreadPoolExecutor(max(1, paraphraser.backend.parallelism)) as pool:
            if any(list(pool.map(lambda r: judge_existing(r, paraphraser), existing.values()))):
                write_records(out_path, [existing[i] for i in sorted(existing)])
    if config.drop_changed and any([drop_if_changed(r) for r in existing.values()]):  # records from before
        write_records(out_path, [existing[i] for i in sorted(existing)])
    return existing


class _RecordSink:
    """Where finished records go: appended to the output, counted, reported to ``progress``."""

    def __init__(self, writer: OutputWriter, stats: RunStats, paraphraser: Paraphraser, progress):
        self.writer, self.stats, self.paraphraser, self.progress = writer, stats, paraphraser, progress

    def record_done(self, record: ParaphraseRecord) -> None:
        self.writer.write(record.to_json())
        self.stats.add(record, self.paraphraser.steps_in_flight)
        if self.progress is not None:
            self.progress(self.stats.to_dict())

    def step_done(self) -> None:
        """Called a few times a second: reports steps finished between two records."""
        if self.stats.step_finished(self.paraphraser.steps_in_flight) and self.progress is not None:
            self.progress(dict(self.stats.to_dict(), event="step"))

    def batch_event(self, **extra: Any) -> None:
        """A batch run's news (uploads, polls, downloads) with the counters."""
        self.progress({**self.stats.to_dict(), **extra})


def _write_as_you_go(todo, paraphraser: Paraphraser, out_path: Path, sink: _RecordSink, should_stop):
    """Paraphrase ``todo`` into the sink; returns (stopped, interrupted, fatal error or None, what the
    summary adds: a batch run's estimate, batches and request files)."""
    backend = paraphraser.backend
    if getattr(backend, "runs_batches", False):  # a batch API: request files, polling and follow-up batches
        from paraclip.paraphrase.batch import BatchRun  # here: httpx is loaded for batch runs only

        run = BatchRun(backend, todo, paraphraser, out_path, sink.record_done, should_stop,
                       sink.batch_event if sink.progress is not None else None)
        return (*run.run(), {"batch": run.info})
    return (*_run_concurrently(todo, paraphraser, paraphraser.config, sink.record_done, should_stop,
                               on_tick=sink.step_done), {})


def _finish(out_path: Path, stats: RunStats, captions, n_filtered: int, stopped: bool, backend: Backend,
            preset: PromptPreset, config: ParaphraseConfig, extra: dict[str, Any]) -> dict[str, Any]:
    """Sort a complete output by index; write and return the run summary."""
    if stats.complete:
        _sort_output(out_path)
    summary = {
        **stats.to_dict(),
        "input": captions.source,
        "input_captions": len(captions),
        "skipped_bad_lines": len(captions.skipped),
        "skipped_messages": captions.skipped[:20],
        "filtered_by_length": n_filtered,
        "kept": stats.total,
        "failure_reasons": stats.failure_reasons,
        "complete": stats.complete,
        "stopped": stopped,
        "out": str(out_path),
        "backend": backend.identity(),
        "preset": preset.to_dict(),
        "config": {k: v for k, v in config.to_dict().items() if k != "cache_path"},
        **extra,
    }
    atomic_write_text(str(out_path) + ".summary.json", _json(summary))
    return summary


def paraphrase_captions(captions, backend: Backend, config: ParaphraseConfig | None = None,
                        should_stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """Records in, records out, in memory: the kept captions' records (JSON objects) in index order, no
    output file (so no resume). For a few captions at a time, e.g. the app's one-off paraphrase; whole
    inputs go through :func:`run_paraphrasing`. ``captions`` as there; batch backends are driven record
    by record."""
    config = config or ParaphraseConfig()
    config.validate()
    kept, _ = select_captions(as_captions(captions, config.input), config)
    paraphraser = open_paraphraser(backend, config)
    records: list[ParaphraseRecord] = []
    try:
        _, interrupted, fatal = _run_concurrently(list(enumerate(kept)), paraphraser, config, records.append,
                                                  should_stop)
    finally:
        paraphraser.close()
    if fatal is not None:
        raise fatal
    if interrupted:
        raise KeyboardInterrupt
    return [r.to_json() for r in sorted(records, key=lambda r: r.index)]


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
            stacklevel=4,
        )


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
