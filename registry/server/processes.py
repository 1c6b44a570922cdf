"""`jpr serve --processes N`: one address served by N registry processes, each with its own lookup index.

gRPC's Python server runs every handler under one interpreter lock, so one process uses about one core.
N processes bound to the same port with SO_REUSEPORT let the kernel spread connections over them. The
parent serves nothing itself:

- It reserves the address. First a bind without SO_REUSEPORT, which fails while any other socket holds
  the port (a foreign listener, or the processes of another `jpr serve`): a second registry on a taken
  port stops with an error naming --listen instead of silently sharing it. Then a socket bound with
  SO_REUSEPORT that never listens: from then on only processes of the same user that also ask for
  SO_REUSEPORT (ours) can bind the port, and a port picked from 0 stays ours while they start.
- It starts the processes with 'spawn' (gRPC does not survive a fork once its threads run); each runs
  `registry.server.app.start(..., share_port=True)`. `jpr serve` says it serves once every one does.
- It supervises. SIGTERM or SIGINT stops every process gracefully (health NOT_SERVING, calls in flight
  finish, as `RunningRegistry.stop`); a process that exits on its own is started again after a back-off,
  and one that keeps exiting stops the whole registry with a log line saying so.

A process whose parent is gone (SIGKILL, out of memory) exits at once: nothing outlives `jpr serve`.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from registry.settings import Settings, metrics_address

log = logging.getLogger("jpr.processes")

GRACE = 5.0  # seconds the calls in flight get to finish at a stop, as with one process
RESTARTS = 5  # a process exiting this many times within RESTART_WINDOW seconds stops the registry
RESTART_WINDOW = 60.0
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0  # seconds before a restart: doubled after each exit within the window
SERVING, FAILED = "serving", "failed"  # what a process tells its parent once it started, or could not


def reserve(address: str) -> tuple[int, list[socket.socket]]:
    """The port of `address` (port 0: a free one) and the sockets that hold it for our processes.

    An address another process holds, or one that is not this host's, is an OSError naming it."""
    host, _, port_text = address.rpartition(":")
    port = int(port_text)
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OSError(f"cannot listen on {address} (--listen, JPR_LISTEN): {error.strerror}") from None
    held: list[socket.socket] = []
    try:
        for family, ip in dict.fromkeys((info[0], str(info[4][0])) for info in found):
            port = _probe(family, (ip, port), address)
            held.append(_hold(family, (ip, port)))
    except BaseException:
        for each in held:
            each.close()
        raise
    return port, held


def _probe(family: int, sockaddr: tuple[str, int], address: str) -> int:
    """Bind as a foreign program would (SO_REUSEADDR, as gRPC, so that closed connections in TIME_WAIT
    do not count); any socket on the port, ours included, makes this fail."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as error:
            raise OSError(_refusal(address, error)) from None
        return int(probe.getsockname()[1])


def _hold(family: int, sockaddr: tuple[str, int]) -> socket.socket:
    held = socket.socket(family, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(sockaddr)  # never listens: no connection is ever queued on it
    return held


def _refusal(address: str, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"cannot listen on {address}: the address is taken by another process (--listen, JPR_LISTEN)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {address}: not one of this host's addresses (--listen, JPR_LISTEN)"
    return f"cannot listen on {address} (--listen, JPR_LISTEN): {error.strerror}"


def serve_one(settings: Settings, number: int, pipe: Connection) -> None:
    """One of the processes (spawned): serve until SIGTERM or SIGINT, or until the parent is gone."""
    from registry.server import log_format
    from registry.server.app import start

    log_format.configure(settings.log_level, settings.log_format)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    _exit_with_parent()
    try:
        running = start(settings, share_port=True, keeps_snapshot=number == 0)  # one writer of the index snapshot
    except Exception as error:
        pipe.send((FAILED, _reason(number, error)))
        raise SystemExit(1) from None
    pipe.send((SERVING, os.getpid()))
    stopped.wait()
    running.stop(grace=GRACE)


def _reason(number: int, error: Exception) -> str:
    # The errors of a setting, a file or an address say what to change; anything else is a bug: its traceback is logged.
    if isinstance(error, (OSError, ValueError, RuntimeError)):
        return str(error)
    log.exception("process %d could not start", number)
    return f"process {number} could not start: {type(error).__name__} (its traceback is in the log)"


def _exit_with_parent() -> None:
    """Exit the moment the parent's end of the spawn pipe closes, which only its exit does."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)  # no graceful stop: nobody supervises this process any more

    threading.Thread(target=watch, name="jpr-parent", daemon=True).start()


@dataclass
class _Process:
    number: int
    process: BaseProcess
    pipe: Connection
    exits: list[float] = field(default_factory=list)  # when it exited on its own, within the restart window


class Supervisor:
    """The parent of `jpr serve --processes N`: `start`, then `supervise` until signalled, then `stop`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._count = settings.effective_processes
        self._context = multiprocessing.get_context("spawn")
        self._held: list[socket.socket] = []
        self._processes: dict[int, _Process] = {}
        self.port = 0

    def start(self) -> int:
        """Reserve the address, start every process and return the port once all of them serve."""
        self.port, self._held = reserve(self._settings.listen)
        try:
            started = [self._spawn(number, []) for number in range(self._count)]  # they load their indexes side by side
            for each in started:
                self._await(each, fatal=True)
        except BaseException:
            self.stop()
            raise
        return self.port

    def supervise(self, stopping: threading.Event) -> int:
        """Until `stopping` is set: 0. A process that keeps exiting: 1, with a log line saying so."""
        while not stopping.is_set():
            watched = list(self._processes.values())
            ended = set(multiprocessing.connection.wait([each.process.sentinel for each in watched], timeout=0.5))
            for each in (each for each in watched if each.process.sentinel in ended):
                if stopping.is_set():
                    break  # a Ctrl-C reaches the processes too: they stop, they did not fail
                if not self._replace(each, stopping):
                    return 1
        return 0

    def stop(self) -> None:
        """SIGTERM to every process (each stops gracefully), SIGKILL to any still there well after the grace period."""
        for each in self._processes.values():
            if each.process.is_alive():
                each.process.terminate()
        deadline = time.monotonic() + GRACE + 10
        for each in self._processes.values():
            each.process.join(max(0.0, deadline - time.monotonic()))
            if each.process.is_alive():
                log.warning("process %d (pid %s) did not stop in time: killed", each.number, each.process.pid)
                each.process.kill()
                each.process.join()
        for held in self._held:
            held.close()

    def _settings_of(self, number: int) -> Settings:
        host = self._settings.listen.rpartition(":")[0]
        metrics = metrics_address(self._settings.metrics_listen, number) if self._settings.metrics_listen else ""
        return replace(self._settings, listen=f"{host}:{self.port}", metrics_listen=metrics)

    def _spawn(self, number: int, exits: list[float]) -> _Process:
        ours, theirs = self._context.Pipe(duplex=False)
        process = self._context.Process(target=serve_one, args=(self._settings_of(number), number, theirs), name=f"jpr-{number}")
        process.start()
        theirs.close()
        self._processes[number] = _Process(number, process, ours, exits)
        return self._processes[number]

    def _await(self, each: _Process, *, fatal: bool) -> bool:
        """Whether the process serves; when `fatal`, one that does not is an OSError saying why."""
        try:
            word, detail = each.pipe.recv()  # an exit before sending ends the pipe: EOFError
        except EOFError:
            each.process.join()
            word, detail = FAILED, f"process {each.number} exited ({_how(each.process.exitcode)}) before serving"
        if word == SERVING:
            log.info("process %d serving (pid %d)", each.number, detail)
            return True
        if fatal:
            raise OSError(detail)
        log.error("process %d could not start again: %s", each.number, detail)
        return False

    def _replace(self, each: _Process, stopping: threading.Event) -> bool:
        """Start an exited process again after its back-off; False when it exited too often."""
        each.process.join()
        now = time.monotonic()
        exits = [when for when in each.exits if now - when < RESTART_WINDOW] + [now]
        if len(exits) >= RESTARTS:
            log.error("process %d exited %d times within %.0f s (last: %s): stopping the registry",
                      each.number, len(exits), RESTART_WINDOW, _how(each.process.exitcode))
            return False
        backoff = min(FIRST_BACKOFF * 2 ** (len(exits) - 1), MAX_BACKOFF)
        log.warning("process %d (pid %s) exited (%s): starting it again in %.0f s",
                    each.number, each.process.pid, _how(each.process.exitcode), backoff)
        each.process.close()
        each.pipe.close()
        if stopping.wait(backoff):
            del self._processes[each.number]
            return True
        self._await(self._spawn(each.number, exits), fatal=False)
        return True


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"
