"""Every numeric option's refusal says what it accepts, in one line (issue 20), in memory."""

from __future__ import annotations

import pytest

from devserver.cli import build_parser

SECONDS = "must be more than 0 and at most 3600 seconds, not {!r}"
REFUSED = [
    # option, value, the message after "argument OPTION: "
    *[(option, value, SECONDS.format(value)) for option in ("--header-timeout", "--keepalive-timeout")
      for value in ("0", "-1", "3601", "nan", "inf", "soon")],
    *[(option, value, f"must be a whole number from 1 to {high}, not {value!r}")
      for option, high in (("--workers", 128), ("--threads", 1024), ("--log-rows", 1_000_000))
      for value in ("0", "-3", str(high + 1), "1.5", "many")],
    ("--port", "70000", "70000 is not a port number (0-65535; 0 picks a free one)"),
    ("--port", "http", "'http' is not a port number"),
    *[(option, "1.5M", "'1.5M' is not a size (e.g. 10M, 512K, 1048576)") for option in ("--max-body", "--body-cap", "--body-store")],
]


@pytest.mark.parametrize("option,value,message", REFUSED)
def test_a_refused_number_says_what_is_accepted(capsys: pytest.CaptureFixture[str], option: str, value: str,
                                                message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([option, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"devserver: error: argument {option}: {message} (see devserver --help)\n"


@pytest.mark.parametrize("option,value,parsed", [
    ("--header-timeout", "0.5", 0.5), ("--keepalive-timeout", "3600", 3600.0),
    ("--workers", "1", 1), ("--workers", "128", 128), ("--threads", "1024", 1024), ("--log-rows", "1000000", 1_000_000),
    ("--body-cap", "0", 0), ("--max-body", "2M", 2 * 1024 * 1024),
])
def test_the_bounds_themselves_are_accepted(option: str, value: str, parsed: float) -> None:
    assert getattr(build_parser().parse_args([option, value]), option[2:].replace("-", "_")) == parsed
