"""Checks for the wrk output parser (run: ``pytest bench/test_parse_wrk.py``)."""

from __future__ import annotations

import pytest
from common import BenchError, parse_wrk

CLEAN = """\
Running 2s test @ http://127.0.0.1:18765/one_k.txt
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.60ms    3.30ms  33.15ms   84.93%
    Req/Sec     5.89k     1.70k    9.82k    70.00%
  Latency Distribution
     50%  635.91us
     75%    5.56ms
     90%    8.18ms
     99%    1.20s
  23519 requests in 2.01s, 29.11MB read
Requests/sec:  11705.76
Transfer/sec:     14.49MB
"""

ERRORS = """\
Running 10s test @ http://127.0.0.1:8000/
  2 threads and 10 connections
  Latency Distribution
     50%    1.00ms
     75%    2.00ms
     90%    3.00ms
     99%    1.50m
  812 requests in 1.00m, 812.00KB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:     13.53
Transfer/sec:     13.53KB
"""


def test_clean_run() -> None:
    r = parse_wrk(CLEAN)
    assert r.requests == 23519
    assert r.seconds == pytest.approx(2.01)
    assert r.requests_per_sec == pytest.approx(11705.76)
    assert r.transfer_per_sec == pytest.approx(14.49 * 1024**2)
    assert (r.p50_ms, r.p75_ms, r.p90_ms, r.p99_ms) == pytest.approx((0.63591, 5.56, 8.18, 1200.0))
    assert r.socket_errors == 0 and r.non_2xx == 0


def test_errors_and_minutes() -> None:
    r = parse_wrk(ERRORS)
    assert (r.connect_errors, r.read_errors, r.write_errors, r.timeouts) == (1, 2, 3, 4)
    assert r.socket_errors == 10
    assert r.non_2xx == 17
    assert r.seconds == pytest.approx(60.0)
    assert r.p99_ms == pytest.approx(90_000.0)


def test_unreadable_output() -> None:
    with pytest.raises(BenchError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
