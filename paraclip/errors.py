"""Errors with messages written for the person at the keyboard.

Every error the CLI can show is a :class:`ParaclipError`; its message says what was
asked, what was tried and what to do. The CLI prints it without a stack trace.
"""


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


class UnknownNameError(ParaclipError, KeyError):
    """A name that is not in a registry (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class WriteError(ParaclipError):
    """Output that could not be written (disk full, permissions) after work was done; the message says
    what was kept and where. Not a mistake in the input, so the CLI exits with status 1, not 2."""

    exit_code = 1
