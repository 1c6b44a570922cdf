"""Calls that gRPC refuses itself because `JPR_MAX_CONCURRENT_CALLS` calls are in progress.

gRPC answers such a call RESOURCE_EXHAUSTED ("Concurrent RPC limit exceeded!") after routing it
through the interceptors and before any handler runs, so without this the registry would neither
count nor log it. While it routes a call, gRPC's serving thread holds the server's state lock
and has just compared the same two numbers read here (`_process_event_and_continue` in
grpc/_server.py; a finishing call must take that lock to lower the count), so the answer is the
one gRPC acts on. The two are private fields of grpc's server: when a release renames them the
registry still serves, logs a warning, and these refusals go uncounted again
(tests/integration/test_metrics.py fails on that release).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jpr.server")


def never() -> bool:
    return False


def saturation(server: Any) -> Callable[[], bool]:
    """Whether `server` (a grpc.Server) is refusing the call it routes now for its concurrency cap."""
    state: Any = getattr(server, "_state", None)
    if not (hasattr(state, "active_rpc_count") and hasattr(state, "maximum_concurrent_rpcs")):
        log.warning("this grpcio release hides its call count: calls it refuses at the concurrency cap are not counted or logged")
        return never
    if state.maximum_concurrent_rpcs is None:
        return never

    def saturated() -> bool:
        return bool(state.active_rpc_count >= state.maximum_concurrent_rpcs)

    return saturated
