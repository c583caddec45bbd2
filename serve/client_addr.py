"""Who the client is: the peer, or, when the peer is a proxy the settings trust (the nginx
front door), the address that proxy appended to X-Forwarded-For.

An X-Forwarded-For from anyone else is ignored (a viewer could write any address there to
escape a rate limit or pass for a local caller). Entries are read from the right, where
each trusted proxy appended the address it saw, skipping the trusted ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[Network]) -> str:
    """The client's address. Pure."""
    address = (peer or "").strip()
    if not forwarded_for or not _trusted(address, trusted):
        return address or "unknown"
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _trusted(hop, trusted):
            break
    return address
