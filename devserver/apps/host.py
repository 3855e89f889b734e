"""What the app loaders use of the worker that runs them, which they cannot import (the worker imports them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from devserver.ipc.channels import ControlReceiver
    from devserver.ipc.control import ControlMessage
    from devserver.ipc.events import Event


class Pool(Protocol):
    """The worker's thread pool (devserver.worker.threadpool.ThreadPool), for work off its event loop."""

    def submit(self, fn: Callable[[], None]) -> asyncio.Future[None]: ...


class WorkerHost(Protocol):
    """What a project's loader uses of its worker (devserver.worker.process.Worker), which it cannot import."""

    @property
    def control(self) -> ControlReceiver: ...

    @property
    def on_message(self) -> dict[type, Callable[[Any], None]]: ...  # each handler takes messages of its key

    @property
    def pool(self) -> Pool: ...

    applied_generation: int  # the newest Reload applied

    def on_control(self, message: ControlMessage) -> None: ...

    def emit_threadsafe(self, event: Event) -> None: ...

    def flush_events(self) -> None: ...

    def retire(self) -> None: ...

    def app_loaded(self) -> object: ...  # a new app object is there: an ASGI app's lifespan starts now
