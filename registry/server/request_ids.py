"""Every call's request id, `x-request-id`: the registry's own, sent to the caller, written in the access log.

The id travels in the trailing metadata, which every call ends with, a refusal
included. Not in the initial metadata: gRPC treats a call whose headers arrived
as committed and never retries it, so early headers would take the SDK's retry
of UNAVAILABLE away. A stream, which channels do not retry, also gets it in its
headers once it is open, so a watcher knows it while the stream runs.
"""

from __future__ import annotations

import os
import threading

import grpc

REQUEST_ID_KEY = "x-request-id"  # the SDK reads it (jpr_client.errors); docs/protocol.md, "Request ids"


class RequestIds:
    """New ids, 8 random bytes each in 16 hex digits, from the operating system's CSPRNG read for many ids at once.

    The registry makes every id itself: one a client sent would let two calls share an id, or a
    client forge another's. Reading the random bytes is a system call, which lets go of the GIL;
    on a busy server the request thread then queues to get it back, so one read serves `batch` calls.
    """

    def __init__(self, batch: int = 512) -> None:
        self._size = 8 * batch
        self._pool = b""
        self._at = 0
        self._lock = threading.Lock()

    def new(self, context: grpc.ServicerContext) -> str:
        """A new id for this call, in the trailers it ends with, however it ends."""
        with self._lock:
            if self._at >= len(self._pool):
                self._pool, self._at = os.urandom(self._size), 0
            pool, at = self._pool, self._at
            self._at = at + 8
        request_id = pool[at : at + 8].hex()
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        return request_id


def send_request_id(context: grpc.ServicerContext, request_id: str) -> None:
    """The id in the headers of a stream that has just opened."""
    try:
        context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
    except grpc.RpcError:  # the caller has cancelled already: its end is recorded all the same
        pass
