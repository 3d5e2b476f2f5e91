"""Reading captions (txt / CSV / TSV / JSONL / JSON / Parquet / HF datasets) and the JSONL output.

Input errors name the file, the line and the field, and say what to do; with
``skip_bad_lines=True`` bad lines are reported (``Captions.skipped``) and reading goes on.

The output is JSON Lines compatible with the official release (``index, image_id, caption,
paraphrase_1, paraphrase_2``) plus our fields: one :class:`~paraclip.paraphrase.records.ParaphraseRecord`
per line. It is appended one record per line and
flushed, so a killed run loses at most the line being written; :func:`recover_output`
drops such a torn last line on resume. :func:`check_output_path` finds an unusable output
path before any work starts; :class:`RunLock` keeps two writers off one output.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from paraclip.data.tables import iter_delimited, iter_jsonl, iter_lines, table_suffix
from paraclip.errors import DataError
from paraclip.files import atomic_write, naming_errors, parse_json, read_bytes, read_text
from paraclip.paraphrase.lock import RunLock
from paraclip.paraphrase.records import REVIEW_STATES


@dataclass(frozen=True)
class CaptionItem:
    caption: str
    image_id: str | None
    line: int  # 1-based line (or row) in the source, for messages


@dataclass
class Captions:
    items: list[CaptionItem]
    source: str
    skipped: list[str] = field(default_factory=list)  # one message per skipped bad line

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[CaptionItem]:
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _Bad:
    """Collects bad-line messages; raises on the first unless skipping."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        if not self.skip:
            raise DataError(message + " Fix the line, or pass --skip-bad-lines (skip_bad_lines=True) to skip such lines.")
        self.messages.append(message)


def read_captions(
    path: str | os.PathLike,
    caption_column: str = "caption",
    image_id_column: str = "image_id",
    skip_bad_lines: bool = False,
    image_ids_path: str | os.PathLike | None = None,
) -> Captions:
    """Read captions from a file (format from the extension) or ``hf://DATASET[:SPLIT]``.

    Text files hold one caption per line; ``image_ids_path`` is the paper's parallel file of
    image ids (same number of lines). Tables need ``caption_column``; ``image_id_column`` is
    used when present.
    """
    spec = str(path)
    if spec.startswith("hf://") or spec.startswith("hf:"):
        return _read_hf(spec, caption_column, image_id_column)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such input file.")
    bad = _Bad(skip_bad_lines)
    suffix = table_suffix(path)  # captions.jsonl.gz is JSONL
    if suffix in (".jsonl", ".ndjson"):
        items = _read_jsonl(path, caption_column, image_id_column, bad)
    elif suffix == ".json":
        items = _read_json(path, caption_column, image_id_column, bad)
    elif suffix in (".csv", ".tsv"):
        items = _read_table(path, "\t" if suffix == ".tsv" else ",", caption_column, image_id_column, bad)
    elif suffix in (".parquet", ".pq"):
        items = _read_parquet(path, caption_column, image_id_column, bad)
    else:
        items = _read_text(path, image_ids_path, bad)
    return Captions(items=items, source=str(path), skipped=bad.messages)


def _decoded_lines(path: Path, bad: _Bad) -> list[tuple[int, str]]:
    """(line number, text) for every line, without line endings; non-UTF-8 lines reported."""
    return list(iter_lines(path, bad))


def _line_count(path: Path) -> int:
    lines = read_bytes(path).split(b"\n")
    return len(lines) - (1 if lines[-1] == b"" else 0)


def _read_text(path: Path, image_ids_path, bad: _Bad) -> list[CaptionItem]:
    lines = _decoded_lines(path, bad)
    if image_ids_path is None:
        return [CaptionItem(text, None, n) for n, text in lines]
    ids_path = Path(image_ids_path)
    if not ids_path.exists():
        raise DataError(f"{ids_path}: no such image-id file.")
    id_lines = _decoded_lines(ids_path, _Bad(False))
    n_captions = _line_count(path)
    if len(id_lines) != n_captions:
        raise DataError(f"{ids_path} has {len(id_lines)} lines but {path} has {n_captions}: the image-id file must "
                        f"have one id per caption line, in the same order (as the paper's img_ids.txt).")
    ids = dict(id_lines)
    return [CaptionItem(text, ids[n].strip(), n) for n, text in lines]


def _item(row: dict, n: int, where: str, caption_column: str, image_id_column: str, bad: _Bad) -> CaptionItem | None:
    caption = row.get(caption_column)
    if caption is None or (isinstance(caption, float) and caption != caption):
        bad(f"{where}: field {caption_column!r} is missing or null.")
        return None
    if not isinstance(caption, str):
        bad(f"{where}: field {caption_column!r} is a {type(caption).__name__}, not text.")
        return None
    image_id = row.get(image_id_column)
    return CaptionItem(caption.strip(), None if image_id is None else str(image_id), n)


def _items(rows, where, caption_column: str, image_id_column: str, bad: _Bad, usable=None) -> list[CaptionItem]:
    """The caption items of ``rows`` ((number, record) pairs); ``where(n)`` names a row in messages, and
    ``usable(n, row)`` (reporting the problem itself) is False for a row to skip."""
    items = []
    for n, row in rows:
        if usable is not None and not usable(n, row):
            continue
        item = _item(row, n, where(n), caption_column, image_id_column, bad)
        if item:
            items.append(item)
    return items


def _read_jsonl(path: Path, caption_column: str, image_id_column: str, bad: _Bad) -> list[CaptionItem]:
    def has_caption(n: int, row: dict) -> bool:
        if caption_column not in row:
            bad(f"{path}:{n}: no field {caption_column!r} (fields: {', '.join(map(str, row)) or 'none'}); "
                f"choose the caption field with --caption-column.")
        return caption_column in row

    return _items(iter_jsonl(path, bad), lambda n: f"{path}:{n}", caption_column, image_id_column, bad, has_caption)


def _read_json(path: Path, caption_column: str, image_id_column: str, bad: _Bad) -> list[CaptionItem]:
    try:
        data = parse_json(read_text(path), str(path))
    except DataError as exc:
        raise DataError(f"{exc} For one record per line use .jsonl.") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects with a {caption_column!r} field.")

    def is_object(n: int, row) -> bool:
        if not isinstance(row, dict):
            bad(f"{path}: item {n}: expected an object, got {type(row).__name__}.")
        return isinstance(row, dict)

    return _items(enumerate(data, 1), lambda n: f"{path} item {n}", caption_column, image_id_column, bad, is_object)


def _read_table(path: Path, delimiter: str, caption_column: str, image_id_column: str, bad: _Bad) -> list[CaptionItem]:
    def has_column(n: int, row: dict) -> bool:
        if caption_column not in row:
            header = ", ".join(row)
            raise DataError(f"{path}: no column {caption_column!r} in the header ({header or 'empty'}); "
                            f"choose it with --caption-column.", file_text=[header])
        return True

    return _items(iter_delimited(path, delimiter, bad), lambda n: f"{path}:{n}", caption_column, image_id_column, bad,
                  has_column)


def _read_parquet(path: Path, caption_column: str, image_id_column: str, bad: _Bad) -> list[CaptionItem]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}).") from exc
    if caption_column not in schema.names:
        raise DataError(f"{path}: no column {caption_column!r} (columns: {', '.join(schema.names)}); "
                        f"choose it with --caption-column.", file_text=[", ".join(schema.names)])
    columns = [caption_column] + ([image_id_column] if image_id_column in schema.names else [])
    try:
        table = pq.read_table(path, columns=columns).to_pydict()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own error types for damaged data
        raise DataError(f"{path}: the Parquet data cannot be read ({type(exc).__name__}: {exc}). Write the file "
                        f"again.") from None
    rows = ({k: table[k][i] for k in columns} for i in range(len(table[caption_column])))
    return _items(enumerate(rows, 1), lambda n: f"{path} row {n}", caption_column, image_id_column, bad)


def _read_hf(spec: str, caption_column: str, image_id_column: str) -> Captions:
    name = spec.split("://", 1)[-1] if "://" in spec else spec.split(":", 1)[1]
    name, _, split = name.partition(":")
    try:
        import datasets
    except ImportError:
        raise DataError(f"{spec}: reading Hugging Face datasets needs `pip install datasets` (and a connection).") from None
    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:
        raise DataError(f"{spec}: could not load the dataset ({exc}).") from exc
    if caption_column not in ds.column_names:
        raise DataError(f"{spec}: no column {caption_column!r} (columns: {', '.join(ds.column_names)}).")
    ids = ds[image_id_column] if image_id_column in ds.column_names else [None] * len(ds)
    items = [CaptionItem(str(c).strip(), None if i is None else str(i), n)
             for n, (c, i) in enumerate(zip(ds[caption_column], ids), 1) if c is not None]
    return Captions(items=items, source=spec)


def as_captions(data: Any, config) -> Captions:
    """Accept a path, :class:`Captions`, or an iterable of strings / dicts / (image_id, caption) pairs;
    ``config`` (a :class:`~paraclip.paraphrase.config.CaptionInput`) says how to read them."""
    if isinstance(data, Captions):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_captions(data, config.caption_column, config.image_id_column, config.skip_bad_lines,
                             config.image_ids_path)
    items = []
    for n, row in enumerate(data, 1):
        if isinstance(row, str):
            items.append(CaptionItem(row.strip(), None, n))
        elif isinstance(row, CaptionItem):
            items.append(row)
        elif isinstance(row, dict):
            item = _item(row, n, f"record {n}", config.caption_column, config.image_id_column, _Bad(False))
            items.append(item)
        elif isinstance(row, (tuple, list)) and len(row) == 2:
            items.append(CaptionItem(str(row[1]).strip(), None if row[0] is None else str(row[0]), n))
        else:
            raise DataError(f"records: item {n}: expected a caption string, a dict or an (image_id, caption) pair.")
    return Captions(items=items, source="records")


# --------------------------------------------------------------------------------------------------
# output


def check_output_path(path: str | os.PathLike, option: str = "--out") -> None:
    """Raise :class:`DataError` unless ``path`` can be written: not a folder, its folder creatable and writable.

    Checked before any work (loading a model can take minutes) by writing and removing a probe file.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{option} {path} is a folder; give a file name in it, e.g. {option} {path / 'paraphrases.jsonl'}.")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), parent)
        raise DataError(f"{option} {path}: {blocker} is a file, not a folder, so the output cannot go there. "
                        f"Choose another {option}.") from None
    except OSError as exc:
        raise DataError(f"{option} {path}: cannot create the folder {parent} ({exc.strerror}). Choose another "
                        f"{option}.") from None
    try:
        if path.exists():
            open(path, "ab").close()  # appending nothing changes nothing
        else:
            fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise DataError(f"{option} {path}: cannot write there ({exc.strerror}). Choose another {option} in a folder "
                        f"you can write to.") from None


def recover_output(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """Records already in ``path`` by index; a torn last line (from a killed run) is cut off the file."""
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    good_end = data.rfind(b"\n") + 1
    records: dict[int, dict[str, Any]] = {}
    lines = data[:good_end].split(b"\n")[:-1] if good_end else []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            index = int(rec["index"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            if n == len(lines):  # only the last line can be torn by a crash
                good_end -= len(raw) + 1
                break
            raise DataError(f"{path}:{n}: not a paraphrase record ({exc}). The output file is damaged; "
                            f"fix or remove that line, then rerun to resume.") from exc
        records[index] = rec
    if good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return records


class OutputWriter:
    """Appends records as JSON lines; each line is flushed at once and fsync'ed at least every second."""

    def __init__(self, path: str | os.PathLike, fsync_every: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "ab")
        self._fsync_every = fsync_every
        self._last_sync = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        with naming_errors(self.path):  # a full disk fails write()/fsync(), whose errors name no file
            self._f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            self._f.flush()  # in the OS after this: survives kill -9
            if time.monotonic() - self._last_sync >= self._fsync_every:
                os.fsync(self._f.fileno())  # on disk: survives a power cut
                self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            try:
                with naming_errors(self.path):
                    self._f.flush()
                    os.fsync(self._f.fileno())
            finally:
                try:
                    self._f.close()
                except OSError:
                    pass  # the flush above already failed with this file's error; that one is raised


def write_records(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Atomically replace ``path`` with ``records`` (one JSON line each)."""
    def write(f) -> None:
        for rec in records:
            f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))

    atomic_write(path, write, binary=True)


def load_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of an output file, ordered by index (a torn last line is ignored, not cut)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such paraphrase file.")
    out = {}
    for n, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if raw.strip():
            try:
                rec = json.loads(raw)
                out[int(rec["index"])] = rec
            except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
                continue
    return [out[i] for i in sorted(out)]


# --------------------------------------------------------------------------------------------------
# reviews


def update_reviews(path: str | os.PathLike, updates: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Set the review state of records by index; returns the updated records.

    Each update is ``{"review": "accepted"|"rejected"|"unreviewed"}`` or, to correct a
    paraphrase, ``{"paraphrase_1": "...", "paraphrase_2": "..."}`` (review becomes
    ``"edited"`` and the model's text is kept under ``"original"``). The file is rewritten
    atomically; this refuses while a run is writing it.
    """
    path = Path(path)
    lock = RunLock(path)
    lock.acquire()
    try:
        records = load_records(path)
        by_index = {r["index"]: r for r in records}
        changed = []
        for index, update in updates.items():
            if index not in by_index:
                raise DataError(f"{path}: no record with index {index}.")
            unknown = set(update) - {"review", "paraphrase_1", "paraphrase_2", "review_note"}
            if unknown:
                raise DataError(f"review update for index {index}: unknown fields {sorted(unknown)}.")
            rec = by_index[index]
            texts = {k: update[k] for k in ("paraphrase_1", "paraphrase_2") if update.get(k) is not None}
            state = update.get("review", "edited" if texts else None)
            if state not in REVIEW_STATES:
                raise DataError(f"review update for index {index}: review must be one of {', '.join(REVIEW_STATES)}.")
            if texts:
                original = rec.setdefault("original", {})
                for k, v in texts.items():
                    original.setdefault(k, rec.get(k))
                    rec[k] = " ".join(str(v).split())
                if rec.get("paraphrase_1") and rec.get("paraphrase_2"):
                    rec["status"], rec["error"] = "ok", None
            rec["review"] = state
            if "review_note" in update:
                rec["review_note"] = update["review_note"]
            changed.append(rec)
        write_records(path, records)
        return changed
    finally:
        lock.release()


def update_review(path: str | os.PathLike, index: int, review: str | None = None,
                  paraphrase_1: str | None = None, paraphrase_2: str | None = None) -> dict[str, Any]:
    """Review one record (see :func:`update_reviews`)."""
    update: dict[str, Any] = {}
    if review is not None:
        update["review"] = review
    if paraphrase_1 is not None:
        update["paraphrase_1"] = paraphrase_1
    if paraphrase_2 is not None:
        update["paraphrase_2"] = paraphrase_2
    return update_reviews(path, {index: update})[0]
