"""ASGI lifespan: an app's startup before a worker serves it, its shutdown when the worker stops or reloads it.

``--lifespan`` says what to do (as uvicorn's option does):

=====  ==================================================================
auto   run it; an app that raises before it reads the startup event (an
       app without lifespan support: Django's handler) is served without
on     run it; any failure is a failed startup
off    never run it
=====  ==================================================================

One :class:`Lifespan` per loaded app object; :class:`LifespanKeeper` keeps
the worker's current one and switches to a reloaded app (the old one shut
down first, then the new one started) before a request is answered by it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable

from devserver.debug.tracebacks import one_line
from devserver.handlers.asgi import ASGI_VERSION, ASGIApplication, Message, Scope

MODES = ("auto", "on", "off")
SHUTDOWN_TIMEOUT = 5.0  # seconds an app's shutdown may take before the worker goes on without it


class Lifespan:
    """The lifespan protocol of one app object: at most one startup, then one shutdown."""

    def __init__(self, entry: ASGIApplication, mode: str) -> None:
        self.entry = entry
        self.mode = mode
        self.failure: str | None = None  # one line: why the startup failed
        self.traceback: str | None = None  # the whole story, for the 500 pages while it stays failed
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._read_startup = False
        self._said: tuple[str, str | None] | None = None  # the failure a lifespan.startup.failed message gave
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Run the app's startup; afterwards ``failure`` says whether it failed."""
        if self.mode == "off":
            return
        loop = asyncio.get_running_loop()
        self._started, self._stopped = loop.create_future(), loop.create_future()
        scope: Scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.entry.state}
        self._events.put_nowait({"type": "lifespan.startup"})
        self._task = loop.create_task(self._main(scope))
        await self._started

    async def _main(self, scope: Scope) -> None:
        try:
            await self.entry.app(scope, self._receive, self._send)
        except BaseException as exc:
            if self.mode == "auto" and not self._read_startup:
                self._settle(self._started)  # no lifespan support: served without
            else:
                self._fail(one_line(exc), traceback.format_exc())
            self._settle(self._stopped)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            self._fail_as_said()
            self._settle(self._started)  # returned without a word: nothing to start (as uvicorn takes it)
            self._settle(self._stopped)

    async def _receive(self) -> Message:
        message = await self._events.get()
        if message["type"] == "lifespan.startup":
            self._read_startup = True
        return message

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._settle(self._started)
        elif kind == "lifespan.startup.failed":
            text = str(message.get("message", "") or "")
            last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
            self._said = (last or "the app said its startup failed", text or None)
            # Starlette sends its traceback, then raises: the exception's own line (in _main, within this
            # step of the loop) is better than the message's last line, taken only if nothing is raised.
            asyncio.get_running_loop().call_soon(self._fail_as_said)
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            self._settle(self._stopped)

    def _fail_as_said(self) -> None:
        if self._said is not None:
            self._fail(*self._said)

    def _fail(self, line: str, text: str | None) -> None:
        if self._started is None or self._started.done():
            return
        self.failure, self.traceback = line, text
        self._started.set_result(None)

    @staticmethod
    def _settle(future: asyncio.Future[None] | None) -> None:
        if future is not None and not future.done():
            future.set_result(None)

    async def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Run the app's shutdown (bounded); nothing if it never started."""
        task, stopped = self._task, self._stopped
        if task is None or stopped is None or task.done():
            return
        self._events.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(stopped), timeout)
        except TimeoutError:
            pass
        if not task.done():
            task.cancel()


class LifespanKeeper:
    """A worker's lifespans, one per app it serves (by name): switched when a reload gives a new app object."""

    def __init__(self, mode: str, log_line: Callable[[str], None]) -> None:
        self.mode = mode
        self.log_line = log_line  # the failed startup's one line, in the server log
        self.current: dict[str, Lifespan] = {}  # app name -> the lifespan of the object serving it
        self._switching: dict[str, tuple[ASGIApplication, asyncio.Task[Lifespan]]] = {}

    def ready(self, entry: ASGIApplication) -> Lifespan | None:
        """``entry``'s lifespan if it is the current one (started, or failed): no switch to wait for."""
        current = self.current.get(entry.name)
        if current is None or current.entry is not entry or entry.name in self._switching:
            return None
        return current

    async def switch(self, entry: ASGIApplication) -> Lifespan:
        """The lifespan of ``entry``, started (the previous object's shut down first); shared by concurrent callers."""
        lifespan = self.ready(entry)
        if lifespan is not None:
            return lifespan
        pending = self._switching.get(entry.name)
        if pending is None or pending[0] is not entry:
            previous = pending[1] if pending is not None else None
            task = asyncio.get_running_loop().create_task(self._switch(entry, previous))
            self._switching[entry.name] = pending = (entry, task)
        lifespan = await asyncio.shield(pending[1])
        if self._switching.get(entry.name) is pending:
            del self._switching[entry.name]
        return lifespan

    async def _switch(self, entry: ASGIApplication, previous: asyncio.Task[Lifespan] | None) -> Lifespan:
        if previous is not None:
            await asyncio.shield(previous)
        old = self.current.get(entry.name)
        if old is not None and old.entry is not entry:
            await old.shutdown()
        lifespan = Lifespan(entry, self.mode)
        await lifespan.startup()
        if lifespan.failure is not None:
            self.log_line(f"lifespan startup of {entry.name} failed: {lifespan.failure}")
        self.current[entry.name] = lifespan
        return lifespan

    async def close(self) -> None:
        """The worker stops: shut every app down."""
        for _, task in list(self._switching.values()):
            await asyncio.shield(task)
        for lifespan in self.current.values():
            await lifespan.shutdown()
        self.current.clear()
