"""http/hostcheck.py in memory: which Host values the server answers (the DNS-rebinding defence)."""

from __future__ import annotations

import pytest

from devserver.http.hostcheck import HostPolicy, is_loopback

LOOPBACK = HostPolicy.for_bind("127.0.0.1", ())


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8000",
                                  "[::1]", "[::1]:8000", "app.localhost", "a.b.localhost:3000", " localhost "])
def test_a_loopback_bind_answers_its_own_names(host: str) -> None:
    """``*.localhost`` always resolves to loopback (RFC 6761 §6.3), so it cannot be a rebinding."""
    assert LOOPBACK.allows(host)


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "localhost.attacker.example",
                                  "127.0.0.2", "192.168.1.10", "[::2]", "[fe80::1]:80", "", "localhostx"])
def test_a_loopback_bind_refuses_other_names_and_addresses(host: str) -> None:
    """A page on attacker.example resolved to 127.0.0.1 sends its own name: refused.  On loopback even an
    IP literal other than the bound names is refused: only names the server knows as its own."""
    assert not LOOPBACK.allows(host)


def test_no_host_is_allowed_http_10_rfc9112_3_2() -> None:
    assert LOOPBACK.allows(None)


def test_allowed_hosts_are_added_by_name_without_their_port() -> None:
    policy = HostPolicy.for_bind("127.0.0.1", ("Dev.Example.test:8000", "other.test"))
    assert policy.allows("dev.example.test") and policy.allows("dev.example.test:9999")  # any port
    assert policy.allows("OTHER.test:1")
    assert not policy.allows("example.test")
    assert not policy.allows("sub.dev.example.test")  # a name, not a suffix


def test_a_star_allows_every_host() -> None:
    policy = HostPolicy.for_bind("127.0.0.1", ("*",))
    assert policy.allows("anything.example") and policy.allows("[::2]:1")


def test_a_network_bind_also_answers_ip_literals_and_its_own_address() -> None:
    """Bound beyond loopback, the server is reached by address: an IP literal in Host cannot be a rebinding
    (the attacker's page would carry its domain name), so any is answered; names still are not."""
    policy = HostPolicy.for_bind("0.0.0.0", ())
    assert policy.network
    assert policy.allows("192.168.1.10:8000") and policy.allows("[fe80::1]") and policy.allows("0.0.0.0")
    assert policy.allows("localhost")
    assert not policy.allows("attacker.example")


def test_an_ipv6_network_bind_knows_its_bracketed_address() -> None:
    policy = HostPolicy.for_bind("2001:db8::5", ())
    assert "[2001:db8::5]" in policy.allowed and policy.allows("[2001:db8::5]:8000")


def test_a_loopback_bind_is_not_a_network_bind() -> None:
    for bound in ("127.0.0.1", "127.0.0.5", "::1", "localhost"):
        assert not HostPolicy.for_bind(bound, ()).network, bound


@pytest.mark.parametrize(("address", "loopback"), [("localhost", True), ("127.0.0.1", True), ("127.1.2.3", True),
                                                   ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                                   ("192.168.0.1", False), ("example.test", False), ("", False)])
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_the_refusal_says_which_name_and_how_to_allow_it() -> None:
    text = HostPolicy.refusal("Attacker.Example:8000")
    assert text.startswith("Invalid Host header 'attacker.example': ")
    assert "DNS rebinding" in text and text.endswith("start devserver with --allowed-host attacker.example")


def test_the_same_host_is_judged_the_same_way_every_time() -> None:
    """Judgements are remembered (a client repeats its Host): the remembered one is the one made."""
    policy = HostPolicy.for_bind("127.0.0.1", ())
    assert [policy.allows("evil.test") for _ in range(3)] == [False] * 3
    assert [policy.allows("localhost") for _ in range(3)] == [True] * 3
