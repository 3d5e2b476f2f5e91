"""Where the project keeps its files, and how it writes them.

* :func:`cache_root` — the one cache folder (``$PARACLIP_CACHE``, else ``~/.cache/paraclip``); every
  cache (image features, galleries, request cache, LLM copies, the mini-world, the app) lives below it.
* :func:`atomic_write` — write to a temporary file beside the target, fsync, then rename over it, so a
  reader (or a crash, or a full disk) never leaves a half-written file. The result gets the normal
  permissions of a new file (``0666 & ~umask``), not ``mkstemp``'s private ``0600``.
* :func:`naming_errors` — an OS error raised while writing an open file (``write()``, ``fsync()``: a
  full disk) carries no file name; inside this block it gets the name of the file being written, so
  the message says which file could not be written.
* Reading: :func:`read_bytes` / :func:`read_text` (``.gz`` decompressed, UTF-8 checked),
  :func:`parse_json` / :func:`read_json` and :func:`read_yaml_mapping`. Every reader of a user's file
  goes through these, so any way such a file can be broken (not gzip, truncated gzip, bad UTF-8,
  malformed or absurdly nested JSON/YAML, YAML keys that are not text, alias bombs) ends in a
  :class:`~paraclip.errors.DataError` naming the file and line, never in a traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from paraclip.errors import DataError


def cache_root() -> Path:
    """``$PARACLIP_CACHE``, else ``~/.cache/paraclip``."""
    return Path(os.environ.get("PARACLIP_CACHE") or Path.home() / ".cache" / "paraclip").expanduser()


class DamagedCacheWarning(UserWarning):
    """A cache file was found damaged (truncated, garbage); it is set aside and rebuilt, never used."""


def note_damaged_cache(path: str | os.PathLike, reason: str) -> None:
    """Say (as a :class:`DamagedCacheWarning`) which cache file is damaged and that it is being rebuilt."""
    warnings.warn(f"{path}: damaged cache ({reason}); rebuilding it.", DamagedCacheWarning, stacklevel=3)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def naming_errors(path: str | os.PathLike) -> Iterator[None]:
    """Give ``path`` as the file name of any OSError raised inside the block that names no file."""
    try:
        yield
    except OSError as exc:
        if not exc.filename and exc.errno is not None:  # (an OSError made from a bare message has no slot to fill)
            exc.filename = str(path)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call ``write(f)`` on a temporary file and move it over ``path`` once it is complete on disk.

    An OS error names ``path`` (not the temporary file, which is removed): that is the file the user asked for.
    """
    path = Path(path)
    with naming_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and (not exc.filename or exc.filename == tmp):
            exc.filename, exc.filename2 = str(path), None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text))


# -- reading -----------------------------------------------------------------------------------------

# What a damaged .gz raises while it is read: not gzip (BadGzipFile, an OSError), cut short (EOFError),
# corrupt deflate data (zlib.error).
GZIP_ERRORS = (OSError, EOFError, zlib.error)


def is_gzip_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".gz")


def gzip_message(path: str | os.PathLike, exc: BaseException, line: int | None = None) -> str:
    """Why a ``.gz`` file could not be read (``line``: the line being read when it broke), and what to do."""
    where = f"{path}:{line}" if line else f"{path}"
    if isinstance(exc, EOFError):
        what = "the gzip data ends early (a truncated download or copy)"
    elif isinstance(exc, gzip.BadGzipFile) or "gzip" in str(exc).lower():
        what = f"not a gzip file ({exc})"
    else:
        what = f"damaged gzip data ({type(exc).__name__}: {exc})"
    return (f"{where}: {what}. Download or compress the file again (`gzip -t FILE` checks it), or, if it is "
            f"not compressed, remove the .gz suffix.")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed when the name ends in ``.gz``; DataError when they cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    if is_gzip_name(path):
        try:
            raw = gzip.decompress(raw)
        except GZIP_ERRORS as exc:
            raise DataError(gzip_message(path, exc)) from None
    return raw


def decode_utf8(raw: bytes, path: str | os.PathLike) -> str:
    """``raw`` as UTF-8 text (a BOM dropped); a DataError naming the line and byte otherwise."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}). "
                        f"Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None


def read_text(path: str | os.PathLike) -> str:
    """The file as UTF-8 text (``.gz`` decompressed)."""
    return decode_utf8(read_bytes(path), path)


def parse_json(text: str | bytes, where: str) -> Any:
    """``json.loads`` whose every failure is a DataError naming ``where`` (a file, or ``file:line``).

    Besides malformed JSON: nesting deeper than the interpreter's recursion limit (RecursionError) and
    integers too long to convert (ValueError, Python's 4300-digit limit).
    """
    try:
        value = json.loads(text)
        if _SURROGATE_ESCAPE.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
            json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError for a lone half
        return value
    except UnicodeEncodeError:
        raise DataError(f"{where}: a \\uD800-\\uDFFF escape that is half of a surrogate pair, not a character "
                        f"(text cut in the middle of an emoji?). Remove it or complete the pair.") from None
    except json.JSONDecodeError as exc:
        multiline = exc.lineno > 1 or "\n" in str(exc.doc).rstrip("\r\n")
        line = f" at line {exc.lineno}, column {exc.colno}" if multiline else f" at column {exc.colno}"
        raise DataError(f"{where}: malformed JSON ({exc.msg}{line}).") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read (lists/objects inside each other more than "
                        f"a few hundred levels). Flatten the data.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not valid UTF-8 JSON ({exc.reason} at byte {exc.start}).") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise DataError(f"{where}: JSON value that cannot be read ({exc}).") from None


# A JSON escape for half of a UTF-16 surrogate pair: valid JSON, but alone it is no character, and writing it
# out as UTF-8 later (a paraphrase output, a cache) would fail far from the file that held it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON document in ``path`` (``.gz`` decompressed, UTF-8 checked)."""
    return parse_json(read_text(path), str(path))


# A YAML document whose aliases expand to more values than this is refused: a few lines of anchors
# can stand for billions of values ("billion laughs"), which would hang whatever walks the result.
MAX_YAML_VALUES = 1_000_000


def read_yaml_mapping(path: str | os.PathLike, what: str = "settings") -> tuple[dict[str, Any], dict[str, int]]:
    """The YAML mapping in ``path`` (empty file: ``{}``) and the line of each top-level key.

    Every failure is a DataError naming the file (and the line when known): bad UTF-8, invalid YAML,
    nesting too deep, alias bombs, a document that is not a mapping, keys that are not text.
    ``what`` says what the mapping holds, for messages ("training options").
    """
    import yaml

    path = Path(path)
    text = read_text(path)
    loader = None
    try:
        # libyaml when built in: it caps nesting at 1000 levels and reads deep flow collections in linear time
        # (the pure-Python scanner is quadratic in the depth of `[[[…`); the Python loader refuses control
        # characters already here
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, path)
        doc = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (control characters, …)
        line = text[: exc.position].count("\n") + 1
        raise DataError(f"{path}:{line}: not valid YAML (character {chr(exc.character)!r} is not allowed in "
                        f"YAML; remove it).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise DataError(f"{path}{line}: not valid YAML ({problem}).") from None
    except RecursionError:
        raise DataError(f"{path}: YAML nested too deeply to read. A config is a flat mapping of {what}.") from None
    finally:
        if loader is not None:
            loader.dispose()
    if doc is None:
        return {}, {}
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a mapping of {what} (name: value lines), found a "
                        f"{type(doc).__name__}.")
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            raise DataError(f"{path}:{line}: the key {key_node.value!r} is read as {_yaml_kind(key_node.tag)}, "
                            f"not text; names of {what} are text (put the key in quotes if it is meant).",
                            file_text=[repr(key_node.value)])
        lines.setdefault(key_node.value, line)
    return doc, lines


def _yaml_kind(tag: str) -> str:
    kind = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else tag
    return {"int": "a number", "float": "a number", "bool": "true/false", "null": "null (no value)",
            "timestamp": "a date"}.get(kind, f"a {kind}")


def _check_expansion(root, path: Path) -> None:
    """Refuse a document whose aliases expand past :data:`MAX_YAML_VALUES` (each node is counted once),
    or that holds a NUL character."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once instead of looping
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            if "\x00" in str(node.value):  # a "\0" escape: no path or text option can hold it
                raise DataError(f"{path}:{node.start_mark.line + 1}: a NUL character (\\0) in a value; no file "
                                f"name or text setting can hold one. Remove it.")
            total = 1
        sizes[id(node)] = min(total, MAX_YAML_VALUES + 1)
        return sizes[id(node)]

    if size(root) > MAX_YAML_VALUES:
        raise DataError(f"{path}: the YAML's anchors and aliases (&name / *name) expand to more than "
                        f"{MAX_YAML_VALUES:,} values. Write the values out instead of nesting aliases.")
