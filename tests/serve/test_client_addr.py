"""Client addresses behind proxies (serve/client_addr.py): X-Forwarded-For counts only
when the peer is a proxy the settings trust, read from the right."""

from __future__ import annotations

import pytest

from core.config import Settings, networks
from serve.client_addr import client_address

LOCAL = networks("127.0.0.1,::1")
FRONTS = networks("10.0.0.0/8, 127.0.0.1")


@pytest.mark.parametrize("peer, xff, trusted, expected", [
    ("203.0.113.9", "127.0.0.1", LOCAL, "203.0.113.9"),  # a client's own header: ignored
    ("127.0.0.1", None, LOCAL, "127.0.0.1"),
    ("127.0.0.1", "203.0.113.9", LOCAL, "203.0.113.9"),  # nginx on this host says who
    ("127.0.0.1", "198.51.100.1, 203.0.113.9", LOCAL, "203.0.113.9"),  # forged left part
    ("127.0.0.1", "203.0.113.9, 10.1.2.3", FRONTS, "203.0.113.9"),  # two trusted hops
    ("127.0.0.1", "10.1.2.3", FRONTS, "10.1.2.3"),  # only proxies: the first of them
    ("127.0.0.1", "203.0.113.9", (), "127.0.0.1"),  # nothing trusted by default
    ("127.0.0.1", "garbage, 203.0.113.9", LOCAL, "203.0.113.9"),
    (None, None, LOCAL, "unknown"),
])
def test_client_address(peer, xff, trusted, expected) -> None:
    assert client_address(peer, xff, trusted) == expected


def test_a_bad_trusted_proxy_setting_names_the_entry() -> None:
    with pytest.raises(ValueError, match="'nginx' is not an IP address or network"):
        Settings(trusted_proxies="127.0.0.1,nginx")
