"""The SSRF guard of webhook URLs.

SECURITY: a webhook URL is chosen by a user and fetched by the worker, inside the network.
A URL is refused unless it is https (http only for an allowed host), has no credentials, and
its host resolves only to public addresses: loopback, link-local (which holds the cloud
metadata endpoint 169.254.169.254), private, shared, reserved, multicast and unspecified
addresses are refused, and so are names that resolve to any of them. The check runs when a
subscription is saved and again before every delivery, and the delivery connects to the
address that was checked (no second lookup an attacker could answer differently). A host
listed in APOLLO_WEBHOOK_ALLOWED_HOSTS (an admin's setting) passes whatever it resolves to.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

MAX_URL_LENGTH = 500


class UnsafeURL(ValueError):
    """A webhook URL the guard refuses; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where to connect: the checked address, and the name to present (Host, TLS SNI)."""

    scheme: str
    host: str
    address: str
    port: int
    path: str


def _allowed(host: str) -> bool:
    allowed: list[str] = settings.APOLLO_WEBHOOK_ALLOWED_HOSTS
    return host.lower() in {h.lower() for h in allowed}


def _unsafe(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def _parts(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeURL("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL("the URL must be https://host/path")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("the URL may not carry a user name or password")
    if parts.scheme == "http" and not _allowed(parts.hostname):
        raise UnsafeURL("the URL must use https (http only for an allowed internal host)")
    return parts


def resolve(url: str) -> Target:
    """Check the URL and resolve its host; raise UnsafeURL with the reason."""
    parts = _parts(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"the host {host} cannot be resolved") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeURL(f"the host {host} cannot be resolved")
    if not _allowed(host):
        bad = sorted({a for a in addresses if _unsafe(a)})
        if bad:
            raise UnsafeURL(
                f"the host {host} is an internal address ({', '.join(bad)}): loopback, "
                "link-local, private and metadata addresses are refused unless an admin "
                "lists the host in APOLLO_WEBHOOK_ALLOWED_HOSTS"
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, addresses[0], port, path)
