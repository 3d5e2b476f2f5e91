"""The address guard: which hosts a visitor-given URL may reach, checked again at connect time."""

from __future__ import annotations

import httpx
import pytest

from paraclip.netguard import AddressGuard, BlockedAddressError, GuardedTransport, address_problem
from tests.local_http import JsonServer, chat_completion

PUBLIC_IP = "93.184.216.34"  # a public unicast address (documentation ranges are not global)


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fd00:ec2::254", "private"),
    ("100.64.0.1", "carrier-grade NAT"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::7f00:1", "loopback"), ("2002:7f00:1::1", "loopback"), ("192.0.2.1", "private"),
])
def test_internal_addresses_are_named(address, kind):
    problem = address_problem(address)
    assert problem is not None and kind in problem, (address, problem)


@pytest.mark.parametrize("address", [PUBLIC_IP, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert address_problem(address) is None


def fixed(table: dict[str, list[str]]):
    def resolver(host, port):
        if host not in table:
            raise BlockedAddressError(f"cannot resolve host {host!r}.")
        return table[host]
    return resolver


@pytest.mark.parametrize("url, match", [
    ("file:///etc/passwd", "only http"), ("gopher://example.com/", "only http"), ("ftp://example.com/", "only http"),
    ("http://127.0.0.1:8000/v1", "loopback"), ("http://[::1]/v1", "loopback"), ("http://localhost/v1", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"), ("http://metadata.google.internal/", "metadata"),
    ("http://[fd00:ec2::254]/", "private"), ("http://internal.example/v1", "private"),
    ("http://nowhere.example/v1", "cannot resolve"), ("http://api.example:99999/", "port"), ("http:///v1", "no host"),
])
def test_check_url_refuses(url, match):
    guard = AddressGuard(resolver=fixed({"localhost": ["127.0.0.1", "::1"], "internal.example": [PUBLIC_IP, "10.0.0.5"],
                                         "127.0.0.1": ["127.0.0.1"], "::1": ["::1"],
                                         "169.254.169.254": ["169.254.169.254"], "fd00:ec2::254": ["fd00:ec2::254"]}))
    with pytest.raises(BlockedAddressError, match=match):
        guard.check_url(url)


def test_check_url_passes_public_hosts_and_the_allow_list():
    guard = AddressGuard.from_list(["LLM.internal:8000", "http://10.0.0.7/v1"])
    guard = AddressGuard(guard.allowed_hosts, resolver=fixed({"api.example": [PUBLIC_IP], "llm.internal": ["10.0.0.6"],
                                                                "10.0.0.7": ["10.0.0.7"]}))
    guard.check_url("https://api.example/v1")
    guard.check_url("http://llm.internal:8000/v1")
    guard.check_url("http://10.0.0.7:9000/v1")


def _chat_or_redirect(path: str):
    """A chat completion, or for ``/redirect...`` a redirect to ``/elsewhere``."""
    return (302, {"Location": "/elsewhere"}, None) if path.startswith("/redirect") else chat_completion("ok")


@pytest.fixture
def server():
    s = JsonServer(_chat_or_redirect)
    yield s
    s.close()


def test_dns_rebinding_is_caught_at_connect_time(server):
    """The name resolves to a public address when the URL is vetted and to loopback when connecting."""
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    guard = AddressGuard(resolver=lambda host, port: next(answers))
    url = f"http://rebind.example:{server.port}/v1/chat/completions"
    guard.check_url(url)  # looks public
    with httpx.Client(transport=GuardedTransport(guard)) as client:
        with pytest.raises(httpx.ConnectError, match="loopback") as info:
            client.post(url, json={})
    assert isinstance(info.value.__cause__, BlockedAddressError)
    assert server.paths == []


def test_the_checked_address_is_the_one_connected_to(server):
    """An allowed host connects to the address the guard resolved (no second lookup by the client)."""
    guard = AddressGuard(frozenset({"llm.test"}), resolver=fixed({"llm.test": ["127.0.0.1"]}))
    with httpx.Client(transport=GuardedTransport(guard)) as client:
        response = client.post(f"http://llm.test:{server.port}/v1/chat/completions", json={})
    assert response.status_code == 200 and server.paths == ["/v1/chat/completions"]


def test_redirects_are_not_followed_and_proxies_are_ignored(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would swallow the request if honoured
    guard = AddressGuard(frozenset({"llm.test"}), resolver=fixed({"llm.test": ["127.0.0.1"]}))
    with httpx.Client(transport=GuardedTransport(guard)) as client:
        response = client.post(f"http://llm.test:{server.port}/redirect", json={})
    assert response.status_code == 302 and server.paths == ["/redirect"]


def test_backend_reports_a_blocked_connection_as_fatal_without_retrying(server):
    from paraclip.paraphrase import PRESETS, ChatRequest, make_backend

    guard = AddressGuard(resolver=fixed({"sneaky.example": ["127.0.0.1"]}))
    paper = PRESETS.get("paper")
    backend = make_backend("openai", model="m", base_url=f"http://sneaky.example:{server.port}/v1",
                           transport=GuardedTransport(guard), show_bodies=False, max_retries=3)
    try:
        [out] = backend.generate([ChatRequest.from_messages(paper.messages(1, "a cat"), paper.sampling)])
    finally:
        backend.close()
    assert out.fatal and out.attempts == 1 and "refused to connect" in out.error and "loopback" in out.error
    assert server.paths == []
