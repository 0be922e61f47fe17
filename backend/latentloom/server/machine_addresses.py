"""The names a browser on the network may use for this machine, for the Host check.

A server bound to every interface (`--host 0.0.0.0 --token ...`) is reached as
`http://<one of the machine's addresses>:<port>` or by the machine's name, and the Host
header carries exactly that, so the guard must accept each of them (DNS rebinding stays
refused: a foreign name is still not among them, and a token is required there anyway).
Addresses come from the interfaces as they are at start-up (psutil); IPv6 ones are
bracketed, as in a URL, and lose their zone (`%eth0`), which browsers do not send.
"""

from __future__ import annotations

import ipaddress
import socket

WILDCARD_V4 = frozenset({"0.0.0.0", ""})
WILDCARD_V6 = frozenset({"::", "[::]", ""})


def machine_names() -> list[str]:
    """The machine's host name and fully qualified name (lowercase, without duplicates)."""
    names = [socket.gethostname(), socket.getfqdn()]
    return sorted({name.lower() for name in names if name})


def interface_addresses(*, ipv4: bool, ipv6: bool) -> list[str]:
    """Every address of the machine's interfaces, as it appears in a Host header."""
    import psutil

    families = {socket.AF_INET} if ipv4 else set()
    families |= {socket.AF_INET6} if ipv6 else set()
    found: set[str] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family not in families:
                continue
            text = address.address.split("%", 1)[0]
            try:
                parsed = ipaddress.ip_address(text)
            except ValueError:
                continue
            found.add(f"[{parsed.compressed}]" if parsed.version == 6 else parsed.compressed)
    return sorted(found)


def reachable_names(bind: str) -> list[str]:
    """Host names (no port) that reach a server bound to `bind` on this machine."""
    names = machine_names()
    if bind in WILDCARD_V4 or bind in WILDCARD_V6:
        # An IPv6 wildcard socket is dual-stack by default: it takes IPv4 connections too.
        names += interface_addresses(ipv4=True, ipv6=bind in WILDCARD_V6)
    return names
