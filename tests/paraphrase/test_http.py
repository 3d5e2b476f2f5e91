import threading
import time

import pytest

from paraclip.paraphrase.backends.http import AbortableClient, RequestAborted


def test_abort_ends_hung_requests_at_once_and_the_client_stays_usable(chat_server):
    server = chat_server(p_hang=1.0, hang_s=20)
    client = AbortableClient(timeout=30, max_connections=4)
    outcomes = []

    def call():
        start = time.monotonic()
        try:
            client.post(server.base_url + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
            outcomes.append(("answered", time.monotonic() - start))
        except RequestAborted:
            outcomes.append(("aborted", time.monotonic() - start))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while server.counts["requests"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.abort() == 3
    for t in threads:
        t.join(timeout=5)
    assert [o for o, _ in outcomes] == ["aborted"] * 3 and max(s for _, s in outcomes) < 5  # not the 20 s hang
    server.faults.p_hang = 0.0
    response = client.post(server.base_url + "/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    client.close()
    with pytest.raises(RequestAborted):
        client.get(server.base_url)
