"""A real OpenAI-compatible HTTP server on 127.0.0.1 (started per test) with fault injection."""

from __future__ import annotations

import pytest

from paraclip.testing.mock_server import Faults, MockChatServer


@pytest.fixture
def chat_server():
    """Factory: ``server = chat_server(latency=..., p429=..., script=[...])``; stopped after the test."""
    started = []

    def start(**faults) -> MockChatServer:
        api_key = faults.pop("api_key", None)
        server = MockChatServer(Faults(**faults), api_key=api_key).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


CAPTIONS = [
    "a dog runs along the beach",
    "two men playing chess in a park",
    "a red car parked next to a brick building",
    "a bowl of fruit on a wooden table",
    "children flying kites on a windy hill",
    "a cat sleeping on a sofa",
    "a plate of pasta with tomato sauce",
    "a train crossing a bridge over a river",
]


@pytest.fixture
def captions() -> list[str]:
    return list(CAPTIONS)


@pytest.fixture
def fake_openai():
    """Factory: ``api = fake_openai(polls_to_complete=..., batch_faults=[...])``: files + batches on 127.0.0.1."""
    from .fakes import FakeOpenAI

    started = []

    def start(**options) -> FakeOpenAI:
        api = FakeOpenAI(**options).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()
