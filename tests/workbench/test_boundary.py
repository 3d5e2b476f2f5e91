"""The error boundary around every handler: an escaping exception becomes one gr.Error paragraph
(public mode: no file text, no server path, unknown errors by type only), whatever kind of handler."""

from __future__ import annotations

import asyncio
import inspect

import gradio as gr
import pytest

from paraclip.errors import DataError
from workbench.boundary import guard, guard_all


def plain(x, request: gr.Request):
    raise DataError(f"/srv/secret/data/{x}.jsonl:3: bad record; pass --data-dir DIR", file_text=["SECRETTEXT"])


def generator(x):
    yield 1
    raise RuntimeError("internal detail /srv/secret")


async def coroutine(x):
    raise KeyError("x")


async def async_generator(x):
    yield 1
    raise OSError("disk /srv/secret")


def test_each_kind_of_handler_keeps_its_kind_and_signature():
    for fn in (plain, generator, coroutine, async_generator):
        wrapped = guard(fn, public=True)
        for check in (inspect.isgeneratorfunction, inspect.iscoroutinefunction, inspect.isasyncgenfunction):
            assert check(wrapped) == check(fn)
        assert inspect.signature(wrapped) == inspect.signature(fn)
    once = guard(plain, True)
    assert guard(once, True) is once


def test_public_messages_hide_paths_file_text_and_unknown_details():
    with pytest.raises(gr.Error) as info:
        guard(plain, public=True)("x", None)
    message = info.value.message
    assert "/srv/secret" not in message and "SECRETTEXT" not in message and "--data-dir" not in message
    assert "x.jsonl:3" in message and message.startswith("❌")
    with pytest.raises(gr.Error) as info:
        list(guard(generator, public=True)("x"))
    assert info.value.message == "❌ RuntimeError (the details are in the server log)."
    with pytest.raises(gr.Error, match="KeyError"):
        asyncio.run(guard(coroutine, public=True)("x"))

    async def drain():
        return [item async for item in guard(async_generator, public=True)("x")]

    with pytest.raises(gr.Error, match="OSError"):
        asyncio.run(drain())


def test_private_messages_keep_the_details():
    with pytest.raises(gr.Error, match="internal detail /srv/secret"):
        list(guard(generator, public=False)("x"))


def test_every_handler_of_the_app_is_guarded(services):
    from workbench.app import build_demo

    demo = build_demo(services)
    fns = [f.fn for f in demo.fns.values() if f.fn is not None]
    assert fns and all(getattr(fn, "__paraclip_guarded__", False) for fn in fns)
    assert guard_all(demo, False) == len(fns)  # idempotent: nothing wrapped twice
