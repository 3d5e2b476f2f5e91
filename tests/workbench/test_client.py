"""The launched app through gradio_client: the public Explore and Compare endpoints, concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.mark.slow
def test_explore_and_compare_over_http(launched, services):
    from gradio_client import Client

    demo, url = launched
    client = Client(url, verbose=False)
    models = services.model_labels()
    gallery = next(iter(services.defaults.gallery_choices()))

    def query(i):
        return client.predict(models[0], models[1], gallery, f"a small red circle number {i}",
                              "one little red circle", 5, api_name="/explore")

    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(query, range(8)))
    for page, metrics, _fig, timing in outputs:
        assert page.count('class="pc-panel"') == 2 and timing.endswith("ms")
        assert [row[0] for row in metrics["data"]] == models[:2]
    result = client.predict(models[0], [models[1]], ["zero-shot retrieval (gallery)"], gallery, "", "1,5", 0,
                            api_name="/compare")
    assert result[0].startswith("✅"), result[0]
    assert any("retrieval" in str(row) for row in result[1]["data"])
