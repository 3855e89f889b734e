"""Which WSGI calls run on the worker's loop, inline, instead of in its thread pool: decided per route, from its record.

A call in the pool costs its hand-off: a queue, a thread woken, the GIL traded
back and forth, and the loop woken to answer.  For an app that answers in
microseconds that is most of the request.  So a route (method and path) whose
last ``EARN`` calls in the pool each took less than ``SLOW`` of app time (its
call and its body, wall clock) is called on the loop from then on.

``SLOW`` is the interpreter's switch interval (5 ms): a pool thread running
Python holds the loop up that long before it must let go of the GIL, so a
call shorter than that costs the other connections no more on the loop than
in the pool.  Wall clock, not CPU time: a call that blocks (an upstream, a
sleep, a lock) uses no CPU and is exactly the one that must not run on the
loop.  The bound is loose for the pool's calls because their time includes
their waits for the GIL, which the loop holds while it works.

One inline call of ``SLOW`` or more holds every other connection of the
worker up once; it does not send its route back to the pool at once, because
on a busy machine a hello call that was merely preempted takes as long (under
a load of 8 on 2 cores, every worker lost its routes to the pool for good
within seconds that way).  It sends the route's next call to the pool as a
check: if that one takes ``SLOW`` or more too, the route is slow and stays in
the pool; if not, the machine was, and the route goes back to the loop.  So a
route that turns slow holds the loop up for one call, and then runs in the
pool.  Each time a route goes back to the pool it must earn the loop again
with twice as many calls in a row; after ``MAX_DEMOTIONS`` it stays in the pool
until its app is reloaded (a record belongs to the app object it was measured
with: a reload starts every route over in the pool).

Only while nothing else waits on the worker: no call of the pool's in
flight (``in_pool``, counted by the pool), and no other call inline in this
turn of the loop.  When many connections are busy the pool's batching is
cheaper than answering each at once (one wake-up for a batch of answers,
fewer turns of the loop per request): with every quick call inline, hello at
50 connections cost more CPU per request than the pool in 4 of 5
interleaved rounds and doubled its p99, and with one inline call per turn it
still cost more in 4 of 5; at 4 connections inline cost a quarter less, and
one request at a time it removes 30% of the worker's instructions
(docs/bench/inline.md).  So inline calls are what an idle worker does: a
browser's requests, one or a few at a time.

What stays in the pool whatever the record: every call while a profile is
armed (pyinstrument profiles the pool thread a call runs in), and every call
with ``DEVSERVER_INLINE=0`` or where the loop cannot be hidden from the app
(kit/interpreter.py).  ``DEVSERVER_INLINE=always`` calls every route inline
whatever it takes, while nothing else waits as above: for measuring the
hand-off alone (under callgrind every call is slow, so the record would keep
them all in the pool), never for use.  A long call in the pool (a streamed
response that lasts) keeps its worker's other calls in the pool meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field

from devserver.kit import interpreter
from devserver.probes import profile

SLOW = sys.getswitchinterval()  # seconds of app time (5 ms): pool calls under it earn the loop, an inline one over it is checked
EARN = 8  # pool calls in a row under SLOW that earn a route the loop (doubled at each return to the pool)
MAX_DEMOTIONS = 4  # returns to the pool after which a route stays there until its app is reloaded
MAX_ROUTES = 4096  # routes remembered; past it the table starts over (every route back to the pool)

Key = tuple[str, str]  # (method, path)
_MODES = {"0": "off", "off": "off", "false": "off", "no": "off", "always": "always"}  # DEVSERVER_INLINE; else "record"


def inline_mode() -> str:
    """"record" (the routes' records decide), "off" (``DEVSERVER_INLINE=0``, or the loop cannot be hidden from the
    app: interpreter.py) or "always" (``DEVSERVER_INLINE=always``: measuring only)."""
    if not interpreter.hides_running_loop():
        return "off"
    return _MODES.get(os.environ.get("DEVSERVER_INLINE", "").strip().lower(), "record")


@dataclass(slots=True)
class _Record:
    """One route's calls so far, for the app object they were made to."""

    app: object
    streak: int = 0  # pool calls in a row under SLOW
    demotions: int = 0  # returns to the pool so far
    inline: bool = False
    checking: bool = False  # an inline call took SLOW: the next call, in the pool, says whether the route is slow


@dataclass(slots=True)
class InlinePolicy:
    """The worker's per-route records, asked on the loop before each WSGI call and told each call's time after.

    ``loop``: the worker's, whose turns bound the inline calls to one each (None: no bound, for tests).
    """

    loop: asyncio.AbstractEventLoop | None = None
    mode: str = field(default_factory=inline_mode)
    routes: dict[Key, _Record] = field(default_factory=dict)
    turn_taken: bool = False  # a call ran inline in this turn of the loop: the others go to the pool
    in_pool: int = 0  # calls handed to the pool and not yet answered (threadpool.py counts them, on the loop)

    def inline(self, key: Key, app: object) -> bool:
        """True: call ``app`` for this route on the loop now."""
        record = self.routes.get(key)
        if record is None or not record.inline or record.app is not app:
            if self.mode != "always":
                return False
        if self.turn_taken or self.in_pool or profile.armed() is not None:
            return False
        if self.loop is not None:
            self.turn_taken = True
            self.loop.call_soon(self._next_turn)  # run at the next turn, before its reads
        return True

    def _next_turn(self) -> None:
        self.turn_taken = False

    def took(self, key: Key, app: object, seconds: float, inline: bool) -> None:
        """A call of this route ended after ``seconds`` of app time (``inline``: it ran on the loop)."""
        if self.mode != "record":
            return
        record = self.routes.get(key)
        if record is None or record.app is not app:
            if len(self.routes) >= MAX_ROUTES:
                self.routes.clear()
            record = self.routes[key] = _Record(app)
        if inline:
            if seconds >= SLOW:
                record.inline = False
                record.checking = True
        elif record.checking:
            record.checking = False
            record.inline = seconds < SLOW  # the machine was slow, not the route: back to the loop
            if not record.inline:
                record.streak = 0
                record.demotions += 1
        elif seconds >= SLOW:
            record.streak = 0
        elif record.demotions < MAX_DEMOTIONS:
            record.streak += 1
            if record.streak >= EARN << record.demotions:
                record.inline = True
