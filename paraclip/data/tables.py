"""Row readers for the tables users hand us (CSV, TSV, JSONL), with errors that name file and line.

Every input of the library — captions to paraphrase, paraphrase pairs, STS pairs, gallery
captions, image lists, training records — is one of these, so they are read here once:

* :func:`iter_lines` streams a file's lines decoded as UTF-8 (a BOM is tolerated);
* :func:`iter_jsonl` yields one JSON object per non-blank line;
* :func:`iter_delimited` yields header-keyed rows of a CSV/TSV (delimiter from the suffix or the
  header line; quoted fields may span lines, but a quote that never closes, or text after a closing
  quote, is an error naming the line where the row starts: lenient parsing silently merged the
  following rows into one field);
* :func:`iter_table` picks one of the two by suffix.

Each yields ``(line number, record)``. A bad line (invalid UTF-8, malformed JSON, a JSON value
that is not an object, a row with the wrong number of fields) raises :class:`DataError` naming
``path:line`` and the fix — or, when ``on_bad`` is given, is passed to it as that message and
skipped (``paraclip paraphrase --skip-bad-lines``).
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path
from typing import Callable, Iterator

from paraclip.errors import DataError
from paraclip.files import GZIP_ERRORS, gzip_message, is_gzip_name, parse_json

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
OnBad = Callable[[str], None] | None


def _bad(message: str, on_bad: OnBad, file_text: list[str] | None = None) -> None:
    """``file_text``: the part of ``message`` quoted from the file (see :class:`ParaclipError`)."""
    if on_bad is None:
        raise DataError(message, file_text=file_text or ())
    try:
        on_bad(message)
    except DataError as exc:  # a handler that raises: its error still says what it quotes
        exc.file_text = exc.file_text or tuple(file_text or ())
        raise


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    return path


def table_suffix(path: Path) -> str:
    """The suffix that says the format (``pairs.jsonl.gz`` -> ``.jsonl``)."""
    suffixes = [x.lower() for x in path.suffixes]
    return suffixes[-2] if len(suffixes) >= 2 and suffixes[-1] == ".gz" else path.suffix.lower()


def iter_lines(path: str | os.PathLike, on_bad: OnBad = None, keep_ends: bool = False) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for every line that decodes as UTF-8, without the line break unless
    ``keep_ends`` (``.gz`` files are decompressed on the fly)."""
    path = _existing(path)
    for line_no, raw in _raw_lines(path):
        try:
            text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            _bad(f"{path}:{line_no}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}). "
                 f"Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).", on_bad)
            continue
        yield line_no, text if keep_ends else text.rstrip("\r\n")


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered raw lines; a ``.gz`` that is not gzip or is cut short is a DataError naming the line."""
    gz = is_gzip_name(path)
    try:
        f = gzip.open(path, "rb") if gz else open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot open the file ({exc.strerror or exc}).") from None
    with f:
        line_no = 0
        while True:
            try:  # only the read itself: errors of the caller's loop body must not be reported as gzip's
                raw = f.readline()
            except GZIP_ERRORS as exc:
                raise DataError(gzip_message(path, exc, line_no + 1) if gz else
                                f"{path}:{line_no + 1}: cannot read the file ({exc}).") from None
            if not raw:
                return
            line_no += 1
            yield line_no, raw


def iter_jsonl(path: str | os.PathLike, on_bad: OnBad = None, stringify: bool = False
               ) -> Iterator[tuple[int, dict]]:
    """One JSON object per non-blank line. ``stringify``: values as strings (None -> "")."""
    path = _existing(path)
    for line_no, text in iter_lines(path, on_bad):
        if not text.strip():
            continue
        try:
            record = parse_json(text, f"{path}:{line_no}")
        except DataError as exc:
            _bad(f"{exc} Each line must be one JSON object.", on_bad)
            continue
        if not isinstance(record, dict):
            _bad(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}.", on_bad)
            continue
        if stringify:
            try:
                record = {str(k): "" if v is None else v if isinstance(v, str) else _json_text(v, path, line_no)
                          for k, v in record.items()}
            except DataError as exc:
                _bad(str(exc), on_bad)
                continue
        yield line_no, record


def _json_text(value, path: Path, line_no: int) -> str:
    """A non-text JSON value as text (a table cell); nesting too deep to print is an error for the line."""
    try:
        return str(value)
    except (RecursionError, ValueError):
        raise DataError(f"{path}:{line_no}: a value nested too deeply (or a number too long) to use as text.") \
            from None


def guess_delimiter(path: Path, header_line: str) -> str:
    """Tab for ``.tsv``/``.tab`` or a tab-separated header, ``;`` for a header with ``;`` but no
    comma (spreadsheet exports in many locales), else comma."""
    if table_suffix(path) in (".tsv", ".tab") or "\t" in header_line:
        return "\t"
    if ";" in header_line and "," not in header_line:
        return ";"
    return ","


def iter_delimited(path: str | os.PathLike, delimiter: str | None = None, on_bad: OnBad = None
                   ) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV/TSV with a header row, keyed by the (stripped) header; blank rows skipped."""
    path = _existing(path)
    numbered = iter(iter_lines(path, on_bad, keep_ends=True))  # the csv module needs the line breaks
    current = [0]

    def lines():
        for line_no, text in numbered:
            current[0] = line_no
            yield text

    source = lines()
    header: list[str] | None = None
    reader = None
    for first in source:
        if first.strip():
            delimiter = delimiter or guess_delimiter(path, first)
            try:
                header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
            except csv.Error as exc:
                raise DataError(_csv_message(path, current[0], current[0], exc)) from None
            reader = csv.reader(source, delimiter=delimiter, strict=True)
            break
    if reader is None or header is None:
        return
    while True:
        start = current[0] + 1  # the row's first line: the reader has consumed every line before it
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(_csv_message(path, start, current[0], exc)) from None
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            _bad(f"{path}:{current[0]}: expected {len(header)} fields ({', '.join(header)}), found {len(row)}. "
                 f"Quote fields that contain the delimiter.", on_bad, file_text=[", ".join(header)])
            continue
        yield current[0], dict(zip(header, row))


def _csv_message(path: Path, start: int, line: int, exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return field_too_long_message(path, start)
    if "unexpected end of data" in str(exc):
        return (f"{path}:{start}: unterminated quote: the quoted field that opens on line {start} never closes, so "
                f"every later line would be read into it. Close the quote, or write a quote inside a field as two "
                f"quotes (\"\").")
    if "new-line character seen in unquoted field" in str(exc):
        return (f"{path}:{line}: a lone carriage return (\\r) inside an unquoted field: the file mixes line "
                f"endings. Convert it to \\n line endings (e.g. `dos2unix`), or quote that field.")
    where = f"line {line}" if line == start else f"line {line} (the row starts on line {start})"
    if "expected after" not in str(exc):
        return f"{path}:{start}: malformed CSV ({exc}); the row starts on line {start}."
    return (f"{path}:{start}: text after the closing quote of a quoted field on {where} ({exc}). Write a quote inside "
            f"a field as two quotes (\"\"), and put nothing between a closing quote and the next delimiter.")


def field_too_long_message(path: Path | str, line: int) -> str:
    """A CSV/TSV field longer than the csv module's limit: say so (not "bad quoting"), with the limit."""
    return (f"{path}:{line}: a field longer than {csv.field_size_limit():,} characters (the csv reader's limit). "
            f"A caption or sentence is never that long: usually a quote opened in this row never closes and "
            f"swallows the lines after it; fix the quoting, or split the text.")


def iter_table(path: str | os.PathLike, on_bad: OnBad = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a JSONL (by suffix: .jsonl/.ndjson/.json) or CSV/TSV file, values as strings."""
    path = _existing(path)
    if table_suffix(path) in JSONL_SUFFIXES:
        return iter_jsonl(path, on_bad, stringify=True)
    return iter_delimited(path, on_bad=on_bad)
