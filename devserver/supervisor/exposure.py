"""Who can reach the server: a warning, and the network URLs, when it listens beyond loopback.

A development server shows tracebacks (with source lines and local values)
and runs whatever the apps in ``dynamic/`` do: on 127.0.0.1 only the
developer's machine reaches them; on ``0.0.0.0`` anyone on the same network
does.  Binding there is sometimes what one wants (try the site on a phone),
so it is allowed, but never silently.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def is_loopback(address: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _ipv4_interfaces() -> set[str]:
    """IPv4 addresses of this machine's interfaces (Linux; elsewhere empty)."""
    if not sys.platform.startswith("linux"):
        return set()
    import fcntl

    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
            found.add(socket.inet_ntoa(answer[20:24]))
    return found


def _ipv6_interfaces() -> set[str]:
    """IPv6 addresses of this machine's interfaces (Linux; elsewhere empty)."""
    try:
        with open("/proc/net/if_inet6") as table:
            rows = [line.split()[0] for line in table if line.strip()]
    except OSError:
        return set()
    return {str(ipaddress.IPv6Address(bytes.fromhex(row))) for row in rows if len(row) == 32}


def _by_hostname(family: socket.AddressFamily) -> set[str]:
    """The addresses this machine's name resolves to (the portable fallback)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {str(info[4][0]) for info in infos}


def network_addresses(bound: str) -> list[str]:
    """The addresses other machines can use to reach a socket bound to ``bound``."""
    address = ipaddress.ip_address(bound.split("%", 1)[0])
    if not address.is_unspecified:
        return [] if address.is_loopback else [str(address)]
    if address.version == 4:
        candidates = _ipv4_interfaces() or _by_hostname(socket.AF_INET)
    else:  # "::" with IPV6_V6ONLY: IPv6 clients only
        candidates = _ipv6_interfaces() or _by_hostname(socket.AF_INET6)
    usable = [ipaddress.ip_address(c) for c in candidates]
    usable = [a for a in usable if not (a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast)]
    return [str(a) for a in sorted(usable, key=lambda a: (a.version, a.packed))]


def url_of(address: str, port: int, scheme: str = "http") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}/"


def exposure_notes(bound: str, port: int, scheme: str = "http") -> tuple[str, ...]:
    """Lines to show when listening on ``bound``: nothing on loopback, else a warning and the network URLs."""
    if is_loopback(bound):
        return ()
    where = "all interfaces" if ipaddress.ip_address(bound.split("%", 1)[0]).is_unspecified else "a network address"
    warning = (f"warning: listening on {bound} ({where}): anyone on your network can reach this server, "
               "its tracebacks and its apps (use --host 127.0.0.1 to keep it to this machine)")
    addresses = network_addresses(bound)
    if not addresses:
        return (warning, "no network address found for this machine")
    return (warning, "on your network: " + "  ".join(url_of(a, port, scheme) for a in addresses))
