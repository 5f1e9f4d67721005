"""Who to rate-limit when there is no user: the client address, honouring X-Forwarded-For only
from trusted proxies, IPv6 clients grouped by /64 (one host usually owns a whole /64)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 127.0.0.1` -> networks (empty text: none trusted)."""
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()
    )


def _addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: tuple[Network, ...]) -> str:
    """The first address, walking X-Forwarded-For from the right, that is not a trusted proxy."""
    current = _addr(peer or "")
    if current is None:
        return "unknown"
    if trusted and any(current in net for net in trusted):
        hops = [h for value in forwarded_for for h in value.split(",")]
        for hop in reversed(hops):
            addr = _addr(hop)
            if addr is None:
                break
            current = addr
            if not any(addr in net for net in trusted):
                break
    if current.version == 6:
        return str(ipaddress.ip_network(f"{current}/64", strict=False))
    return str(current)
