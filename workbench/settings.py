"""Every setting the app reads from the environment, parsed and checked in one place.

The owner of a hosted app sets these (on a Space: as variables or secrets). A value that does not
parse stops the app at start with a message naming the variable, what it got and what is expected
(:class:`SettingsError`, exit status 2) — never a traceback, never a silent fallback. ``SETTINGS``
is also the documentation: name, default and meaning of each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from paraclip.errors import ParaclipError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class SettingsError(ParaclipError):
    """An environment setting that does not parse; the message names it and says what is expected."""


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")


def number(kind: type, lo: float, hi: float) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            if not text.strip().isascii():  # int() also reads other scripts' digits ('١٢' is 12): not a typo we guess at
                raise ValueError
            value = kind(text.strip())
        except (ValueError, OverflowError):
            raise ValueError(f"expected {'a whole number' if kind is int else 'a number'} from {lo:g} to {hi:g}") \
                from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a value from {lo:g} to {hi:g}")
        return value

    return parse


def parse_auth(text: str) -> list[tuple[str, str]] | None:
    """``alice:pw1,bob:pw2`` -> [("alice", "pw1"), ("bob", "pw2")]; empty -> None. Each entry needs a
    user name and a non-empty password: a typo must not serve the app without a login."""
    if not text.strip():
        return None
    pairs = []
    for n, part in enumerate(text.split(","), 1):
        user, sep, password = part.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"entry {n} is not user:password (expected user:password[,user:password]; "
                             f"a password may contain ':' but not ',')")
        pairs.append((user.strip(), password))
    return pairs


def parse_text(text: str) -> str:
    return text.strip()


def parse_port(text: str) -> int:
    return number(int, 1, 65535)(text)


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    parse: Callable[[str], Any]
    meaning: str


SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("PARACLIP_APP_PUBLIC", "", lambda t: parse_bool(t) if t.strip() else None,
            "1 = public mode (on by default when SPACE_ID is set); 0 = off even on a Space"),
    Setting("PARACLIP_APP_AUTH", "", parse_auth, "user:password[,user:password]: only logged-in users start jobs"),
    Setting("PARACLIP_APP_MAX_UPLOAD_MB", "20", number(int, 1, 100_000),
            "largest upload, and largest pasted caption text, in MB"),
    Setting("PARACLIP_APP_MAX_JOBS", "2", number(int, 1, 64), "training jobs running at once (all visitors)"),
    Setting("PARACLIP_APP_BUILD_DEFAULTS", "1", parse_bool, "0 = never build the default models at start"),
    Setting("PARACLIP_APP_GALLERY_SIZE", "200", number(int, 8, 1_000_000), "images in the built default gallery"),
    Setting("PARACLIP_APP_DATA_DIRS", "", parse_text, "extra folders a public app may read (':' or ',' separated)"),
    Setting("PARACLIP_APP_ALLOWED_API_HOSTS", "", parse_text, "API hosts allowed although private/loopback"),
    # quotas (public mode)
    Setting("PARACLIP_APP_MAX_CAPTIONS", "500", number(int, 1, 10_000_000),
            "public mode: captions per paraphrase run (pasted or uploaded)"),
    Setting("PARACLIP_APP_MAX_TRAIN_SAMPLES", "64000", number(int, 2, 10**12),
            "public mode: compute budget of a training job, steps x batch size"),
    Setting("PARACLIP_APP_MAX_JOB_MINUTES", "60", number(float, 0.05, 10**6),
            "public mode: a training job running longer is cancelled (its checkpoint is kept)"),
    Setting("PARACLIP_APP_JOBS_PER_VISITOR", "1", number(int, 1, 64), "public mode: running jobs per visitor"),
    Setting("PARACLIP_APP_ABANDONED_JOB_MINUTES", "15", number(float, 0.01, 10**6),
            "public mode: a job whose owner has had no page open this long is cancelled"),
    # hygiene (public mode) and stopping
    Setting("PARACLIP_APP_EXPIRE_HOURS", "24", number(float, 0.001, 10**6),
            "public mode: uploads, scratch folders and finished visitors' jobs older than this are deleted"),
    Setting("PARACLIP_APP_SCRATCH_MAX_MB", "2000", number(int, 1, 10**9),
            "public mode: total size of uploads + scratch + visitors' jobs; the oldest are deleted above it"),
    Setting("PARACLIP_APP_KEEP_JOBS", "0", parse_bool,
            "1 = training jobs keep running when the app stops (default: they checkpoint and are interrupted)"),
    Setting("PARACLIP_APP_TORCH_THREADS", "1", number(int, 0, 1024),
            "torch threads of the app process (0 = one per core): it serves many small requests at once, where "
            "more threads per request only contend (an Explore query under load: 38 ms of CPU with 1, 240-310 "
            "ms with 2)"),
    Setting("PARACLIP_APP_LONG_RUN_THREADS", "1", number(int, 0, 1024),
            "torch threads of a comparison run (0 = one per core): leaves cores to Explore queries"),
    Setting("PARACLIP_APP_COMPARE_PROCESS", "1", parse_bool,
            "1 = comparisons run in a low-priority worker process, so Explore queries never wait for their "
            "Python (issue 22 §9); 0 = in a thread of the app (no second copy of the models in memory)"),
    Setting("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000", number(int, 1, 10**9),
            "Gradio's queue rebuilds its monitoring summary every this many events (Gradio's default, 1, cost "
            "6.7-17 ms of server CPU per event; the app sets 1000)"),
    Setting("GRADIO_SERVER_PORT", "7860", parse_port, "port to listen on"),
    Setting("GRADIO_SERVER_NAME", "127.0.0.1", parse_text, "address to listen on"),
]}


def read(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The parsed value of one setting (its default when unset); :class:`SettingsError` when bad."""
    setting = SETTINGS[name]
    env = os.environ if environ is None else environ
    raw = env.get(name)
    text = setting.default if raw is None or (not raw.strip() and setting.default) else raw
    try:
        return setting.parse(text)
    except ValueError as exc:
        shown = raw if len(raw or "") <= 40 and name != "PARACLIP_APP_AUTH" else "(value not shown)"
        raise SettingsError(f"environment setting {name}={shown}: {exc}. Fix or unset it "
                            f"({setting.meaning}).") from None


def check_all(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting parsed; raises one :class:`SettingsError` listing each bad one."""
    values, problems = {}, []
    for name in SETTINGS:
        try:
            values[name] = read(name, environ)
        except SettingsError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingsError("\n".join(problems))
    return values


def markdown_table() -> str:
    """The settings as a README table (name, default, meaning)."""
    rows = [f"| `{s.name}` | {s.default or '(unset)'} | {s.meaning} |" for s in SETTINGS.values()]
    return "| setting | default | meaning |\n|---|---|---|\n" + "\n".join(rows)
