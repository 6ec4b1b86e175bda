"""Which URLs the platform will POST to (server-side request forgery defences).

Production: `https` to a public host only. With `RECEIVABLES_WEBHOOK_ALLOW_INSECURE=true`
(development, tests): `http` too, and loopback (`localhost`, 127.0.0.0/8, ::1). Never,
in any mode: link-local (169.254.0.0/16, fe80::/10, where the cloud metadata services
live: 169.254.169.254, fd00:ec2::254), private ranges (10/8, 172.16/12, 192.168/16,
fc00::/7), the unspecified address, multicast and reserved ranges, credentials in the
URL, or IPv6 forms that embed a refused IPv4 address.

A URL is checked twice: its text when the endpoint is created (IP literals, including
the odd IPv4 spellings `inet_aton` accepts such as `2130706433`, and local host names),
and again at every delivery after resolving the name (`resolve`), so a name that
resolves to a refused address — or starts to, DNS rebinding — is never contacted. The
delivery then connects to the address that was checked (see delivery.py), not to a
second resolution of the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")
"""Names that only mean something inside a network, never a bank's public endpoint."""
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """The URL is not one the platform delivers to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to call it (Host header, TLS SNI)."""

    url: str
    scheme: str
    host: str
    port: int


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_address(address: IPAddress, *, allow_insecure: bool) -> None:
    """Raise UrlRefused unless the platform may connect to `address`."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise UrlRefused("IPv6 zone identifiers are not allowed")
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            check_address(embedded, allow_insecure=allow_insecure)
            return
    if address in METADATA_ADDRESSES:
        raise UrlRefused(f"{address} is a cloud metadata address")
    if address.is_link_local:
        raise UrlRefused(f"{address} is a link-local address")
    if address.is_loopback:
        if allow_insecure:
            return
        raise UrlRefused(
            f"{address} is a loopback address (only with RECEIVABLES_WEBHOOK_ALLOW_INSECURE)"
        )
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        raise UrlRefused(f"{address} is not a unicast address")
    if address.is_private or not address.is_global:
        raise UrlRefused(f"{address} is a private or non-public address")


def ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, if any, including IPv4 spellings the
    resolver accepts but `ipaddress` does not (`127.1`, `0x7f000001`, `2130706433`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _is_local_name(host: str) -> bool:
    return host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from None
    return parts


def check_url(url: str, *, allow_insecure: bool) -> Target:
    """The URL's text: scheme, credentials, host. Raise UrlRefused, or return the target."""
    parts = _split(url.strip())
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in schemes:
        raise UrlRefused(f"the URL must use {' or '.join(schemes)}")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not allowed: use the signing secret")
    if parts.fragment:
        raise UrlRefused("a URL fragment is not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    literal = ip_literal(host)
    if literal is not None:
        check_address(literal, allow_insecure=allow_insecure)
    elif _is_local_name(host) and not (allow_insecure and host in ("localhost",)):
        raise UrlRefused(f"{host!r} is not a public host name")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(url=parts.geturl(), scheme=parts.scheme, host=host, port=port)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(
    target: Target, *, allow_insecure: bool, resolver: Resolver = system_resolver
) -> IPAddress:
    """The address to connect to: every address the name resolves to must be allowed
    (one refused address refuses the URL); IPv4 first, as the likelier reachable."""
    literal = ip_literal(target.host)
    if literal is not None:
        check_address(literal, allow_insecure=allow_insecure)
        return literal
    try:
        found = await resolver(target.host, target.port)
    except OSError as exc:
        raise UrlRefused(f"cannot resolve {target.host!r}: {exc}") from None
    addresses = [ipaddress.ip_address(text.split("%")[0]) for text in found]
    if not addresses:
        raise UrlRefused(f"{target.host!r} resolves to no address")
    for address in addresses:
        check_address(address, allow_insecure=allow_insecure)
    return min(addresses, key=lambda a: a.version)
