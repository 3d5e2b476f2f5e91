"""argparse value types with ranges: a bad number is refused at parse time, naming the option.

    parser.add_argument("--limit", type=whole(minimum=1))
    parser.add_argument("--timeout", type=number(above=0))

argparse turns the ``ArgumentTypeError`` into ``paraclip CMD: error: argument --limit: ...``
with exit status 2, before any work starts.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _bounds(minimum: float | None, maximum: float | None, above: float | None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return " and ".join(parts)


def whole(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number within [minimum, maximum]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {_bounds(minimum, maximum, None)}; "
                                             f"got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {_bounds(minimum, maximum, None)}; got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def number(minimum: float | None = None, maximum: float | None = None, above: float | None = None
           ) -> Callable[[str], float]:
    """A finite number within the bounds (``above``: strictly greater)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a number {_bounds(minimum, maximum, above)}; got {text!r}")
        if ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"must be {_bounds(minimum, maximum, above)}; got {text}")
        return value

    parse.__name__ = "number"
    return parse
