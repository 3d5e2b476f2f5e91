"""What a visitor may make the server read or contact: the app's public mode.

Public mode is on when ``SPACE_ID`` is set (Hugging Face Spaces sets it) or ``PARACLIP_APP_PUBLIC=1``
(``PARACLIP_APP_PUBLIC=0`` turns it off even on a Space). Off — on a researcher's own machine —
typed local paths and local API URLs are a feature, and nothing here refuses anything.

In public mode:

* **paths** — every box that takes a path or a model/gallery spec resolves it (symlinks and
  ``..`` included) and accepts it only inside the allowed folders: Gradio's upload folder, the
  caller's own scratch folder, the app's own data (shipped ``assets/``, the default models and
  galleries, the caller's finished jobs) and the folders in ``PARACLIP_APP_DATA_DIRS``. Names
  that are not paths (``ViT-B-32@openai``, ``hf-hub:ORG/REPO``, ``tuxpaint``) stay allowed.
* **API URLs** — :class:`paraclip.netguard.AddressGuard` refuses hosts that are or resolve to
  loopback, private, link-local, carrier-grade NAT, multicast/reserved or metadata addresses
  (unless listed in ``PARACLIP_APP_ALLOWED_API_HOSTS``), checked again at connect time.
* **errors** — :func:`user_error` shows our own messages without the text they copied from a
  file, and any other exception as its type only (the details go to the server log).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from paraclip.errors import ParaclipError
from paraclip.netguard import AddressGuard, BlockedAddressError

log = logging.getLogger("paraclip.workbench")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
ALLOWED_SCHEMES = ("hf-hub",)  # model specs with a prefix that fetch from the hub, never from disk


class PolicyError(ValueError):
    """An input refused in public mode; the message says what is allowed instead."""


def public_from_env() -> bool:
    from workbench.settings import read

    flag = read("PARACLIP_APP_PUBLIC")  # SettingsError when it is not a yes/no word
    return flag if flag is not None else bool(os.environ.get("SPACE_ID", "").strip())


def env_list(name: str) -> list[str]:
    """A list setting: entries separated by ``os.pathsep`` or commas."""
    raw = os.environ.get(name, "")
    return [part.strip() for chunk in raw.split(os.pathsep) for part in chunk.split(",") if part.strip()]


def gradio_upload_dir() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve(strict=False)


@dataclass(frozen=True)
class AccessPolicy:
    """The rules for one app; ``roots`` are fixed allowed folders, callers add per-session ones."""

    public: bool = False
    roots: tuple[Path, ...] = ()
    guard: AddressGuard = field(default_factory=AddressGuard)

    @classmethod
    def from_env(cls, public: bool | None = None, roots: Iterable[str | os.PathLike] = ()) -> "AccessPolicy":
        public = public_from_env() if public is None else public
        # not Gradio's upload folder: it holds every visitor's uploads (each session's own are copied
        # into its scratch folder, an extra root of that session only)
        folders = [*roots, *env_list("PARACLIP_APP_DATA_DIRS")]
        return cls(public, tuple(dict.fromkeys(_resolved(f) for f in folders)),
                   AddressGuard.from_list(env_list("PARACLIP_APP_ALLOWED_API_HOSTS")))

    # -- paths ------------------------------------------------------------------------------
    def allows(self, path: str | os.PathLike, extra_roots: Iterable[str | os.PathLike] = ()) -> bool:
        resolved = _resolved(path)
        return any(resolved.is_relative_to(root) for root in (*self.roots, *map(_resolved, extra_roots)))

    def check_path(self, text: str | os.PathLike, what: str, extra_roots: Iterable[str | os.PathLike] = ()) -> Path:
        """The path to use for ``text`` (resolved in public mode); raises :class:`PolicyError` outside
        the allowed folders. Nothing is opened or read here."""
        if not self.public:
            return Path(text).expanduser()
        # one message whether the path is outside, missing or unreadable: no oracle of what exists
        if not self.allows(text, extra_roots) or not _readable(_resolved(text)):
            raise PolicyError(
                f"{what}: this app is public, so it reads only your own uploads, its own data (shipped assets, "
                f"default galleries, your finished jobs) and folders its owner listed in PARACLIP_APP_DATA_DIRS; "
                f"{hide_paths(str(text))!r} is not one of them. Upload the file instead, or pick an entry from "
                f"the list.")
        return _resolved(text)

    def check_spec(self, text: str | None, what: str, extra_roots: Iterable[str | os.PathLike] = ()) -> str | None:
        """A model or gallery spec: names pass, paths are checked (returned resolved)."""
        if not self.public or not text or not str(text).strip():
            return text
        text = str(text).strip()
        scheme = _SCHEME.match(text)
        if scheme and len(scheme.group(1)) > 1 and scheme.group(1).lower() not in ALLOWED_SCHEMES:
            raise PolicyError(f"{what}: {scheme.group(1)}: specs are not accepted in a public app; type a model "
                              f"name (e.g. ViT-B-32@openai or hf-hub:ORG/REPO) or pick one from the list.")
        if looks_like_path(text):
            return str(self.check_path(text, what, extra_roots))
        return text

    # -- URLs -------------------------------------------------------------------------------
    def check_url(self, url: str, what: str = "API base URL") -> None:
        if not self.public:
            return
        try:
            self.guard.check_url(url)
        except BlockedAddressError as exc:
            raise PolicyError(f"{what}: refused in this public app: {exc} Use a public endpoint (the Space owner "
                              f"can allow a host with PARACLIP_APP_ALLOWED_API_HOSTS).") from None

    def transport(self, connections: int):
        """An httpx transport for visitor-given URLs (None = httpx's default, off public mode)."""
        if not self.public:
            return None
        import httpx

        from paraclip.netguard import GuardedTransport

        return GuardedTransport(self.guard, httpx.Limits(max_connections=connections,
                                                         max_keepalive_connections=connections))


def _readable(path: Path) -> bool:
    try:
        return path.exists() and os.access(path, os.R_OK)
    except OSError:
        return False


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/-])(?:/[\w.@+-]+){2,}/?")
_CLI_FLAG = re.compile(r"`?--([a-z][a-z0-9-]*)`?(?:[ =](?=[A-Z]{2,}))?")


def hide_paths(text: str) -> str:
    """``text`` for a visitor of a public app: each absolute server path shortened to its last name,
    and command-line flags (``--aro-dir``) written as setting names (``aro dir``), since a visitor has
    no command line."""
    text = _ABSOLUTE_PATH.sub(lambda m: "…/" + Path(m.group(0).rstrip("/")).name, text)
    return _CLI_FLAG.sub(lambda m: "the “" + m.group(1).replace("-", " ") + "” setting", text)


def looks_like_path(text: str) -> bool:
    """True when a spec would be read from disk: absolute, ``~``/``.``-prefixed, or existing."""
    if text.startswith(("/", "~", ".", "\\")) or re.match(r"^[A-Za-z]:[\\/]", text):
        return True
    try:
        return Path(text).expanduser().exists()
    except OSError:
        return True


def user_error(exc: BaseException, public: bool) -> str:
    """A one-paragraph message for the page. Our own messages are shown (in public mode without the
    text they copied from a file); anything else shows only its type in public mode."""
    if isinstance(exc, KeyboardInterrupt):  # a worker stopped by its stop flag
        return "stopped."
    if isinstance(exc, ParaclipError):
        return hide_paths(exc.without_file_text()) if public else str(exc)
    if isinstance(exc, ValueError):  # the tabs' form checks, uploads, the policy itself
        return hide_paths(str(exc)) if public else str(exc)
    if public:
        log.error("unexpected error in a handler", exc_info=exc)
        return f"{type(exc).__name__} (the details are in the server log)."
    return f"{type(exc).__name__}: {exc}"
