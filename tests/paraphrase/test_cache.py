"""The request cache: keyed by the whole request, and a damaged file is set aside and started afresh."""

from __future__ import annotations

import sqlite3

import pytest

from paraclip.files import DamagedCacheWarning
from paraclip.paraphrase.backends.base import ChatRequest, Completion
from paraclip.paraphrase.cache import RequestCache, request_key

IDENTITY = {"kind": "openai", "model": "m", "url": "http://127.0.0.1:1/v1/chat/completions", "extra_body": None}
REQUEST = ChatRequest(messages=(("system", "rewrite"), ("user", "a red dot")), temperature=0.7, top_p=0.9,
                      max_tokens=64, seed=0)


def test_the_key_holds_the_whole_request():
    base = request_key(IDENTITY, REQUEST)
    others = [
        request_key({**IDENTITY, "model": "m2"}, REQUEST),
        request_key({**IDENTITY, "url": "http://127.0.0.1:2/v1/chat/completions"}, REQUEST),
        request_key({**IDENTITY, "extra_body": {"top_k": 5}}, REQUEST),
        request_key(IDENTITY, ChatRequest((("system", "rewrite"), ("user", "a blue dot")), 0.7, 0.9, 64, 0)),
        request_key(IDENTITY, ChatRequest(REQUEST.messages, 0.8, 0.9, 64, 0)),
        request_key(IDENTITY, ChatRequest(REQUEST.messages, 0.7, 0.95, 64, 0)),
        request_key(IDENTITY, ChatRequest(REQUEST.messages, 0.7, 0.9, 65, 0)),
        request_key(IDENTITY, ChatRequest(REQUEST.messages, 0.7, 0.9, 64, 1)),
    ]
    assert base == request_key(dict(IDENTITY), REQUEST)
    assert len({base, *others}) == len(others) + 1


def _filled(path, n=200) -> dict[str, str]:
    cache = RequestCache(path)
    texts = {f"k{i}": f"paraphrase number {i} " * 20 for i in range(n)}
    for key, text in texts.items():
        cache.put(key, Completion(text, tokens=3))
    cache.close()
    with sqlite3.connect(path) as conn:  # fold the WAL into the file, as a finished run leaves it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return texts


def _garbage(path):
    path.write_bytes(b"this is not an SQLite database at all" * 100)


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _scribbled(path):
    data = bytearray(path.read_bytes())
    data[4096:12288] = b"\xff" * 8192  # pages of the table overwritten
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_garbage, _truncated, _scribbled])
def test_a_damaged_cache_is_noted_set_aside_and_started_afresh(tmp_path, damage):
    path = tmp_path / "requests.sqlite"
    texts = _filled(path)
    damage(path)
    with pytest.warns(DamagedCacheWarning, match=r"requests\.sqlite: damaged cache .*rebuilding"):
        cache = RequestCache(path)
        got = [cache.get(key) for key in texts]
    # never served from the damaged file: a fresh, empty cache that works
    assert got == [None] * len(texts) and len(cache) == 0
    cache.put("k1", Completion("new text", tokens=2))
    assert cache.get("k1").text == "new text" and cache.get("k1").cached
    cache.close()
    assert (tmp_path / "requests.sqlite.damaged").is_file()
    assert RequestCache(path).get("k1").text == "new text"


def test_a_healthy_cache_is_kept(tmp_path):
    path = tmp_path / "requests.sqlite"
    texts = _filled(path, n=5)
    cache = RequestCache(path)
    assert {k: cache.get(k).text for k in texts} == texts and not (tmp_path / "requests.sqlite.damaged").exists()
