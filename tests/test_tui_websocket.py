"""The dashboard's detail of a WebSocket connection: how it ended and its first messages, at 80x24 and large."""

from __future__ import annotations

import pytest
from test_tui_inspect import event, make_app

from devserver.ipc.events import WebSocketMessage, WebSocketSummary
from tui.screens.detail import DetailScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


SUMMARY = WebSocketSummary(
    messages_in=150, messages_out=1, close_code=1012, close_reason="service restart\x1b[31m",
    messages=(WebSocketMessage(0.25, "in", 5, True, "hello"), WebSocketMessage(0.5, "out", 2, False, "00 ff")),
)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_the_detail_lists_the_messages_and_the_close(size: tuple[int, int]) -> None:
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        app.feed([event(target="/ws", status=101, duration_ms=2500.0, websocket=SUMMARY)])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        title = str(screen.query_one("#websocket-title").content)
        assert title.startswith("WebSocket: 150 in / 1 out, closed 1012 (service restart")
        assert "\x1b" not in title  # a client's close reason reaches the terminal escaped
        lines = str(screen.query_one("#websocket").content).splitlines()
        assert "in" in lines[0] and "text" in lines[0] and lines[0].endswith("hello")
        assert "out" in lines[1] and "binary" in lines[1] and lines[1].endswith("00 ff")
        assert lines[2] == "(the first 2 of 151 messages)"
