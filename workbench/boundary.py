"""One error boundary around every handler of the app.

The tabs turn the errors they expect into a ❌ line of their own; anything that still escapes a
handler reaches :func:`guard`'s wrapper, which shows it as a ``gr.Error`` with the same wording as
the rest of the app (:func:`describe`) — the visitor gets one paragraph, never a stack trace, and in
public mode never the text of a file or a server path (the details go to the server log).
:func:`guard_all` wraps every registered handler of a ``gr.Blocks`` once it is built, keeping each
handler's kind (plain, generator, async) and signature, so Gradio still injects ``gr.Request``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable

from paraclip.errors import ParaclipError, describe_exception
from workbench.policy import user_error

log = logging.getLogger("paraclip.workbench")


def describe(exc: BaseException, public: bool) -> str:
    """The message for ``exc``: the tabs' own wording for our errors and form checks (:func:`user_error`),
    else, on a private app, the CLI's mapping (:func:`paraclip.errors.describe_exception`), so one failure
    reads the same in both. In public mode an unexpected error shows only its type; details go to the server log."""
    if isinstance(exc, (KeyboardInterrupt, ParaclipError, ValueError)):
        return user_error(exc, public)
    if public:  # an OS error's text names server files: the type only, the details in the server log
        log.error("unexpected error in a handler", exc_info=exc)
        return f"{type(exc).__name__} (the details are in the server log)."
    return describe_exception(exc)[0]


def _as_gr_error(exc: BaseException, public: bool) -> BaseException:
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    return gr.Error(f"❌ {describe(exc, public)}", print_exception=False)


def guard(fn: Callable, public: bool) -> Callable:
    """``fn`` with its exceptions shown as :func:`describe` says (the same kind of callable)."""
    if getattr(fn, "__paraclip_guarded__", False):
        return fn
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except Exception as exc:  # noqa: BLE001 - the boundary: every escape is shown as a message
                raise _as_gr_error(exc, public) from None
    elif inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise _as_gr_error(exc, public) from None
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise _as_gr_error(exc, public) from None
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise _as_gr_error(exc, public) from None
    wrapper.__paraclip_guarded__ = True
    return wrapper


def guard_all(demo: Any, public: bool) -> int:
    """Wrap every handler registered on ``demo``; returns how many."""
    count = 0
    for block_fn in demo.fns.values():
        if block_fn.fn is not None:
            block_fn.fn = guard(block_fn.fn, public)
            count += 1
    return count
