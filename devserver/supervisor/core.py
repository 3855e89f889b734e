"""The supervisor: binds the socket, runs the workers, relays their events.

Threads: one reads the workers' event pipes and hands batches to the sink (console
log or dashboard); one watches worker sentinels and replaces a worker that
died.  The first workers are forked before any thread starts (when the
process has none yet, as under the console log and the dashboard): they
start without an interpreter start of their own and share the imported
modules' pages with the supervisor.  Once the process has threads, workers
are started with the ``spawn`` context (forking a threaded process is
unsafe): restarts.

The sink is called through :meth:`Supervisor._deliver`, which contains
whatever it raises: a log whose stdout went away (``devserver | head``) must
not stop the supervisor from stopping its workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from multiprocessing.context import ForkContext, SpawnContext
from typing import TYPE_CHECKING, Protocol, TypeAlias, cast

from devserver.ipc.channels import ControlReceiver, ControlSender, EventReader, EventWriter, Generation, InflightMemory, Process
from devserver.ipc.config import Config
from devserver.ipc.control import ArmProfile, ControlMessage, Evaluate, Evaluated, Go, Pause, Reload, Serve, StopSeen
from devserver.ipc.events import Event, LogEvent, ReloadEvent, RequestEvent, ServerEvent, Wire, WorkerEvent, received
from devserver.kit import interpreter
from devserver.kit.safetext import escape_controls
from devserver.readout.store import RequestStore
from devserver.supervisor.awaited import PendingAnswers, PipesToHear
from devserver.supervisor.listen import StartError as StartError  # re-exported: the console and the dashboard catch it from here
from devserver.supervisor.listen import bind_for_workers, take_early
from devserver.supervisor.readiness import Readiness
from devserver.worker.handoff import Handoff
from devserver.worker.inflight import describe, new_table, read_table

if TYPE_CHECKING:
    from devserver.readout.channel import ReadoutChannel

Sink = Callable[[list[Event]], None]
RESTART_BACKOFF = 1.0  # seconds; a worker that dies at once is not restarted in a tight loop
ANSWER_WAIT = 5.0  # seconds the console waits for a worker's answer (its own limit is failures.EVAL_LIMIT)
STOP_SEEN_WAIT = 1.0  # seconds "stopping" waits for the events of requests finished before the stop
IDLE_LOOK = 1.0  # seconds the event reader and the monitor wait at most: a change of workers or a stop wakes them


# worker_main's arguments, in its order: what a worker process is started with
WorkerArgs: TypeAlias = "tuple[Config, socket.socket, EventWriter, ControlReceiver, Generation, int, InflightMemory | None, Handoff | None]"


def _worker_entry(*args: *WorkerArgs) -> None:
    """A worker's entry point, importing the worker (asyncio, httptools, ...) only in the worker.

    The supervisor itself never serves a request: importing all that before
    it can start its workers would only delay the first answer.
    """
    from devserver.worker.process import worker_main

    worker_main(*args)


def _forked_worker_entry(inherited: tuple[int, ...], *args: *WorkerArgs) -> None:
    """A forked worker's entry point: first let go of what it inherited from the supervisor.

    Other workers' control pipes, in particular: a worker learns that the
    supervisor is gone when its control pipe's last writer closes.
    """
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the supervisor's handler is not the worker's
    # Logging as a spawned worker has it: handlers the supervisor's process configured (a test
    # runner's capture, an embedding program's files) would take the app's log lines away.
    import logging

    for handler in list(logging.root.handlers):
        logging.root.removeHandler(handler)
    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            pass
    _worker_entry(*args)


def _fork_context() -> ForkContext | None:
    """The ``fork`` context while forking is safe here (one thread, a platform with fork), else None."""
    if threading.active_count() != 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


def _prepare_forks(config: Config) -> None:
    """Import what every worker needs, once, and keep it out of the garbage collector's reach.

    The forks share these modules' pages with the supervisor for as long as
    nobody writes to them.  A collection writes to the header of every object
    it examines, which would copy most of those pages into each process;
    frozen objects are never examined again, in the supervisor or in the
    workers (gc.freeze is inherited).  The collector is off while these
    imports run: what they make is frozen next, a collection meanwhile would
    walk it for nothing.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        from devserver.worker import process  # noqa: F401 - imported here to be shared by the forks

        if config.app_dir is not None:
            from devserver.apps import project  # noqa: F401 - a project APP's loader (apploader.py)
        if config.livereload:
            from devserver.handlers import livereload  # noqa: F401 - every worker installs it
    finally:
        if collecting:
            gc.enable()
    gc.freeze()


def _worker_context() -> SpawnContext:
    """The multiprocessing context that starts workers (see the module docstring)."""
    interpreter.skip_resource_tracker()  # devserver makes nothing it would clean up
    return multiprocessing.get_context("spawn")


@dataclass
class WorkerSlot:
    """One worker: its process, the supervisor's ends of its pipes, and what the supervisor knows of it."""

    index: int
    process: Process
    control: ControlSender  # our end of the worker's control pipe
    events: EventReader  # our end of the worker's event pipe
    started: float
    restarts: int = 0
    inflight: InflightMemory | None = None  # shared table of the requests the worker is serving (worker.inflight)
    retired: bool = False  # replaced by a warm restart (warm.py): its exit is expected

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None, "a slot's process is started"
        return pid

    def tell(self, message: ControlMessage) -> None:
        """Send ``message`` down the control pipe; a worker that died meanwhile is left to its replacement."""
        try:
            self.control.send(message)
        except (OSError, ValueError):
            pass


class Watcher(Protocol):
    """A file watcher the supervisor starts after its workers and stops before them (devserver.reload.watcher)."""

    def start(self, supervisor: Supervisor) -> None: ...

    def stop(self) -> None: ...


def raise_open_files_limit(ceiling: int = 65536) -> None:
    """Raise the soft open-files limit to the hard limit (at most ``ceiling``).

    Shells often start programs with a soft limit of 1024 or less while the
    hard limit allows far more.  Every keep-alive connection costs a worker
    one descriptor; at the soft limit accept() and open() fail with EMFILE
    and requests get 500s.  Best effort: where the limit cannot be changed
    (no ``resource`` module, a platform cap) the server runs as it is.
    """
    try:
        import resource
    except ImportError:  # Windows
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = ceiling if hard == resource.RLIM_INFINITY else min(hard, max(ceiling, soft))
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass


class Supervisor:
    """Owns the socket and the worker processes."""

    def __init__(self, config: Config, sink: Sink) -> None:
        self.config = config
        self.sink = sink
        self.ctx = _worker_context()
        self.sock: socket.socket | None = None
        self.sockets: list[socket.socket] = []  # one per worker, or the one shared socket
        self.slots: list[WorkerSlot] = []
        # A warm restart's new workers while they load the app (from its "go" until they serve or are dropped):
        # they hold the generation they started with, so every Reload meanwhile must reach them too.
        self.loading: list[WorkerSlot] = []
        self.generation: Generation | None = None
        self.armed_route: str | None = None  # the route the dashboard asked to profile (arm_profile)
        self.handoff: Handoff | None = None  # connections a warm restart's old workers pass to the new ones
        self._retired: list[EventReader] = []  # event pipes of dead workers, read until empty
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self.watchers: list[Watcher] = []  # started after the workers, stopped before them
        # The dashboard's R: a project's watcher puts its own here (a restart where in place cannot be right).
        self.reload_all: Callable[[], None] = self.reload_in_place
        self.answers = PendingAnswers()  # the console's questions to workers, awaiting their answers
        self._stop_seen = PipesToHear()  # workers signalled to stop that have not yet sent what they had finished
        self._relaying = False  # the event reader runs (from just after "listening")
        self.store = RequestStore()  # the requests delivered lately, for `devserver requests` and `devserver mcp`
        self.readout: ReadoutChannel | None = None  # the store's local socket, from start()
        # What the event reader and the monitor wait on, each made by its thread (_workers_changed wakes them).
        self._pipes_ready: Readiness[EventReader] | None = None
        self._sentinels_ready: Readiness[int] | None = None

    @property
    def url(self) -> str:
        return self.config.url

    def start(self) -> None:
        """Bind and start everything; raises StartError with a user-facing message.

        In the order that gets the first answer out soonest: the sockets first
        (from then on a request waits in a backlog, it is never refused), then
        what the workers need and the workers; what only the supervisor uses
        (the sink's first lines, the watchers and what they import) follows,
        while the workers start.
        """
        raise_open_files_limit()  # before the workers start: they inherit it
        self.sockets = take_early(self.config.host, self.config.port, self.config.workers) or \
            bind_for_workers(self.config.host, self.config.port, self.config.backlog, self.config.workers)
        self.sock = self.sockets[0]
        self.config = replace(self.config, port=self.sock.getsockname()[1])
        self.generation = self.ctx.RawValue("Q", 0)
        self.handoff = Handoff.create()
        fork = _fork_context()
        if fork is not None:
            _prepare_forks(self.config)
        for index in range(self.config.workers):
            self.slots.append(self._spawn(index, fork=fork, announce=False))
        self._deliver([WorkerEvent(time.time(), slot.pid, "started", slot.index) for slot in self.slots])
        for watcher in self.watchers:  # before "listening": an edit saved after it is seen
            watcher.start(self)
        self._thread(self._monitor, "monitor")
        from devserver.supervisor.exposure import exposure_notes  # here: the workers are forked and start meanwhile

        notes = (*self.config.notices, *exposure_notes(self.sock.getsockname()[0], self.config.port, self.config.scheme),
                 *self._open_readout())
        self._deliver([ServerEvent(time.time(), "listening", self.url, self.config.workers, notes)])
        self._thread(self._read_events, "events")  # after "listening": no request is logged before it
        self._relaying = True

    def _open_readout(self) -> tuple[str, ...]:
        """Start the store's channel (after the fork: the workers carry none of it); a notice when it cannot."""
        from devserver.readout.channel import ReadoutChannel
        from devserver.readout.queries import ServerInfo

        try:
            self.readout = ReadoutChannel(self.store, ServerInfo(self.url, os.getcwd(), self.config.workers),
                                          self.config.port)
        except OSError as exc:
            return (f"`devserver requests` and `devserver mcp` cannot reach this server: {exc}",)
        return ()

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"devserver-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _spawn(self, index: int, restarts: int = 0, fork: ForkContext | None = None, announce: bool = True) -> WorkerSlot:
        receiver, sender = self.ctx.Pipe(duplex=False)
        event_reader, event_writer = self.ctx.Pipe(duplex=False)
        inflight = new_table(self.ctx)
        assert self.generation is not None, "a worker before start()"
        args: WorkerArgs = (self.config, self.sockets[index % len(self.sockets)], event_writer, receiver, self.generation, index,
                inflight, self.handoff)
        if fork is not None:
            inherited = tuple(end.fileno() for slot in self.slots for end in (slot.control, slot.events)) \
                + (sender.fileno(), event_reader.fileno())
            process: Process = fork.Process(target=_forked_worker_entry, name=f"devserver-worker-{index}",
                                   args=(inherited, *args))
            sys.stdout.flush()  # a buffer copied into the child would be written twice
            sys.stderr.flush()
        else:
            process = self.ctx.Process(target=_worker_entry, name=f"devserver-worker-{index}", args=args)
        process.start()
        receiver.close()
        event_writer.close()  # the worker holds the only writer: its death reads as EOF here
        slot = WorkerSlot(index, process, sender, event_reader, time.monotonic(), restarts, inflight)
        if self.armed_route is not None:  # a worker started later is armed too
            slot.tell(ArmProfile(self.armed_route))
        if announce:
            self._deliver([WorkerEvent(time.time(), slot.pid, "restarted" if restarts else "started", index)])
        return slot

    # threads -----------------------------------------------------------------
    def _read_events(self) -> None:
        """Relay batches from every worker's pipe; after stop(), read each to its end."""
        self._pipes_ready = readiness = Readiness[EventReader]()
        try:
            self._relay(readiness)
        finally:
            readiness.close()

    def _relay(self, readiness: Readiness[EventReader]) -> None:
        while True:
            with self._lock:
                self._retired = [pipe for pipe in self._retired if not pipe.closed]
                pipes = [pipe for pipe in [slot.events for slot in self.slots] + self._retired if not pipe.closed]
            final = self._stopped.is_set()
            ready = readiness.ready(pipes, IDLE_LOOK)
            for pipe in pipes:
                if pipe in ready:
                    self._receive(pipe)
            if final:
                for pipe in pipes:
                    while not pipe.closed and pipe.poll() and self._receive(pipe):
                        pass
                return

    def _receive(self, pipe: EventReader) -> bool:
        """Deliver one batch; at the end of a pipe (its worker is gone) close it."""
        try:
            batch = pipe.recv()
        except (EOFError, OSError):
            pipe.close()
            self._stop_seen.heard(pipe)  # all it sent has been delivered
            return False
        first = batch[0] if batch else None
        if isinstance(first, Evaluated):  # a worker's answer to the console travels alone (debug/failures.py)
            self.answers.resolve(first)
        elif isinstance(first, StopSeen):  # so does its word that what it finished before the stop was delivered
            self._stop_seen.heard(pipe)
        else:
            events = received(cast("list[Event | Wire]", batch))  # the answers' batches went above
            if self.armed_route is not None and any(isinstance(e, RequestEvent) and e.inside is not None
                                                    and e.inside.profile is not None for e in events):
                self.arm_profile(None)  # one profile came back: every worker stops waiting for one
            self._deliver(events)
        return True

    def _deliver(self, batch: list[Event]) -> None:
        self.store.add(batch)
        try:
            self.sink(batch)
        except (Exception, SystemExit):  # noqa: BLE001 - a broken consumer must not stop serving, nor stopping
            import traceback

            try:
                traceback.print_exc()
            except (OSError, ValueError):  # stderr is gone too
                pass

    def _monitor(self) -> None:
        self._sentinels_ready = readiness = Readiness[int]()
        try:
            while not self._stopping.is_set():
                with self._lock:
                    sentinels = {slot.process.sentinel: slot for slot in self.slots}
                ready = readiness.ready(list(sentinels), IDLE_LOOK)
                if self._stopping.is_set():
                    return
                for sentinel, slot in sentinels.items():
                    if sentinel in ready:
                        self._replace(slot)
        finally:
            readiness.close()

    def _workers_changed(self) -> None:
        """The event reader and the monitor look at once at the pipes and sentinels of the workers now (or stop)."""
        for readiness in (self._pipes_ready, self._sentinels_ready):
            if readiness is not None:
                readiness.wake()

    def _replace(self, slot: WorkerSlot) -> None:
        if slot.retired:
            return  # a warm restart replaced it already and reaps it
        # The sentinel fires when the worker's descriptors close, a moment before
        # it can be reaped: wait (bounded) so it is reaped and its exit code known.
        slot.process.join(1.0)
        self._deliver([WorkerEvent(time.time(), slot.pid, "exited", slot.index, slot.process.exitcode),
                       *self._unfinished(slot, "died")])
        slot.control.close()
        with self._lock:
            self._retired.append(slot.events)
        # Connections dealt to this worker's socket wait for its replacement, so the first
        # replacement starts at once; only a replacement that dies at once again waits.
        quick_death = time.monotonic() - slot.started < RESTART_BACKOFF and slot.restarts > 0
        if quick_death and self._stopping.wait(RESTART_BACKOFF):
            return
        with self._lock:
            if self._stopping.is_set():
                return
            new = self._spawn(slot.index, slot.restarts + 1)
            self.slots[self.slots.index(slot)] = new
        self._workers_changed()

    # control -----------------------------------------------------------------
    def broadcast(self, message: ControlMessage) -> None:
        """Send a control message to every worker."""
        with self._lock:
            for slot in self.slots:
                slot.tell(message)  # a dead worker's replacement starts fresh

    def arm_profile(self, route: str | None) -> None:
        """Profile the next request to ``route`` in whichever worker serves it first (None disarms)."""
        self.armed_route = route
        self.broadcast(ArmProfile(route))

    def reload(self, modules: Iterable[str] | None, paths: Iterable[str] = ()) -> int:
        """Tell every worker to purge ``modules`` (None: all dynamic modules).

        The generation is bumped only after every pipe holds the message, so a
        worker that sees the new number finds the message waiting: the
        workers a warm restart is loading get it too.
        """
        assert self.generation is not None, "reload() before start()"
        with self._lock:
            generation = self.generation.value + 1
            message = Reload(generation, None if modules is None else tuple(modules), tuple(paths))
            for slot in (*self.slots, *self.loading):
                slot.tell(message)
            self.generation.value = generation
        return generation

    def reload_in_place(self) -> None:
        """Reload every dynamic module now; logged as a reload of all modules."""
        started = time.perf_counter()
        self.reload(None)
        self._deliver([ReloadEvent(time.time(), (), (), (time.perf_counter() - started) * 1000)])

    def evaluate(self, worker_pid: int, request_id: str, frame: int, source: str,
                 timeout: float = ANSWER_WAIT) -> Evaluated:
        """Run ``source`` in frame ``frame`` of the failure of request ``request_id``, in the worker that served it.

        The question goes down that worker's control pipe, never over HTTP;
        the answer comes back on its event pipe.  Blocks at most ``timeout``
        seconds (a worker that does not answer gets a message saying so).
        """
        with self._lock:
            slot = next((s for s in self.slots if s.pid == worker_pid), None)
            if slot is None:
                return Evaluated(0, error=f"the worker that kept this failure (pid {worker_pid}) has ended; "
                                          "its failures went with it")
            serial = self.answers.expect()
            try:
                slot.control.send(Evaluate(serial, request_id, frame, source))
            except (OSError, ValueError):
                self.answers.forget(serial)
                return Evaluated(0, error=f"the worker that kept this failure (pid {worker_pid}) has ended")
        answer = self.answers.wait(serial, timeout)
        if answer is None:
            return Evaluated(0, error=f"no answer from worker pid {worker_pid} within {timeout:g} s")
        return answer

    # warm restarts (devserver.supervisor.warm) ---------------------------------
    @property
    def stopping(self) -> bool:
        """True from the moment stop() is called."""
        return self._stopping.is_set()

    def worker_pids(self) -> set[int]:
        """The pids of the workers that serve now."""
        with self._lock:
            return {slot.pid for slot in self.slots}

    def start_loading(self, new: list[WorkerSlot]) -> None:
        """Tell a warm restart's standbys to load the app (:class:`Go`).

        Their events are read from now on (they report "ready"), and every
        Reload until :meth:`take_over` reaches them too: they hold the
        generation they started with.
        """
        with self._lock:
            for slot in new:
                slot.tell(Go())
                slot.started = time.monotonic()
            self._retired.extend(slot.events for slot in new)
            self.loading = list(new)
        self._workers_changed()

    def take_over(self, new: list[WorkerSlot], serve: bool) -> list[WorkerSlot] | None:
        """End the loading of ``new``: unless ``serve`` is False or the supervisor is stopping, they replace the
        current workers, which stop accepting (:class:`Pause`) and are returned; else None (the caller drops them).

        Under the lock stop() takes the workers it ends with: once it has, these never serve.
        """
        with self._lock:
            self.loading = []  # they serve now (Reloads reach them as slots), or are dropped
            if not serve or self._stopping.is_set():
                return None
            old = list(self.slots)  # as they are now: a crashed worker may have been replaced meanwhile
            for slot in old:
                slot.tell(Pause())
                slot.retired = True
            self._retired = [pipe for pipe in self._retired if all(pipe is not s.events for s in new)]
            self._retired.extend(slot.events for slot in old)  # read to their end by the event thread
            self.slots = new
            for slot in new:
                slot.tell(Serve())  # the new workers start accepting: the socket is theirs
                if self.armed_route is not None:
                    slot.tell(ArmProfile(self.armed_route))
        self._workers_changed()
        return old

    def _unfinished(self, slot: WorkerSlot, how: str) -> list[Event]:
        """A line naming the requests ``slot``'s worker had not finished when it ended (none: no line)."""
        if slot.inflight is None:
            return []
        requests, more = read_table(slot.inflight)
        if not requests and not more:
            return []
        code = slot.process.exitcode
        detail = f" (exit code {code})" if code not in (None, 0) else ""
        text = f"worker {slot.index} (pid {slot.pid}) {how}{detail} while serving {describe(requests, more)}"
        return [LogEvent(time.time(), slot.pid, escape_controls(text, multiline=False), "error")]

    # shutdown ------------------------------------------------------------------
    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), end every worker."""
        if self._stopping.is_set():
            self._stopped.wait()
            return
        self._stopping.set()
        self._workers_changed()  # the monitor returns
        if self.generation is None:  # start() failed before anything ran
            self._stopped.set()
            return
        with self._lock:
            slots = list(self.slots)
        self._stop_seen.expect(slot.events for slot in slots if self._relaying and not slot.events.closed)
        for slot in slots:  # first of all: nothing below may keep the workers running
            if slot.process.is_alive():
                slot.process.terminate()
        # Requests answered before the stop are logged before it: each worker sends their events, then StopSeen.
        self._stop_seen.wait(STOP_SEEN_WAIT)
        self._deliver([ServerEvent(time.time(), "stopping", self.url)])
        for watcher in self.watchers:
            watcher.stop()
        deadline = time.monotonic() + self.config.shutdown_timeout + 2
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            killed = slot.process.is_alive()
            if killed:  # it did not finish its drain: say what it was still doing
                slot.process.kill()
                slot.process.join(2)
            self._deliver([WorkerEvent(time.time(), slot.pid, "stopped", slot.index, slot.process.exitcode),
                           *(self._unfinished(slot, "was killed after the drain limit") if killed else ())])
            slot.control.close()
        self._stopped.set()  # the reader now reads every pipe to its end, then returns
        self._workers_changed()
        for thread in self._threads:
            thread.join(5)
        for sock in self.sockets:
            sock.close()
        if self.handoff is not None:
            self.handoff.close()  # connections still in it (no worker took them) close with it
        for slot in slots:
            slot.events.close()
        if self.readout is not None:
            self.readout.close()
        self._deliver([ServerEvent(time.time(), "stopped", self.url)])
