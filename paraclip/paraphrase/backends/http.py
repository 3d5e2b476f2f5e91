"""An HTTP client whose in-flight requests can be aborted from another thread.

A blocking ``httpx.Client`` request cannot be interrupted: closing the client from another
thread leaves the caller waiting until its timeout (measured: a hung request kept a stopped
run alive for the whole 30 s timeout). So requests run as tasks on one event loop in a
daemon thread (``httpx.AsyncClient``); callers block on a future as before, and
:meth:`AbortableClient.abort` cancels every task in flight, which closes its connection at
once. The caller then gets :class:`RequestAborted`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import httpx


class RequestAborted(Exception):
    """The request was aborted by :meth:`AbortableClient.abort` (a stop was asked for)."""


class AbortableClient:
    """``request(method, url, **kwargs) -> httpx.Response`` (body read), callable from any thread."""

    def __init__(self, headers: dict[str, str] | None = None, timeout: float = 60.0, max_connections: int = 16):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="paraclip-http", daemon=True)
        self._thread.start()
        self._inflight: set[concurrent.futures.Future] = set()
        self._lock = threading.RLock()  # abort() may run in a signal handler on a thread inside request()
        self._closed = False

        async def make() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                headers=headers or {}, timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            )

        self._client = self._submit(make()).result()

    def _submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Like ``httpx.Client.request``; raises httpx errors, or :class:`RequestAborted` after :meth:`abort`."""
        with self._lock:
            if self._closed:
                raise RequestAborted("client closed")
            future = self._submit(self._client.request(method, url, **kwargs))
            self._inflight.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise RequestAborted("aborted") from None
        finally:
            with self._lock:
                self._inflight.discard(future)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def abort(self) -> int:
        """Cancel every request in flight; returns how many were cancelled. New requests still work."""
        with self._lock:
            inflight = list(self._inflight)
        for future in inflight:
            future.cancel()
        return len(inflight)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.abort()
        try:
            self._submit(self._client.aclose()).result(timeout=5)
        except Exception:  # closing is best effort: the loop thread is a daemon
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
