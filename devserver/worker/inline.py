"""Which WSGI calls run on the worker's loop, inline, instead of in its thread pool: decided per route, from its record.

A call in the pool costs its hand-off: a queue, a thread woken, the GIL traded
back and forth, and the loop woken to answer.  For an app that answers in
microseconds that is most of the request.  So a route (method and path) whose
last ``EARN`` calls in the pool each took less than ``SLOW`` of app time (its
call and its body, wall clock) is called on the loop from then on.  The bound
is loose because a pool thread's time includes its waits for the GIL, which
the loop holds while it works: under load a hello app's calls there took over
a millisecond often enough that, with ``QUICK`` as the bound, one of two
workers never earned inline in a whole benchmark run.  A call that blocks
longer than ``SLOW`` (an upstream, a sleep) never earns it.

Inline, a call holds up every other connection of the worker for as long as it
takes, so the route goes back to the pool after one call of ``SLOW`` or more,
or after two in a row of ``QUICK`` or more (a route that turned a little slow:
serialised on the loop, such calls would queue behind each other where the
pool runs them side by side).  ``SLOW`` is the interpreter's switch interval:
a pool thread running Python holds the loop up as long before it must let go
of the GIL, so a call shorter than that costs the other connections no more
inline than in the pool.  One machine hiccup (a preempted call) is no reason
to leave; a call that blocks is.  Each time a route goes back it must earn its
place again with twice as many quick calls in a row; after ``MAX_DEMOTIONS``
it stays in the pool until its app is reloaded (a record belongs to the app
object it was measured with: a reload starts every route over in the pool).

What stays in the pool whatever the record: every call while a profile is
armed (pyinstrument profiles the pool thread a call runs in), and every call
with ``DEVSERVER_INLINE=0`` or where the loop cannot be hidden from the app
(kit/interpreter.py).  ``DEVSERVER_INLINE=always`` calls every route inline
whatever it takes: for measuring the hand-off alone (under callgrind every
call is slow, so the record would keep them all in the pool), never for use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from devserver.kit import interpreter
from devserver.probes import profile

QUICK = 0.001  # seconds of app time: two inline calls in a row this long send their route back to the pool
SLOW = sys.getswitchinterval()  # seconds (5 ms): one inline call this long sends it back; pool calls under it earn
EARN = 8  # pool calls in a row under SLOW that earn a route inline (doubled at each return to the pool)
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
    streak: int = 0  # quick pool calls in a row
    strikes: int = 0  # inline calls in a row of QUICK or more
    demotions: int = 0  # returns to the pool so far
    inline: bool = False


@dataclass(slots=True)
class InlinePolicy:
    """The worker's per-route records, asked on the loop before each WSGI call and told each call's time after."""

    mode: str = field(default_factory=inline_mode)
    routes: dict[Key, _Record] = field(default_factory=dict)

    def inline(self, key: Key, app: object) -> bool:
        """True: call ``app`` for this route on the loop now."""
        record = self.routes.get(key)
        if record is None or not record.inline or record.app is not app:
            return self.mode == "always" and profile.armed() is None
        return profile.armed() is None

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
            record.strikes = record.strikes + 1 if seconds >= QUICK else 0
            if seconds >= SLOW or record.strikes >= 2:
                record.inline = False
                record.streak = record.strikes = 0
                record.demotions += 1
        elif seconds >= SLOW:
            record.streak = 0
        elif record.demotions < MAX_DEMOTIONS:
            record.streak += 1
            if record.streak >= EARN << record.demotions:
                record.inline = True
