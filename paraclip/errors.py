"""Errors with messages written for the person at the keyboard.

Every error the CLI can show is a :class:`ParaclipError`; its message says what was
asked, what was tried and what to do. The CLI prints it without a stack trace.
"""


class ParaclipError(Exception):
    """Base class for errors that carry a user-facing explanation."""


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
