"""Every call's request id, `x-request-id`: the registry's own, sent to the caller, written in the access log.

The id travels in the trailing metadata, which every call ends with, a refusal
included. Not in the initial metadata: gRPC treats a call whose headers arrived
as committed and never retries it, so early headers would take the SDK's retry
of UNAVAILABLE away. A stream, which channels do not retry, also gets it in its
headers once it is open, so a watcher knows it while the stream runs.
"""

from __future__ import annotations

import secrets

import grpc

REQUEST_ID_KEY = "x-request-id"  # the SDK reads it (jpr_client.errors); docs/protocol.md, "Request ids"


def new_request_id(context: grpc.ServicerContext) -> str:
    """A new id for this call, in the trailers it ends with, however it ends. The registry makes every id
    itself: one a client sent would let two calls share an id, or a client forge another's."""
    request_id = secrets.token_hex(8)
    context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
    return request_id


def send_request_id(context: grpc.ServicerContext, request_id: str) -> None:
    """The id in the headers of a stream that has just opened."""
    try:
        context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
    except grpc.RpcError:  # the caller has cancelled already: its end is recorded all the same
        pass
