"""Prometheus metrics of one running registry, served over plain HTTP on an address of their own.

Each running registry keeps its own CollectorRegistry (tests start many in one
process; the library's global one would mix them). Request threads only bump
counters; what the registry already holds (the lookup index, its lag, the open
streams) is read when Prometheus scrapes. Label values are method names, gRPC
status names, member names and fixed words: never a token, an identifier or a
certificate fingerprint. docs/operations.md lists every metric.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from registry.domain.audit import LOOKUP_METHODS, TOKENIZE_METHOD
from registry.server.streams import OpenStreams
from registry.store.view import ReadView

log = logging.getLogger("jpr.metrics")

COUNTED_METHODS = frozenset({TOKENIZE_METHOD, *LOOKUP_METHODS})  # the calls whose elements or applicants are counted
# Lookups answer in well under a millisecond on the server; imports and backups take seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Up to the largest burst a member may spend at once (tokenize_burst, 20000 by default).
ITEM_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000)


@dataclass(frozen=True)
class _CallChildren:
    """The labelled children one (method, status, member) of call bumps."""

    calls: Counter
    duration: Histogram
    items: Histogram | None
    member_items: Counter | None
    matched: Counter | None


class Metrics:
    """The counters the registry's parts bump, each through one method named for what happened."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._calls = Counter("jpr_calls", "Calls served or refused, by method and final gRPC status", ["method", "status"], registry=r)
        self._duration = Histogram(
            "jpr_call_duration_seconds", "Time from a call's arrival to its answer (for a stream: to its opening)", ["method"],
            buckets=DURATION_BUCKETS, registry=r,
        )
        self._items = Histogram(
            "jpr_call_items", "Elements tokenized (Tokenize) or applicants looked up (Lookup, LookupBatch) per call served",
            ["method"], buckets=ITEM_BUCKETS, registry=r,
        )
        self._member_items = Counter(
            "jpr_member_items", "Elements tokenized and applicants looked up in calls served, by member and method",
            ["member", "method"], registry=r,
        )
        self._matched = Counter("jpr_matched_applicants", "Applicants that matched a subject, by lookup method", ["method"], registry=r)
        self._rate_refusals = Counter(
            "jpr_rate_limit_refusals", "Calls refused by a member's rate limit, by member and what the limit counts",
            ["member", "kind"], registry=r,
        )
        self._stream_refusals = Counter(
            "jpr_stream_refusals", "Streams refused because the caller's share or the replica's total was in use",
            ["limit"], registry=r,
        )
        self._concurrency_refusals = Counter(
            "jpr_concurrency_refusals", "Calls gRPC refused because JPR_MAX_CONCURRENT_CALLS calls were in progress", registry=r,
        )
        self._conflicts = Counter("jpr_write_conflict_retries", "Write transactions run again after a lock or serialization conflict", registry=r)
        self._follow_errors = Counter("jpr_follow_errors", "Polls of the event log that failed, by view", ["view"], registry=r)
        self._passes = Counter("jpr_housekeeping_passes", "Expiry and retention passes run", ["task"], registry=r)
        self._done = Counter("jpr_housekeeping_records", "Listings recorded EXPIRED (expiry), subjects unlinked (retention)", ["task"], registry=r)
        self._housekeeping_errors = Counter("jpr_housekeeping_errors", "Background expiry or retention rounds that failed", registry=r)
        self._children: dict[tuple[str, str, str | None], _CallChildren] = {}
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def call(self, method: str, member: str | None, status: str, seconds: float, items: int, matched: int) -> None:
        """One call ended; `member` is the calling member's name (None for admins, probes and unknown callers)."""
        children = self._children.get((method, status, member)) or self._label(method, status, member)
        children.calls.inc()
        children.duration.observe(seconds)
        if children.items is not None:  # a served call whose elements are counted
            children.items.observe(items)
        if children.member_items is not None:
            children.member_items.inc(items)
        if children.matched is not None:
            children.matched.inc(matched)

    def _label(self, method: str, status: str, member: str | None) -> _CallChildren:
        """The children one kind of call bumps, looked up once: `.labels()` costs more than the bump itself.
        A refused call's elements were not served, so it gets no item children (nor their zero samples)."""
        counted = status == "OK" and method in COUNTED_METHODS
        children = _CallChildren(
            calls=self._calls.labels(method, status),
            duration=self._duration.labels(method),
            items=self._items.labels(method) if counted else None,
            member_items=self._member_items.labels(member, method) if counted and member is not None else None,
            matched=self._matched.labels(method) if counted and method in LOOKUP_METHODS else None,
        )
        self._children[(method, status, member)] = children  # bounded: methods served x statuses x members
        return children

    def rate_limited(self, member: str, kind: str) -> None:
        self._rate_refusals.labels(member, kind).inc()

    def stream_refused(self, limit: str) -> None:
        self._stream_refusals.labels(limit).inc()

    def concurrency_refused(self) -> None:
        self._concurrency_refusals.inc()

    def write_conflict_retried(self) -> None:
        self._conflicts.inc()

    def follow_failed(self, view: str) -> None:
        self._follow_errors.labels(view).inc()

    def housekeeping_pass(self, task: str, records: int) -> None:
        self._passes.labels(task).inc()
        self._done.labels(task).inc(records)

    def housekeeping_failed(self) -> None:
        self._housekeeping_errors.inc()

    def watch(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add gauges computed at each scrape from state the registry holds anyway."""
        self.registry.register(_Scraped(collect))

    def serve(self, address: str) -> int:
        """Serve /metrics over plain HTTP at `address` (HOST:PORT, port 0: a free one); the port bound."""
        host, _, port = address.rpartition(":")
        try:
            self._server, self._thread = start_http_server(int(port), host.strip("[]"), registry=self.registry)
        except OSError as error:
            raise OSError(
                f"cannot serve metrics on {address} (--metrics-listen, JPR_METRICS_LISTEN): {error.strerror or error}; "
                "choose a free port on one of this host's addresses"
            ) from None
        bound = int(self._server.server_port)
        log.info("metrics served over HTTP at %s (port %d)", address, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Scraped(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


def gauge(name: str, documentation: str, label: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    """One gauge family, a sample per label value."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value_label, value in values.items():
        family.add_metric([value_label], value)
    return family


def state_gauges(index: ReadView, views: Mapping[str, ReadView], streams: OpenStreams) -> Callable[[], Iterable[Metric]]:
    """The gauges read at scrape time: the lookup index's size, each view's lag, the streams open."""

    def collect() -> Iterable[Metric]:
        yield GaugeMetricFamily("jpr_lookup_index_subjects", "Subjects with open reports in the lookup index", value=index.subjects_indexed)
        yield GaugeMetricFamily("jpr_lookup_index_tokens", "Distinct tokens in the lookup index", value=index.tokens_indexed)
        yield gauge("jpr_index_lag_seconds", "Seconds since the view last caught up with the event log", "view",
                    {name: view.lag for name, view in views.items()})
        yield gauge("jpr_open_streams", "Long-lived calls open on this replica, by method", "method", streams.open_by_method())

    return collect
