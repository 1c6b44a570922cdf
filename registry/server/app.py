"""Assembling the registry server: storage, services, servicers, TLS, health, reflection."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc, log_pb2, log_pb2_grpc, registry_pb2, registry_pb2_grpc
from registry.crypto import pki
from registry.datadir import INDEX_SNAPSHOT, DataDir
from registry.domain.admin import AdminService
from registry.domain.changes import ChangeFeed
from registry.domain.errors import AlreadyExists
from registry.domain.feedback import FeedbackService, MatchRecorder
from registry.domain.flood import FloodGuard, FloodLimits
from registry.domain.imports import ImportService
from registry.domain.limits import Rate, RateLimiter
from registry.domain.lookups import LookupService
from registry.domain.reports import ReportService
from registry.domain.terms import Terms
from registry.domain.transparency import TransparencyService
from registry.domain.tokens import Tokenizer
from registry.server.access_log import AccessLog
from registry.server.auth import AuthInterceptor
from registry.server.capacity import saturation
from registry.server.checkpoints import Checkpointer
from registry.server.expiry import ExpiryRecorder
from registry.server.health import Health, LookupHealth
from registry.server.metrics import Metrics, state_gauges
from registry.server.servicers import AdminServicer, LOOKUPS, RegistryServicer, TOKENIZE
from registry.server.streams import StreamLimits
from registry.server.transparency import TransparencyLogServicer
from registry.settings import Settings
from registry.store import schema
from registry.store.access import AccessStore
from registry.store.appeals import AppealStore
from registry.store.buckets import BucketStore
from registry.store.certificates import CertificateStore
from registry.store.changes import ChangeStore
from registry.store.corrections import CorrectionStore
from registry.store.database import Database
from registry.store.events import EventStore
from registry.store.imports import ImportStore
from registry.store.listings import ListingStore
from registry.store.log import LogStore
from registry.store.members import MemberStore
from registry.store.opinions import OpinionStore
from registry.store.reports import ReportStore
from registry.store.subjects import SubjectStore
from registry.store.view import Follower, ReadView
from registry.store.witnesses import WitnessStore

log = logging.getLogger("jpr.server")

SERVICE_NAMES = (
    registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    log_pb2.DESCRIPTOR.services_by_name["TransparencyLog"].full_name,
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    reflection.SERVICE_NAME,
)

MESSAGE_LIMIT = 8 * 1024 * 1024


def keepalive_options(settings: Settings) -> list[tuple[str, int]]:
    """Keepalive, both ways. The server pings a connection idle for `keepalive_seconds`, calls in
    progress or not, and closes it when no answer comes within 20 s (a vanished client frees its
    resources). Clients may ping every `min_client_ping_seconds` at most, with or without calls;
    one that pings faster gets two strikes, then GOAWAY ("too_many_pings")."""
    return [
        ("grpc.keepalive_time_ms", int(settings.keepalive_seconds * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", int(settings.min_client_ping_seconds * 1000)),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def utc_now() -> datetime:
    return datetime.now(UTC)


def shared_seconds(clock: Callable[[], datetime], ticks: Callable[[], float]) -> Callable[[], float]:
    """Seconds that every replica's processes agree on (Unix time, as far as their clocks do), for the
    shared rate-limit buckets: wall time once, at start, then advanced by the monotonic `ticks`, so a
    clock stepped later (NTP) never refills a bucket early or stalls it."""
    offset = clock().timestamp() - ticks()
    return lambda: offset + ticks()


@dataclass
class RunningRegistry:
    server: grpc.Server
    port: int
    database: Database
    lookup_database: Database
    access_log: AccessLog
    expiry: ExpiryRecorder
    checkpoints: Checkpointer
    view: ReadView
    followers: list[Follower]
    matches: MatchRecorder
    flood: FloodGuard
    health: Health
    lookup_health: LookupHealth
    interceptor: AuthInterceptor
    metrics: Metrics
    limits: RateLimiter
    metrics_port: int | None = None  # the port serving metrics (None: `metrics_listen` is empty)
    keeps_snapshot: bool = False  # writes the lookup index's snapshot file at stop (index_snapshot.py)

    def stop(self, grace: float | None = 2.0) -> None:
        """Health answers NOT_SERVING at once (load balancers move away), new calls are refused,
        calls in flight get `grace` seconds to finish."""
        self.lookup_health.close()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.limits.close()  # after the last call: what is left of the leases goes back to the shared buckets
        self.metrics.close()
        self.interceptor.close()
        self.matches.close()
        self.flood.close()
        for follower in self.followers:
            follower.close()
        if self.keeps_snapshot:  # every change is applied by now: the next start reads it back
            self.view.write_snapshot_or_log()
        self.expiry.close()
        self.checkpoints.close()
        self.access_log.close()
        self.database.dispose()
        self.lookup_database.dispose()


def start(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now, ticks: Callable[[], float] = time.monotonic,
    share_port: bool = False, keeps_snapshot: bool = True,
) -> RunningRegistry:
    """Start serving on `settings.listen` (port 0 picks a free port) and return at once.

    `share_port`: bind with SO_REUSEPORT, as one of the processes of `jpr serve --processes N`
    (registry/server/processes.py), whose parent has checked that no other process holds the port.
    Otherwise a port another process holds is an error. `keeps_snapshot`: this process writes the
    lookup index's snapshot file (one process of several does; every one reads it at start)."""
    data = DataDir(settings.data_dir)
    data.require()
    database = Database(settings.effective_database_url, pool_size=settings.workers + 2)
    try:
        schema.require_current(database)
        return _serve(settings, data, database, clock, ticks, share_port, keeps_snapshot)
    except BaseException:
        database.dispose()
        raise


def _serve(
    settings: Settings, data: DataDir, database: Database, clock: Callable[[], datetime], ticks: Callable[[], float],
    share_port: bool, keeps_snapshot: bool,
) -> RunningRegistry:
    metrics = Metrics()
    database.on_conflict(metrics.write_conflict_retried)
    members = MemberStore(database)
    reports = ReportStore(database)
    lookup_database = database
    if settings.effective_lookup_database_url != settings.effective_database_url:
        # Lookups may read a replica: a few seconds behind the primary at worst.
        lookup_database = Database(settings.effective_lookup_database_url, pool_size=settings.workers + 2)
    registry_name = settings.registry_name or data.registry_name()
    transparency = TransparencyService(LogStore(database), WitnessStore(database), data.log_signer(), clock=clock)
    listings = ListingStore(database)
    report_service = ReportService(
        reports,
        members,
        registry_name=registry_name,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        clock=clock,
        listings=listings,
    )
    imports = ImportService(
        report_service, ImportStore(database), members, max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds), clock=clock
    )
    opinions = OpinionStore(database)
    corrections = CorrectionStore(database)
    access = AccessStore(database)
    certificates = CertificateStore(database)
    _register_local_certificates(data, certificates, clock)
    admin_service = AdminService(
        members,
        reports,
        listings,
        AppealStore(database),
        opinions,
        corrections,
        SubjectStore(database),
        access,
        certificates,
        EventStore(database),
        ca_certificate=data.ca_certificate(),
        terms=Terms(
            serious_days=settings.serious_term_days,
            severe_days=settings.severe_term_days,
            early_removal_after_days=settings.early_removal_after_days,
            notice_days=settings.notice_days,
        ),
        clock=clock,
    )
    snapshot = data.file(INDEX_SNAPSHOT) if settings.index_snapshot_seconds else None
    keeps_snapshot = keeps_snapshot and snapshot is not None
    view = members_view = ReadView(lookup_database, max_lag=settings.max_lag_seconds, snapshot=snapshot)
    views = [view]
    if lookup_database is not database:
        members_view = ReadView(database, max_lag=settings.max_lag_seconds, lookups=False)  # never a replica's lag
        views.append(members_view)
    followers = []
    view_names = {"lookups": view} | ({"members": members_view} if members_view is not view else {})
    for name, each in view_names.items():
        each.load()
        database.after_write(each.catch_up_after_write)  # a process sees its own changes at once
        # and other replicas' soon after
        followers.append(Follower(
            each, settings.follow_interval_seconds, failed=functools.partial(metrics.follow_failed, name),
            snapshot_every=settings.index_snapshot_seconds if keeps_snapshot and each is view else 0,
        ))
    access_log = AccessLog(access.add, clock)
    matches = MatchRecorder(opinions, clock)
    flood = FloodGuard(listings, FloodLimits(
        window_minutes=settings.flood_window_minutes, min_matches=settings.flood_min_matches,
        min_platforms=settings.flood_min_platforms, factor=settings.flood_factor, history_hours=settings.flood_history_hours,
    ), clock)
    limits = RateLimiter(
        {
            TOKENIZE: Rate(settings.tokenize_per_second, settings.tokenize_burst),
            LOOKUPS: Rate(settings.lookups_per_second, settings.lookups_burst),
        },
        shared_seconds(clock, ticks),
        refused=metrics.rate_limited,
        buckets=BucketStore(database),
    )
    interceptor = AuthInterceptor(
        members_view.member_status, members_view.certificate_revoked, members_view.certificate_admitted, access_log,
        StreamLimits(total=settings.max_streams, per_caller=settings.max_streams_per_caller), ticks=ticks, metrics=metrics,
    )
    metrics.watch(state_gauges(view, view_names, interceptor.streams))
    server = grpc.server(
        # Streams are capped at max_streams, so `workers` threads are always left for unary calls.
        ThreadPoolExecutor(max_workers=settings.workers + settings.max_streams, thread_name_prefix="jpr"),
        maximum_concurrent_rpcs=settings.max_concurrent_calls,
        interceptors=[interceptor],
        options=[
            ("grpc.max_receive_message_length", MESSAGE_LIMIT),
            ("grpc.max_send_message_length", MESSAGE_LIMIT),
            # Alone, a second registry on a taken port fails to start instead of sharing it.
            ("grpc.so_reuseport", int(share_port)),
            *keepalive_options(settings),
        ],
    )
    interceptor.saturated = saturation(server)
    tokenizer = Tokenizer(data.oprf_key())
    registry_pb2_grpc.add_RegistryServicer_to_server(
        RegistryServicer(tokenizer, report_service, LookupService(view, clock=clock),
                         ChangeFeed(ChangeStore(database), view),
                         FeedbackService(opinions, matches, clock=clock), matches, limits, flood),
        server,
    )
    admin_pb2_grpc.add_AdminServicer_to_server(AdminServicer(
        admin_service, registry_name, data.ca_certificate(), data.server_certificate(), tokenizer.public_key, access_log.flush,
        imports, transparency,
    ), server)
    log_pb2_grpc.add_TransparencyLogServicer_to_server(TransparencyLogServicer(transparency), server)
    health_servicer = Health(SERVICE_NAMES[:2])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(SERVICE_NAMES, server)
    try:
        metrics_port = metrics.serve(settings.metrics_listen) if settings.metrics_listen else None
        port = _listen(server, settings.listen, data.server_credentials())
    except OSError:
        closing = (metrics.close, interceptor.close, matches.close, flood.close, *(f.close for f in followers), access_log.close)
        for close in closing:
            close()
        raise
    server.start()
    lookup_health = LookupHealth(health_servicer, ("", SERVICE_NAMES[0]), lambda: all(each.fresh for each in views))
    log.info("registry %r listening at %s (port %d), database %s", registry_name, settings.listen, port, database.describe())
    expiry = ExpiryRecorder(
        listings, clock, settings.expiry_interval_seconds, corrections=corrections, retention_days=settings.retention_days,
        metrics=metrics,
    )
    checkpoints = Checkpointer(transparency, settings.checkpoint_interval_seconds, metrics=metrics)
    return RunningRegistry(
        server=server, port=port, database=database, lookup_database=lookup_database, access_log=access_log, expiry=expiry,
        checkpoints=checkpoints,
        view=view, followers=followers, matches=matches, flood=flood, health=health_servicer, lookup_health=lookup_health,
        interceptor=interceptor, metrics=metrics, limits=limits, metrics_port=metrics_port, keeps_snapshot=keeps_snapshot,
    )


def _register_local_certificates(data: DataDir, certificates: CertificateStore, clock: Callable[[], datetime]) -> None:
    """At start: register the certificates of the credentials `jpr init` left in the data directory (the first
    admin's, the probe's) unless registered already, so that a registry made before certificates were
    registered, or one just made, admits them. They were signed by this CA, so nothing new is trusted."""
    registered = {c.sha256 for c in certificates.list()}
    for pem in data.local_certificates():
        try:
            info = pki.inspect_client_cert(data.ca_certificate(), pem, clock())
        except pki.PkiError as error:
            log.warning("a credentials file in %s holds a certificate that is not registered: %s", data.path, error)
            continue
        if info.sha256 not in registered:
            try:
                certificates.register(info, actor="registry:start", now=clock())
            except AlreadyExists:  # another replica starting at the same moment
                pass
    if data.holds_ca_key():
        log.warning("%s holds the CA key (ca.key): move it to the issuer's machine (docs/operations.md); a replica needs none", data.path)


def _listen(server: grpc.Server, address: str, credentials: grpc.ServerCredentials) -> int:
    """The port bound at `address`; an address another process holds is an error naming it."""
    try:
        port = server.add_secure_port(address, credentials)
    except RuntimeError:  # gRPC >= 1.60 raises where older versions returned 0
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address}: the address is taken by another process, or not one of this host's")
    return port
