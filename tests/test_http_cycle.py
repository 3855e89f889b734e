"""The connection state machine in memory (http/cycle.py): bytes in, events and decisions out, no socket."""

from __future__ import annotations

from devserver.http.cycle import BODY, FRESH, HEAD, IDLE, MAX_PIPELINE, OWED, Cycle, Phase
from devserver.http.parser import Body, End, Head, Limits, Rejected, Request, RequestParser

GET = b"GET /%d HTTP/1.1\r\nHost: localhost\r\n\r\n"
POST_CONTINUE = b"POST /up HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"


class Item:
    """What the worker's connection makes of a request (an Exchange); here just its target."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"Item({self.target!r})"


def feed(cycle: Cycle[Item], data: bytes) -> list[str]:
    """Feed ``data`` and report every event back as the connection does; the events' kinds, in order."""
    kinds = []
    for event in cycle.parser.feed(data):
        kinds.append(type(event).__name__)
        if isinstance(event, Head):
            kinds[-1] += "+100" if cycle.received_head(Item(event.request.target), event.request) else ""
        elif isinstance(event, End):
            cycle.received_end()
        elif isinstance(event, Rejected):
            kinds[-1] += f" {event.error.status}"
            cycle.refused(Item("refused"))
        else:
            assert isinstance(event, Body)
    return kinds


def answer(cycle: Cycle[Item], close: bool = False) -> Phase | None:
    """Answer the request at the head of the queue: the phase after it (None: close)."""
    item = cycle.queue[0]
    cycle.current = item
    return cycle.ended(item, close)


def test_pipelined_requests_are_queued_in_order_and_answered_one_at_a_time() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    assert feed(cycle, GET % 1 + GET % 2 + (GET % 3)[:10]) == ["Head", "End", "Head", "End"]
    assert [item.target for item in cycle.queue] == ["/1", "/2"]
    assert cycle.phase() is OWED
    assert answer(cycle) is OWED  # /2 is owed
    assert answer(cycle) is HEAD  # /3's head has begun
    assert cycle.phase() is HEAD
    feed(cycle, (GET % 3)[10:])
    assert [item.target for item in cycle.queue] == ["/3"]
    assert answer(cycle) is IDLE
    assert cycle.phase() is IDLE


def test_100_continue_goes_out_at_once_when_nothing_is_owed_before_it() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    assert feed(cycle, POST_CONTINUE) == ["Head+100"]
    assert not cycle.continue_due()  # once only
    assert feed(cycle, b"data") == ["Body", "End"]
    assert answer(cycle) is IDLE


def test_100_continue_waits_for_every_earlier_response() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    assert feed(cycle, GET % 1 + POST_CONTINUE) == ["Head", "End", "Head"]  # no 100: /1 is owed first
    assert not cycle.continue_due()
    item = cycle.queue[0]
    cycle.current = item
    assert not cycle.continue_due()  # /1 is being answered
    assert cycle.ended(item, False) is BODY
    assert cycle.continue_due()  # the connection sends it now
    assert not cycle.continue_due()


def test_no_100_continue_for_http_10_nor_once_the_body_is_in() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    head = POST_CONTINUE.replace(b"HTTP/1.1", b"HTTP/1.0")
    assert feed(cycle, head) == ["Head"]  # HTTP/1.0 has no 100 (RFC 9110 §10.1.1)
    cycle = Cycle(Limits())
    assert feed(cycle, GET % 1 + POST_CONTINUE + b"data") == ["Head", "End", "Head", "Body", "End"]
    answer(cycle)
    assert not cycle.continue_due()  # the client sent its body without waiting: no 100 after it


def test_a_head_refused_before_its_body_gets_no_100_and_is_the_last_request_read() -> None:
    cycle: Cycle[Item] = Cycle(Limits(max_body=3))  # the declared 4 bytes are over the limit: 413
    assert feed(cycle, POST_CONTINUE) == ["Rejected 413"]
    assert not cycle.continue_due()
    refused = cycle.queue[0]
    assert cycle.last is refused  # its answer says Connection: close: the unread body is never parsed
    assert feed(cycle, b"data" + GET % 2) == []


def test_the_deadline_follows_the_phase() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    fresh = cycle.phase().wait
    assert cycle.phase() is FRESH and fresh is not None and not fresh.keepalive and fresh.answer == 0
    feed(cycle, b"POST /up HTTP/1.1\r\nHost: l")
    head = cycle.phase().wait
    assert cycle.phase() is HEAD and head is not None and head.answer == 408 and not head.restart
    feed(cycle, b"ocalhost\r\nContent-Length: 4\r\n\r\nda")
    body = cycle.phase().wait
    assert cycle.phase() is BODY and body is not None and body.answer == 408 and body.restart
    feed(cycle, b"ta")
    assert cycle.phase() is OWED and cycle.phase().wait is None  # the server is awaited, not the client
    answer(cycle)
    idle = cycle.phase().wait
    assert cycle.phase() is IDLE and idle is not None and idle.keepalive and idle.answer == 0


def test_a_request_that_closes_is_the_last_read_on_http_10_and_on_connection_close() -> None:
    for first in (b"GET /1 HTTP/1.0\r\nHost: localhost\r\n\r\n",
                  b"GET /1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"):
        cycle: Cycle[Item] = Cycle(Limits())
        assert feed(cycle, first + GET % 2) == ["Head", "End"]  # what follows is never read
        assert cycle.last is cycle.queue[0]
        assert answer(cycle, close=True) is None


def test_http_10_keep_alive_goes_on() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    keep = b"GET /1 HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
    assert feed(cycle, keep + GET % 2) == ["Head", "End", "Head", "End"]
    assert cycle.last is None


def test_an_upgrade_is_the_last_request_read() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    feed(cycle, b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert len(cycle.queue) == 1 and cycle.last is cycle.queue[0]


def test_a_half_closed_client_gets_what_it_sent_then_the_close() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    feed(cycle, GET % 1 + b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9\r\n\r\npart")
    assert cycle.receiving is not None
    assert not cycle.half_closed()  # /1 is owed; the body that can never complete is dropped
    assert cycle.receiving is None
    assert answer(cycle) is None
    assert Cycle(Limits()).half_closed()  # nothing owed: close now


def test_reading_stops_when_the_pipeline_is_full_and_starts_again_at_half() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    request = head_of(GET % 0)
    stops = []
    for _ in range(MAX_PIPELINE):
        cycle.received_head(Item("/"), request)
        stops.append(cycle.received_end())
    assert stops == [False] * (MAX_PIPELINE - 1) + [True]
    resumed = []
    while cycle.queue:
        answer(cycle)
        resumed.append(cycle.resume_due())
    assert resumed.index(True) == MAX_PIPELINE - MAX_PIPELINE // 2  # at 15 queued
    assert resumed.count(True) == 1


def head_of(data: bytes) -> Request:
    events = RequestParser().feed(data)
    assert isinstance(events[0], Head)
    return events[0].request


def test_a_streamed_request_is_queued_at_its_head_and_the_next_is_read_only_after_its_body() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    post = b"POST /s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\n"
    for event in cycle.parser.feed(post + b"ab"):
        if isinstance(event, Head):
            cycle.received_head(Item(event.request.target), event.request)
    assert cycle.stream()
    streamed = cycle.receiving
    assert list(cycle.queue) == [streamed] and cycle.phase() is BODY  # its app waits on the body: the body's wait
    ends = [cycle.received_end() for event in cycle.parser.feed(b"cd" + GET % 2) if isinstance(event, End)]
    assert ends == [True, False]  # the first: the stream's end, for the connection to tell its app
    assert cycle.stream_ended is streamed and cycle.streaming is None
    assert [item.target for item in cycle.queue] == ["/s"]  # "/2" was not queued: received_head was not called
    assert cycle.phase() is OWED


def test_a_request_with_an_answer_owed_before_it_is_not_streamed() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    feed(cycle, GET % 1)
    for event in cycle.parser.feed(b"POST /s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\n"):
        if isinstance(event, Head):
            cycle.received_head(Item(event.request.target), event.request)
    assert not cycle.stream()
    assert [item.target for item in cycle.queue] == ["/1"] and cycle.streaming is None


def test_a_refused_streamed_request_is_not_queued_twice() -> None:
    cycle: Cycle[Item] = Cycle(Limits())
    for event in cycle.parser.feed(b"POST /s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\n"):
        if isinstance(event, Head):
            cycle.received_head(Item(event.request.target), event.request)
    streamed = cycle.receiving
    assert streamed is not None and cycle.stream()
    cycle.refused(streamed)
    assert list(cycle.queue) == [streamed] and cycle.last is streamed and cycle.receiving is None
    assert cycle.streaming is None and cycle.parser.rejected
