"""Calling the app's API the way any visitor's script can: ``POST /gradio_api/call/<api>``, then the event stream."""

from __future__ import annotations

import httpx


def call(url: str, api: str, data: list, timeout: float = 120) -> tuple[str, str]:
    """(last event name, the whole event stream as text) of one call over plain HTTP; ("rejected", body)
    when the call is refused before it starts."""
    with httpx.Client(timeout=timeout) as http:
        response = http.post(f"{url}gradio_api/call/{api}", json={"data": data})
        if response.status_code != 200:
            return "rejected", response.text
        event_id = response.json()["event_id"]
        text, last = "", ""
        with http.stream("GET", f"{url}gradio_api/call/{api}/{event_id}") as stream:
            for line in stream.iter_lines():
                text += line + "\n"
                if line.startswith("event:"):
                    last = line.split(":", 1)[1].strip()
                if last in ("complete", "error") and line.startswith("data:"):
                    break
    return last, text
