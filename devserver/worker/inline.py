"""Which WSGI calls run on the worker's loop, inline, instead of in its thread pool: decided per route, from its record.

A call in the pool costs its hand-off: a queue, a thread woken, the GIL traded
back and forth, and the loop woken to answer.  For an app that answers in
microseconds that is most of the request.  So a route (method and path) whose
last ``EARN`` calls in the pool each took less than ``QUICK`` of the app's own
time is called on the loop from then on.  One inline call that takes ``QUICK``
or longer sends the route back to the pool, and it must earn inline again with
twice as many quick calls in a row each time; after ``MAX_DEMOTIONS`` it stays
in the pool until its app is reloaded.  So a slow route delays another
connection's request by at most one slow call (per demotion), and a route that
is slow at times ends up in the pool for good.

What stays in the pool whatever the record: a call while a profile is armed
(pyinstrument profiles the pool thread it runs in), and every call when
``DEVSERVER_INLINE=0``.  A record belongs to the app object it was measured
with: a reload (a new object) starts every route over in the pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from devserver.kit import interpreter
from devserver.probes import profile

QUICK = 0.0005  # seconds of app time (its call and its body) under which a call counts as quick
EARN = 8  # quick calls in a row, in the pool, that earn a route inline
MAX_DEMOTIONS = 4  # slow inline calls after which a route stays in the pool (before: EARN << demotions to come back)
MAX_ROUTES = 4096  # routes remembered; past it the table starts over (every route back to the pool)

Key = tuple[str, str]  # (method, path)


def inline_on() -> bool:
    """Inline calls are on unless ``DEVSERVER_INLINE=0``, where the loop can be hidden from the app (interpreter.py)."""
    return os.environ.get("DEVSERVER_INLINE", "1") != "0" and interpreter.hides_running_loop()


@dataclass(slots=True)
class _Record:
    """One route's calls so far, for the app object they were made to."""

    app: object
    streak: int = 0  # quick pool calls in a row
    demotions: int = 0  # slow inline calls so far
    inline: bool = False


@dataclass(slots=True)
class InlinePolicy:
    """The worker's per-route records, asked on the loop before each WSGI call and told each call's time after."""

    enabled: bool = field(default_factory=inline_on)
    routes: dict[Key, _Record] = field(default_factory=dict)

    def inline(self, key: Key, app: object) -> bool:
        """True: call ``app`` for this route on the loop now."""
        record = self.routes.get(key)
        return record is not None and record.inline and record.app is app and profile.armed() is None

    def took(self, key: Key, app: object, seconds: float, inline: bool) -> None:
        """A call of this route ended after ``seconds`` of app time (``inline``: it ran on the loop)."""
        if not self.enabled:
            return
        record = self.routes.get(key)
        if record is None or record.app is not app:
            if len(self.routes) >= MAX_ROUTES:
                self.routes.clear()
            record = self.routes[key] = _Record(app)
        if seconds >= QUICK:
            record.streak = 0
            if inline:
                record.inline = False
                record.demotions += 1
        elif not inline and record.demotions < MAX_DEMOTIONS:
            record.streak += 1
            if record.streak >= EARN << record.demotions:
                record.inline = True
