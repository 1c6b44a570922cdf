"""Long-lived calls: capped per caller and in total, and ended when their caller loses access.

A call whose request or response is a stream (a health watch, a reflection
session, the changes feed, any stream added later) holds a server thread for as
long as it is open. The server's pool has `workers` threads for unary calls plus
one per stream slot, and no caller can take more than its share of the slots,
so however many streams one certificate opens, lookups and health checks keep
their threads.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from registry.domain.errors import ResourceExhausted
from registry.domain.model import Caller
from registry.store.database import log_background_failure

log = logging.getLogger("jpr.access")

Refusal = tuple[grpc.StatusCode, str]


@dataclass(frozen=True)
class StreamLimits:
    total: int = 16  # streams open at once on one replica
    per_caller: int = 4  # streams one caller (role and name, whatever its certificate) may hold


@dataclass(eq=False)
class Stream:
    method: str
    caller: Caller
    context: grpc.ServicerContext
    running: bool = False  # a server thread serves it: the slot is freed when that thread leaves, not before
    ended: str | None = None  # the status it ended with, when this replica ended it (its access-log record says so)
    _closed: bool = field(default=False, repr=False)

    def end(self, status: str) -> None:
        """Note the status it ended with. The first word stands: the sweeper's, say, over the cancel its thread sees next."""
        if self.ended is None:
            self.ended = status


def caller_key(caller: Caller) -> str:
    return f"{caller.role}:{caller.name}"


def end_call(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """End a call from another thread, the caller seeing `code` and `message`.

    gRPC Python offers only a plain cancel here (the caller would see CANCELLED);
    the core call underneath cancels with a status, which the client receives
    as the call's status. Without it (another gRPC), the plain cancel still ends it.
    """
    call: Any = getattr(getattr(context, "_rpc_event", None), "call", None)
    try:
        call.cancel(code.value[0], message)
    except (AttributeError, TypeError):
        context.cancel()  # type: ignore[no-untyped-call]


class OpenStreams:
    """The streams open on this replica; `sweep` ends those whose caller has lost access."""

    def __init__(
        self, limits: StreamLimits, standing: Callable[[Caller], Refusal | None], *, sweep_every: float = 0.25,
        refused: Callable[[str], None] = lambda limit: None,
    ) -> None:
        self._limits = limits
        self._standing = standing
        self._refused = refused  # told "per_caller" or "total" for each stream refused (metrics)
        self._lock = threading.Lock()
        self._open: set[Stream] = set()
        self._per_caller: Counter[str] = Counter()
        self._per_method: Counter[str] = Counter()  # keeps methods at 0: a gauge that drops to 0 must say so
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._run, args=(sweep_every,), name="jpr-streams", daemon=True)
        self._sweeper.start()

    def open(self, method: str, caller: Caller, context: grpc.ServicerContext) -> Stream:
        """A slot for this call; RESOURCE_EXHAUSTED past either limit.

        The slot stands for a thread: whoever sets `stream.running` frees it with `close` when its thread
        leaves the call. A call that ends before any thread runs it (cancelled before its first
        response was asked for) is freed by its end.
        """
        key = caller_key(caller)
        with self._lock:
            if self._per_caller[key] >= self._limits.per_caller:
                self._refused("per_caller")
                raise ResourceExhausted(
                    f"{key} may hold at most {self._limits.per_caller} open streams at once (health watches, reflection, "
                    "change watches) and holds them all; close one, or retry once one ends"
                )
            if len(self._open) >= self._limits.total:
                self._refused("total")
                raise ResourceExhausted(
                    f"this replica serves at most {self._limits.total} open streams at once and all are in use; retry later"
                )
            stream = Stream(method, caller, context)
            self._open.add(stream)
            self._per_caller[key] += 1
            self._per_method[method] += 1
        if not context.add_callback(lambda: self._ended(stream)):  # the call already ended
            self.close(stream)
        return stream

    def _ended(self, stream: Stream) -> None:
        if not stream.running:
            self.close(stream)

    def close(self, stream: Stream) -> None:
        """Free the stream's slot; a second close (the call's end and the relay's end) does nothing."""
        with self._lock:
            if stream._closed:
                return
            stream._closed = True
            self._open.discard(stream)
            self._per_method[stream.method] -= 1
            key = caller_key(stream.caller)
            self._per_caller[key] -= 1
            if self._per_caller[key] <= 0:
                del self._per_caller[key]

    @property
    def count(self) -> int:
        return len(self._open)

    def open_by_method(self) -> dict[str, int]:
        """Streams open now per method, every method that ever opened one included."""
        with self._lock:
            return dict(self._per_method)

    def sweep(self) -> None:
        """End every open stream whose caller is now refused (certificate revoked, member suspended)."""
        with self._lock:
            streams = list(self._open)
        for stream in streams:
            refusal = self._standing(stream.caller)
            if refusal is None or refusal[0] is grpc.StatusCode.UNAVAILABLE:
                continue  # UNAVAILABLE: the member view is too old to say; a stream is not ended on a guess
            code, message = refusal
            log.warning("%s ended for %s: %s", stream.method, caller_key(stream.caller), message)
            stream.end(code.name)
            end_call(stream.context, code, message)  # its thread sees the end and frees the slot as it leaves

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.sweep()
            except Exception:  # never let the sweeper die: the next round tries again
                log_background_failure(log, "checking open streams failed")

    def close_all(self) -> None:
        self._stop.set()
        self._sweeper.join()


def unexplained_end(context: grpc.ServicerContext) -> str:
    """How a stream ended that no code of ours ended: the client went away, or its deadline passed."""
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    if code is not None:
        return code.name
    remaining = context.time_remaining()
    return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
