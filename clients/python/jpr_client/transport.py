"""Failures below the protocol: a registry that cannot be reached, or one that is not the credentials' own.

gRPC reports both as UNAVAILABLE, the status its retry policy repeats (`service_config`). A registry
that is down may come back within the retries; a TLS handshake that fails because the server's
certificate is not signed by the pinned CA fails the same way every time, so `connect` reports it
at once instead of letting the retries run out.
"""

from __future__ import annotations

import threading

import grpc

from jpr_client.errors import RPCError

# What gRPC's core says (the call's details) when the connection itself failed.
_HANDSHAKE_FAILED = ("handshake failed", "certificate_verify_failed", "ssl_error")
_NOT_REACHED = (
    "failed to connect", "connection refused", "connections to all backends failing", "dns resolution failed",
    "name or service not known", "no route to host", "network is unreachable", "socket closed", "connection reset",
)
# A method no registry has: asked of a channel in TRANSIENT_FAILURE it fails at once, without retries,
# with the channel's last connection error; it never reaches a server (gRPC fails it before sending).
_PROBE = "/jpr.v1.Connection/LastError"


def handshake_failed(error: RPCError) -> bool:
    """Whether an UNAVAILABLE is a failed TLS handshake (another registry's CA, or a certificate it refused)."""
    return error.status is grpc.StatusCode.UNAVAILABLE and any(word in error.message.lower() for word in _HANDSHAKE_FAILED)


def not_reached(error: RPCError) -> bool:
    """Whether an UNAVAILABLE means no registry answered at all (nothing listening, a wrong host, no network)."""
    return error.status is grpc.StatusCode.UNAVAILABLE and any(word in error.message.lower() for word in _NOT_REACHED)


def handshake_message(endpoint: str, detail: str) -> str:
    if "certificate_verify_failed" in detail.lower():
        return (f"the registry at {endpoint} has a certificate that the CA in these credentials did not sign: "
                f"the credentials belong to another registry (or {endpoint} is another registry's address); "
                "use the credentials this registry issued, or the endpoint they were issued for")
    return f"the TLS handshake with the registry at {endpoint} failed ({detail}): were these credentials issued by this registry?"


def unreachable_message(endpoint: str, detail: str) -> str:
    """What to say when no registry answered: the last reason gRPC gives ("Connection refused"), and the likely cause.

    Example:
        >>> unreachable_message("127.0.0.1:50051", "last error: UNKNOWN: ipv4:127.0.0.1:50051: Connection refused")
        'cannot reach the registry at 127.0.0.1:50051 (Connection refused): is the registry running at 127.0.0.1:50051?'
    """
    reason = detail.rsplit(": ", 1)[-1]
    return f"cannot reach the registry at {endpoint} ({reason}): is the registry running at {endpoint}?"


def connect(channel: grpc.Channel, endpoint: str, timeout: float = 5.0) -> None:
    """Wait, at most `timeout` seconds, for `channel` to connect; a failed TLS handshake raises at once.

    Raises RPCError(UNAVAILABLE) saying that the credentials belong to another registry when the
    server's certificate is not signed by their CA: no retry can mend that. Any other state (connected,
    still connecting, refused) returns, and the calls that follow are retried as usual.

    Example:
        >>> channel = secure_channel(credentials)  # doctest: +SKIP
        >>> connect(channel, credentials.endpoint)  # doctest: +SKIP
    """
    settled = threading.Event()
    last: list[grpc.ChannelConnectivity] = []

    def watch(state: grpc.ChannelConnectivity) -> None:
        last.append(state)
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            settled.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        settled.wait(timeout)
    finally:
        channel.unsubscribe(watch)
    if last and last[-1] is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
        error = _last_error(channel)
        if error is not None and handshake_failed(error):
            raise RPCError(error.status, handshake_message(endpoint, error.message), "connect") from None


def _last_error(channel: grpc.Channel) -> RPCError | None:
    try:
        channel.unary_unary(_PROBE, request_serializer=None, response_deserializer=None)(b"", timeout=1.0)
    except grpc.RpcError as error:
        return RPCError.from_grpc(error, "connect")
    return None
