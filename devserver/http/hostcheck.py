"""Which Host names the server answers: the defence against DNS rebinding.

A page on a domain the attacker controls can have that domain resolve to
127.0.0.1; the developer's browser then sends the page's requests to this
server with ``Host: attacker.example`` and lets the page read the answers.
A name that is not the server's own is refused (webpack-dev-server's
"Invalid Host header", Django's ALLOWED_HOSTS).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from devserver.kit.memo import MemoTable

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _name_of(host: str) -> str:
    """``host`` without its port, lower case (an IPv6 literal keeps its brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The names answered: loopback names, the ``--allowed-host`` ones, and on a network bind any IP address."""

    allowed: frozenset[str]
    any_host: bool
    network: bool  # bound beyond loopback: an IP literal in Host cannot be a rebinding attack
    _judged: MemoTable[str, bool] = field(init=False, compare=False, repr=False)  # Host value → allowed

    def __post_init__(self) -> None:
        object.__setattr__(self, "_judged", MemoTable(self._judge, 256))  # frozen: set once, here

    @classmethod
    def for_bind(cls, bound: str, extra: tuple[str, ...]) -> HostPolicy:
        names = set(LOOPBACK_NAMES) | {_name_of(n) for n in extra if n != "*"}
        network = not is_loopback(bound)
        if network:
            names.add(_name_of(f"[{bound}]" if ":" in bound else bound))
        return cls(frozenset(names), "*" in extra, network)

    def allows(self, host: str | None) -> bool:
        """``host`` is a Host header value (None: the request had none, as HTTP/1.0 may)."""
        if host is None or self.any_host:
            return True
        return self._judged[host]

    def _judge(self, host: str) -> bool:
        name = _name_of(host)
        if name in self.allowed or name.endswith(".localhost"):  # *.localhost always resolves to loopback
            return True
        return self.network and _is_ip_literal(name)

    @staticmethod
    def refusal(host: str) -> str:
        name = _name_of(host)
        return (f"Invalid Host header {name!r}: this server answers only its own names, so that a page "
                f"on another domain cannot read it through DNS rebinding. To allow it, start devserver "
                f"with --allowed-host {name}")
