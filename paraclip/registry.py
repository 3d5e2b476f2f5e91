"""A tiny name -> object registry with close-match suggestions (as mteb does for tasks)."""

from __future__ import annotations

import difflib
from typing import Generic, Iterator, TypeVar

from paraclip.errors import UnknownNameError

T = TypeVar("T")


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Close matches of ``name`` among ``candidates``, case-insensitive."""
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


class Registry(Generic[T]):
    """Case-insensitive registry; unknown names raise with suggestions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._display: dict[str, str] = {}

    def register(self, name: str, item: T, *aliases: str) -> T:
        for key in (name, *aliases):
            if key.lower() in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key.lower()] = item
        self._display[name.lower()] = name
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name.strip().lower()]
        except KeyError:
            close = suggest(name, list(self._display.values()))
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}."
            ) from None

    def __contains__(self, name: str) -> bool:
        return name.strip().lower() in self._items

    def names(self) -> list[str]:
        return list(self._display.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def parse_list(self, spec: str | list[str] | None, default: list[str] | None = None) -> list[str]:
        """Parse "A,B,C" (or a list) into canonical names; every name is validated."""
        if spec is None or spec == "" or spec == []:
            return list(default if default is not None else self.names())
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        out = []
        for part in (p.strip() for p in parts):
            if not part:
                continue
            if part.lower() == "all":
                out.extend(self.names())
                continue
            self.get(part)
            out.append(self._canonical(part))
        return list(dict.fromkeys(out))

    def _canonical(self, name: str) -> str:
        item = self._items[name.lower()]
        for key, display in self._display.items():
            if self._items[key] is item:
                return display
        return name
