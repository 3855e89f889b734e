"""Messages from the supervisor to its workers, over each worker's control pipe, and the answers that come back.

Every message is a frozen dataclass, matched by its type at the other end:
by the worker's table (``Worker.on_message``), or, for the steps of a warm
restart that come before a new worker serves (:class:`Go`, :class:`Serve`),
by ``warm.standby_main`` and ``project.await_takeover``.

An answer (:class:`Evaluated`, :class:`StopSeen`) travels on the worker's
event pipe as a batch of its own, which the supervisor takes out of the
stream before the sink sees it (devserver.supervisor.awaited).
"""

from __future__ import annotations

from devserver.kit.frozen import record


@record
class Reload:
    """Forget ``modules`` (None: every dynamic module); ``generation`` orders reloads."""

    generation: int
    modules: tuple[str, ...] | None
    paths: tuple[str, ...]


@record
class CompileFailure:
    """A module of the dynamic folder that does not compile: what open pages show over themselves."""

    file: str  # as the user knows it: relative to the working folder when inside it
    line: int | None
    message: str


@record
class PageChanged:
    """Files that open browser pages show changed: ``kind`` is "css" (swap in place), "reload" (by path:
    a module reloads app pages, an HTML file the pages at its path), "app" (a project APP answers with new
    code or templates: its pages reload, static ones do not), or "failed" (modules changed but one does
    not compile: ``failure`` says which and why)."""

    kind: str
    paths: tuple[str, ...]
    failure: CompileFailure | None = None


@record
class Evaluate:
    """Run ``source`` (an expression, else statements) in frame ``frame`` of the failure that request
    ``request_id`` raised in this worker (devserver.debug.failures); ``serial`` names the answer."""

    serial: int
    request_id: str
    frame: int  # index in the app's frames, as in the request's ErrorReport (0: the app's first; -1: the raiser)
    source: str


@record
class Evaluated:
    """The answer to :class:`Evaluate` ``serial``: what the code printed, then its value or its error."""

    serial: int
    output: str = ""  # written to stdout while it ran (shortened)
    value: str = ""  # repr of an expression's value, shortened ("" for statements and None)
    error: str = ""  # the exception's last line, or why nothing was evaluated (a refusal, a timeout)


@record
class StopSeen:
    """A worker's word when the supervisor's SIGTERM reaches it: the events of everything it finished before are
    ahead of this one on its event pipe, so the log can say "stopping" after them."""


@record
class Go:
    """To a standby worker of a warm restart (devserver.supervisor.warm): load the app, say "ready", then wait
    for :class:`Serve`."""


@record
class Serve:
    """To a warm restart's new worker, loaded: start accepting, the listening socket is yours now."""


@record
class Pause:
    """To a current worker during a warm restart: stop accepting, new workers take the connections."""


@record
class ArmProfile:
    """Profile the next request to ``route`` ("GET /catalog", devserver.probes.route_of) in whichever worker
    serves it first; None disarms.  The supervisor disarms every worker once one profile has come back."""

    route: str | None


ControlMessage = Reload | PageChanged | Evaluate | Go | Serve | Pause | ArmProfile
