"""The filter language (tui/filter.py), from tables: what each expression matches, and what it rejects."""

from __future__ import annotations

from typing import Any

import pytest

from devserver.ipc.events import RequestEvent
from tui.recorded.filter import Context, FilterError, parse_filter, tokenize

BASE = 1_700_000_000.0


def event(**fields: Any) -> RequestEvent:
    values: dict[str, Any] = dict(
        time=BASE, worker_pid=4001, client="127.0.0.1:50000", method="GET", target="/", http_version="1.1",
        status=200, bytes_sent=10, duration_ms=5.0,
    )
    values.update(fields)
    return RequestEvent(**values)


EVENTS = {
    "get_home": event(),
    "post_api_500": event(method="POST", target="/api/items", status=500, duration_ms=250.0,
                          request_headers=(("Content-Type", "application/json"),), body_preview=b'{"name": "x"}',
                          traceback="Traceback ...\nKeyError: 'x'"),
    "delete_404": event(method="DELETE", target="/files/post-404.txt", status=404, worker_pid=4002),
    "static_304": event(target="/static/app.css", status=304, duration_ms=0.4,
                        response_headers=(("Content-Type", "text/css"), ("ETag", '"abc"'))),
    "slow_201": event(method="PUT", target="/caf%C3%A9?q=1", status=201, duration_ms=1500.0, worker_pid=4002,
                      request_headers=(("X-Token", "secret-42"),)),
    "bad_400": event(method="-", target="-", status=400, error="Invalid header name"),
}

# expression -> names of EVENTS it matches
CASES: list[tuple[str, set[str]]] = [
    ("", set(EVENTS)),
    ("~m POST", {"post_api_500"}),
    ("~m post", {"post_api_500"}),
    ("POST", {"post_api_500"}),  # shorthand for a method
    ('"post"', {"post_api_500", "delete_404"}),  # quoted: text anywhere in the request line
    ("~s 5xx", {"post_api_500"}),
    ("~s 4xx", {"delete_404", "bad_400"}),
    ("~s 400-499", {"delete_404", "bad_400"}),
    ("~s >=400", {"post_api_500", "delete_404", "bad_400"}),
    ("~s <300", {"get_home", "slow_201"}),
    ("5xx", {"post_api_500"}),
    ("~c 404", {"delete_404"}),
    ("404", {"delete_404"}),
    ('"404"', {"delete_404"}),  # the path contains 404 too
    ("~u ^/api", {"post_api_500"}),
    ("~u café", {"slow_201"}),  # percent-decoded target
    ("~u CAF%C3%A9", {"slow_201"}),  # raw target, case-insensitive
    ("~h content-type:.*json", {"post_api_500"}),
    ("~h etag", {"static_304"}),
    ("~hq etag", set()),
    ("~hs etag", {"static_304"}),
    ("~t css", {"static_304"}),
    ('~b "name"', {"post_api_500"}),
    ("~bs name", set()),
    ("~d >100ms", {"post_api_500", "slow_201"}),
    ("~d >1s", {"slow_201"}),
    ("~d <=500us", {"static_304"}),
    ("~d >=250", {"post_api_500", "slow_201"}),  # no unit: milliseconds
    ("~w 4002", {"delete_404", "slow_201"}),
    ("~w 1", {"delete_404", "slow_201"}),  # slot 1 is pid 4002 in the context below
    ("~e", {"post_api_500", "bad_400"}),
    ("!~s 2xx", {"post_api_500", "delete_404", "static_304", "bad_400"}),
    ("~m GET & ~s 3xx", {"static_304"}),
    ("~m GET ~s 3xx", {"static_304"}),  # juxtaposition is and
    ("~s 5xx | ~c 404", {"post_api_500", "delete_404"}),
    ("~m GET & ~s 2xx | ~m PUT", {"get_home", "slow_201"}),  # & binds tighter than |
    ("~m GET & (~s 2xx | ~s 3xx) & !~u static", {"get_home"}),
    ("!(~m GET | ~m POST)", {"delete_404", "slow_201", "bad_400"}),
    ("!!~m GET", {"get_home", "static_304"}),
    ("127.0.0.1", set(EVENTS)),  # client address
    ("invalid header", {"bad_400"}),  # two words: both must appear, anywhere
    ('"invalid header"', {"bad_400"}),  # error text
    ("api items", {"post_api_500"}),
    ('"api items"', set()),  # a phrase must appear as it is
    ("api", {"post_api_500"}),
    ('"~m"', set()),  # quoted operator is text
]


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_expression_matches(expression: str, expected: set[str]) -> None:
    flt = parse_filter(expression, Context(slot_of={4001: 0, 4002: 1}.get))
    assert {name for name, e in EVENTS.items() if flt.matches(e)} == expected


# expression -> (part of the message, column of the problem, 0-based)
ERRORS: list[tuple[str, str, int]] = [
    ("(~m GET", "missing ')'", 0),
    ("~m GET)", "unexpected ')'", 6),
    ("~m", "~m needs an argument", 0),
    ("~m (", "~m needs an argument", 0),
    ("~x foo", "unknown operator '~x'", 0),
    ("~s 6xx", "~s wants", 3),
    ("~c 40", "~c wants a 3-digit", 3),
    ("~d fast", "~d wants a duration", 3),
    ("~d >10h", "~d wants a duration", 3),
    ("~w one", "~w wants", 3),
    ("~u (", "~u needs an argument", 0),
    ('~u "(unclosed"', "bad regex", 3),
    ('"open', "unclosed quote", 0),
    ("~m GET &", "expression ends too soon", 8),
    ("| ~m GET", "unexpected '|'", 0),
    ("!", "expression ends too soon", 1),
    ("~m GET && ~m PUT", "unexpected '&'", 8),
]


@pytest.mark.parametrize(("expression", "message", "position"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_expression_is_reported_with_position(expression: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(expression)
    assert message in info.value.message and info.value.position == position
    assert f"column {position + 1}" in str(info.value)


def test_tokens_keep_quotes_and_escapes() -> None:
    assert [(t.kind, t.text) for t in tokenize(r'~u "a \"b\"" !(x|y)')] == [
        ("word", "~u"), ("quoted", 'a "b"'), ("op", "!"), ("op", "("), ("word", "x"), ("op", "|"), ("word", "y"),
        ("op", ")"),
    ]


def test_empty_and_query_text() -> None:
    assert parse_filter("   ").is_empty
    flt = parse_filter("  ~s 5xx ")
    assert not flt.is_empty and str(flt) == "~s 5xx"
