"""Errors with messages written for the person at the keyboard.

Every error the CLI can show is a :class:`ParaclipError`; its message says what was
asked, what was tried and what to do. The CLI prints it without a stack trace.
"""

from __future__ import annotations

import errno
import os


class ParaclipError(Exception):
    """Base class for errors that carry a user-facing explanation.

    ``file_text``: the parts of the message copied from the file being read (a header, a value).
    The CLI shows them (the user is reading their own file); a hosted app replaces them with
    :meth:`without_file_text`, because there the file may not be the visitor's.
    """

    def __init__(self, *args, file_text: tuple[str, ...] | list[str] = ()):
        super().__init__(*args)
        self.file_text = tuple(str(t) for t in file_text if str(t))

    def without_file_text(self, placeholder: str = "[file content hidden]") -> str:
        message = str(self)
        for text in sorted(self.file_text, key=len, reverse=True):
            message = message.replace(text, placeholder)
        return message


class ModelLoadError(ParaclipError):
    """A model name, tag or path that could not be loaded."""


class DataError(ParaclipError):
    """Input data that is missing or malformed (the message names file, line and field)."""


class ConfigError(DataError):
    """A setting with a bad name or value, from a config file (the message names the file, line and key)
    or from the command line (it names the option), with what is allowed."""


class UnknownNameError(ParaclipError, KeyError):
    """A name that is not in a registry (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class WriteError(ParaclipError):
    """Output that could not be written (disk full, permissions) after work was done; the message says
    what was kept and where. Not a mistake in the input, so the CLI exits with status 1, not 2."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (Ctrl-C's SIGINT, or SIGTERM from ``kill``, a job manager or a container
    stop). A KeyboardInterrupt, so code that already cleans up after Ctrl-C does the same for SIGTERM;
    the exit status is the shell's convention, 128 + the signal number (130, 143)."""

    def __init__(self, signum: int = 2):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "…"


def _is_damaged_compressed_input(exc: BaseException) -> bool:
    import gzip
    import zlib

    # EOFError is what gzip/bz2/lzma raise when a file stops mid-stream
    return isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile))


def describe_exception(exc: BaseException, hide_file_text: bool = False) -> tuple[str, int]:
    """(a message for a person, the exit status) for any exception that ends a run.

    Status 2: something the user can fix (input, option, config, model file, data, environment);
    1: a runtime failure (an output that could not be written, memory, a bug); 128 + N: signal N.
    The CLI and the app's handlers share this mapping, so one failure reads the same everywhere.
    ``hide_file_text``: replace text copied from the user's files (a hosted app's logs are public).
    """
    if isinstance(exc, ParaclipError):
        return (exc.without_file_text() if hide_file_text else str(exc)), int(getattr(exc, "exit_code", 2))
    if isinstance(exc, KeyboardInterrupt):
        code = exc.exit_code if isinstance(exc, Interrupted) else 130
        what = "terminated (SIGTERM)" if code == 143 else "interrupted"
        return f"{what}; finished work is kept, rerun the same command to resume.", code
    if isinstance(exc, UnicodeError):  # a file read as UTF-8 text that is not (the codec names no file)
        where = f" (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start})" \
            if isinstance(exc, UnicodeDecodeError) else ""
        return (f"a text file could not be read as {getattr(exc, 'encoding', 'utf-8')}{where}. Input files must "
                f"be UTF-8 text: re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`) and rerun."), 2
    if _is_damaged_compressed_input(exc):  # gzip/zlib name no file; the readers add it where they can
        return (f"a compressed input file is truncated or damaged ({type(exc).__name__}: {_first_line(str(exc))}). "
                f"Check it with `gzip -t FILE`, download or copy it again, and rerun."), 2
    if isinstance(exc, ModuleNotFoundError):
        return (f"a package this needs is not installed: {exc.name or _first_line(str(exc))}. Install the "
                f"project's dependencies (`scripts/setup.sh`, or `pip install -e .`) and rerun."), 2
    if isinstance(exc, OSError):  # disk full, permissions, a folder where a file was expected, …
        return describe_os_error(exc), 1
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch.cuda's OOM
        return ("ran out of memory. Use a smaller batch (--batch-size), a smaller model or gallery "
                "(--memory-mb, --gallery-limit), or a machine with more memory, then rerun."), 1
    if isinstance(exc, RecursionError):
        return ("internal error: RecursionError: nesting too deep (an input nested hundreds of levels deep, "
                "or a bug). Check the input's structure (set PARACLIP_DEBUG=1 for the traceback; please report "
                "it)"), 1
    try:
        detail = _first_line(str(exc))
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still gets its one line
        detail = ""
    return (f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} "
            f"(set PARACLIP_DEBUG=1 for the traceback; please report it)"), 1


def describe_os_error(exc: OSError, action: str = "use", path: str | os.PathLike | None = None) -> str:
    """One sentence for an OS error while reading or writing (disk full, permissions, …); ``path`` names the
    file when the error does not (a failed ``write()`` or ``fsync()`` on an open file carries no name)."""
    name = getattr(exc, "filename", None) or path
    target = f" {name}" if name else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "The disk is full: free some space",
        errno.EDQUOT: "The disk quota is exceeded: free some space",
        errno.EACCES: "Permission denied: choose a place you can write to",
        errno.EROFS: "The file system is read-only: choose another place",
        errno.EFBIG: "The file is larger than this system allows",
    }.get(exc.errno, "Check the path and the disk")
    return f"could not {action}{target}: {reason}. {hint}, then rerun the same command."
