"""http/target.py in memory: the request-target forms, Host and method rules of a parsed head."""

from __future__ import annotations

import pytest

from devserver.http.errors import ProtocolError
from devserver.http.target import Form, Target, check_host, check_method, parse_target, valid_host


def refused(call, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as caught:
        call(*args)
    return caught.value.status, str(caught.value)


@pytest.mark.parametrize(("target", "expected"), [
    ("/", Target(Form.ORIGIN, "/", "")),
    ("/a/b%20c?x=1&y", Target(Form.ORIGIN, "/a/b%20c", "x=1&y")),  # the path stays percent-encoded
    ("/p?q=1?2", Target(Form.ORIGIN, "/p", "q=1?2")),  # only the first "?" splits
    ("/p#frag", Target(Form.ORIGIN, "/p", "")),
    ("/p?q#frag?no", Target(Form.ORIGIN, "/p", "q")),
])
def test_origin_form_rfc9112_3_2_1_splits_path_and_query_and_drops_a_fragment(target: str, expected: Target) -> None:
    assert parse_target("GET", target) == expected


@pytest.mark.parametrize(("target", "expected"), [
    ("http://example.test/x?y", Target(Form.ABSOLUTE, "/x", "y", "example.test")),
    ("HTTP://example.test:8080", Target(Form.ABSOLUTE, "/", "", "example.test:8080")),  # empty path is "/"
    ("https://[::1]:443/p", Target(Form.ABSOLUTE, "/p", "", "[::1]:443")),
    ("http://h/p#f", Target(Form.ABSOLUTE, "/p", "", "h")),
])
def test_absolute_form_rfc9112_3_2_2_is_accepted_and_carries_its_authority(target: str, expected: Target) -> None:
    assert parse_target("GET", target) == expected


@pytest.mark.parametrize(("target", "message"), [
    ("ftp://example.test/x", "Unsupported scheme in request target: ftp"),
    ("http:///x", "Invalid authority in request target"),  # no authority
    ("http://user@example.test/x", "Invalid authority in request target"),  # userinfo is not allowed (RFC 9110 §4.2.4)
    ("http://exa mple.test/", "Invalid authority in request target"),
    ("1http://x/", "Malformed request target"),  # a scheme starts with a letter
    ("example.test:80", "Malformed request target"),  # authority form outside CONNECT
    ("", "Malformed request target"),
    ("x", "Malformed request target"),
])
def test_a_malformed_target_is_400_with_a_reason(target: str, message: str) -> None:
    assert refused(parse_target, "GET", target) == (400, message)


def test_asterisk_form_rfc9112_3_2_4_only_for_options() -> None:
    assert parse_target("OPTIONS", "*") == Target(Form.ASTERISK, "*", "")
    assert refused(parse_target, "GET", "*") == (400, "The asterisk form is only for OPTIONS")


def test_connect_rfc9112_3_2_3_is_501_whatever_the_target() -> None:
    """A 2xx to CONNECT would mean "tunnel now" (RFC 9110 §9.3.6): a development server does not tunnel."""
    for target in ("example.test:443", "/", "http://x/"):
        assert refused(parse_target, "CONNECT", target) == (501, "CONNECT is not supported")


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "QUERY"])
def test_known_methods_pass(method: str) -> None:
    check_method(method)


@pytest.mark.parametrize("method", ["BREW", "get", "FOO-BAR"])
def test_an_unknown_method_rfc9110_9_1_is_501(method: str) -> None:
    """Methods are case-sensitive (RFC 9110 §9.1): ``get`` is not GET."""
    assert refused(check_method, method) == (501, f"Method {method} not implemented")


@pytest.mark.parametrize("value", ["", "localhost", "localhost:8000", "127.0.0.1:1", "[::1]", "[::1]:80",
                                   "[v1.fe80::a+en1]", "a-b.example.test", "x%41y", "h:"])
def test_valid_host_values_rfc9112_3_2_and_rfc3986_3_2_2(value: str) -> None:
    assert valid_host(value)


@pytest.mark.parametrize("value", ["user@host", "a b", "[::1", "::1", "host:8x", "host/path", "h%4", "é.test", "a\r\nb"])
def test_invalid_host_values(value: str) -> None:
    assert not valid_host(value)


def test_exactly_one_host_on_http_11_rfc9112_3_2() -> None:
    assert check_host(["example.test"], "1.1") == "example.test"
    assert check_host([" example.test:8000 "], "1.1") == "example.test:8000"  # surrounding whitespace goes
    assert refused(check_host, [], "1.1") == (400, "Exactly one Host header is required")
    assert refused(check_host, ["a", "a"], "1.1") == (400, "Exactly one Host header is required")  # even the same twice
    assert refused(check_host, ["a b"], "1.1") == (400, "Invalid Host header")


def test_http_10_may_omit_host_but_not_send_a_bad_one() -> None:
    assert check_host([], "1.0") is None
    assert check_host(["example.test"], "1.0") == "example.test"
    assert refused(check_host, ["a@b"], "1.0") == (400, "Invalid Host header")
    assert refused(check_host, ["a", "b"], "1.0") == (400, "Exactly one Host header is required")
