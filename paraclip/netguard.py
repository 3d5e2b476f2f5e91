"""Refusing requests to internal addresses (server-side request forgery) when a URL comes from a visitor.

A hosted app that lets visitors type an API base URL must not let them make the server talk to
its own loopback, the private network behind it or a cloud metadata service. Checking the URL's
host once is not enough: a name can resolve to a public address when checked and to 127.0.0.1 a
moment later (DNS rebinding). So :class:`GuardedTransport` resolves the host itself at connect
time, checks every address, and connects to the address it checked (TLS still verifies the
hostname). Proxies from the environment are ignored (a proxy would resolve the name elsewhere),
and redirects are never followed by the client using it.

Only the *policy* lives here (what is internal); whether it applies (public mode) is the app's call.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from paraclip.errors import ParaclipError

# Names that reach a cloud provider's instance metadata service without resolving to an address
# checked below (on the provider's network they resolve to 169.254.169.254 or fd00:ec2::254).
METADATA_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal", "metadata.tencentyun.com",
})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class BlockedAddressError(ParaclipError):
    """A URL whose host is, or resolves to, an address a visitor may not reach."""


def address_problem(address: str) -> str | None:
    """Why ``address`` (an IP literal) is internal, or None when it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(str(embedded))
    checks = (("loopback", ip.is_loopback), ("link-local (cloud metadata lives here)", ip.is_link_local),
              ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
              ("shared carrier-grade NAT", ip.version == 4 and ip in _CGNAT),
              ("reserved", ip.is_reserved), ("private or unique-local", ip.is_private),
              ("not globally routable", not ip.is_global))
    return next((f"{name} address" for name, hit in checks if hit), None)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedAddressError(f"cannot resolve host {host!r} ({exc.__class__.__name__}).") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class AddressGuard:
    """The rule: hosts in ``allowed_hosts`` pass as they are; any other host must resolve only to
    public unicast addresses."""

    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    resolver: Callable[[str, int], list[str]] = resolve

    @classmethod
    def from_list(cls, hosts: Iterable[str]) -> "AddressGuard":
        """``hosts``: names or IPs, optionally ``host:port`` or a URL (the host part is what counts)."""
        return cls(frozenset(h for h in (_host_of(x) for x in hosts) if h))

    def is_allowed_host(self, host: str) -> bool:
        return _normal_host(host) in self.allowed_hosts

    def check_url(self, url: str) -> None:
        """Refuse non-http(s) URLs and URLs whose host is or resolves to an internal address."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise BlockedAddressError(f"only http:// and https:// URLs are allowed, not {parts.scheme or 'none'}:.")
        if not parts.hostname:
            raise BlockedAddressError("the URL has no host name.")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise BlockedAddressError("the URL's port is not a number between 0 and 65535.") from None
        self.addresses(parts.hostname, port)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, each checked; raises when any is internal."""
        host = _normal_host(host)
        if host in self.allowed_hosts:
            return self.resolver(host, port)
        if host in METADATA_HOSTS:
            raise BlockedAddressError(f"host {host!r} is a cloud metadata service.")
        found = self.resolver(host, port)
        for address in found:
            problem = address_problem(address)
            if problem:
                raise BlockedAddressError(f"{address} is a {problem}." if host == address else
                                          f"{host!r} resolves to a {problem}.")
        if not found:
            raise BlockedAddressError(f"host {host!r} resolves to no address.")
        return found


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _host_of(entry: str) -> str:
    entry = entry.strip()
    if not entry:
        return ""
    if "://" not in entry:
        entry = "//" + entry
    try:
        return _normal_host(urlsplit(entry).hostname or "")
    except ValueError:
        return ""


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync network backend, but connecting only to checked addresses."""

    def __init__(self, guard: AddressGuard):
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = self.guard.addresses(host, port)
        last: Exception | None = None
        for address in addresses:  # the checked address is the one connected to: no second lookup
            try:
                stream = self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
                continue
            sock = stream.get_extra_info("socket")
            peer = sock.getpeername()[0] if sock is not None else address
            if not self.guard.is_allowed_host(host) and address_problem(peer):
                stream.close()
                raise BlockedAddressError(f"{host!r} connected to an internal address.")
            return stream
        raise last or httpcore.ConnectError(f"no address to connect to for {host!r}")

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise BlockedAddressError("unix sockets are not allowed.")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks every connection with ``guard`` (environment proxies ignored)."""

    def __init__(self, guard: AddressGuard, limits: httpx.Limits = httpx.Limits()):
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(guard))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except BlockedAddressError as exc:  # httpx only maps httpcore's own errors
            raise httpx.ConnectError(f"blocked: {exc}", request=request) from exc
