"""Where a webhook may point (the SSRF guard): checked when an endpoint is saved and again at each delivery.

A URL must be https, carry no credentials, and its host must resolve only to public addresses: loopback,
private (RFC 1918, unique-local), link-local (the cloud metadata service at 169.254.169.254 among them),
shared, multicast, reserved and unspecified addresses are refused, as are IPv4 addresses mapped into
IPv6. A delivery connects to the address that was checked, so a name that resolves elsewhere a moment
later (DNS rebinding) reaches nothing new. SKYCART_WEBHOOKS_ALLOW_HTTP and SKYCART_WEBHOOKS_ALLOW_PRIVATE
open this for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from skycart.config import Settings
from skycart.errors import WebhookUrlRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: its host and port, and the address to connect to."""

    url: str
    host: str
    port: int
    address: str


def check_url_form(url: str, settings: Settings) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL; WebhookUrlRefused otherwise. No network."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused(f"url: not a URL ({exc})") from exc
    allowed = ("https", "http") if settings.webhooks_allow_http else ("https",)
    if parts.scheme not in allowed:
        raise WebhookUrlRefused("url: must be https")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("url: must not carry credentials; deliveries are signed instead")
    if not parts.hostname:
        raise WebhookUrlRefused("url: has no host")
    if parts.fragment:
        raise WebhookUrlRefused("url: must not have a fragment")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refused_address(address: Address) -> str | None:
    """Why a webhook may not reach this address, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refused_address(address.ipv4_mapped)
    for why, hit in (
        ("loopback", address.is_loopback),
        ("link-local (the metadata service's range)", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("unspecified", address.is_unspecified),
        ("not globally routable", not address.is_global),
    ):
        if hit:
            return why
    return None


async def resolve(url: str, settings: Settings) -> Target:
    """The URL checked and resolved: every address its host resolves to must be allowed."""
    _scheme, host, port = check_url_form(url, settings)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookUrlRefused(f"url: {host} does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise WebhookUrlRefused(f"url: {host} does not resolve")
    if not settings.webhooks_allow_private:
        for text in addresses:
            why = refused_address(ipaddress.ip_address(text.split("%", 1)[0]))
            if why is not None:
                raise WebhookUrlRefused(
                    f"url: {host} resolves to a {why} address ({text}); webhooks go to public hosts"
                )
    return Target(url, host, port, addresses[0])
