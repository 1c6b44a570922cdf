"""gRPC's health service, telling the truth: NOT_SERVING whenever lookups cannot be answered.

Lookups answer UNAVAILABLE once a replica's view has not reached its database
for `max_lag_seconds`; a load balancer that still sees SERVING keeps sending
every platform's entry audits to it. A monitor thread turns the overall service
and `jpr.v1.Registry` NOT_SERVING in that state, and SERVING again once the view
has caught up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2

log = logging.getLogger("jpr.server")

OVERALL = ""
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health(health.HealthServicer):
    """The reference servicer with `List`, over the services this registry reports on."""

    def __init__(self, services: Sequence[str]) -> None:
        super().__init__()
        self._services = (OVERALL, *services)
        for name in self._services:
            self.set(name, SERVING)

    def List(self, request: health_pb2.HealthListRequest, context: grpc.ServicerContext) -> health_pb2.HealthListResponse:
        statuses = {name: self.Check(health_pb2.HealthCheckRequest(service=name), context) for name in self._services}
        return health_pb2.HealthListResponse(statuses=statuses)


class LookupHealth:
    """Every `every` seconds: SERVING for `services` while `answerable()`, NOT_SERVING otherwise."""

    def __init__(self, servicer: Health, services: Sequence[str], answerable: Callable[[], bool], *, every: float = 0.5) -> None:
        self._servicer = servicer
        self._services = services
        self._answerable = answerable
        self._serving = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), name="jpr-health", daemon=True)
        self._thread.start()

    def check(self) -> None:
        serving = self._answerable()
        if serving == self._serving:
            return
        self._serving = serving
        if serving:
            log.info("lookups can be answered again: health SERVING")
        else:
            log.warning("lookups cannot be answered (the view has not reached its database): health NOT_SERVING")
        for name in self._services:
            self._servicer.set(name, SERVING if serving else NOT_SERVING)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.check()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
