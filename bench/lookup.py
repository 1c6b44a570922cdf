"""Lookup throughput and latency of the registry, as ratios against a bare gRPC echo server.

    python bench/lookup.py [--subjects 100000 | --tokens N] [--seconds 10] [--workers 4] [--rounds 3] [--log-format text] [--no-check]

One run: seed a temporary SQLite registry, check the verdict of every probe,
then measure from a load-generator process of its own (the servers stay in
this one, so the two share the machine's cores as a client and a server would):

1. a bare gRPC echo server with the registry's server settings (thread pool,
   message limits, mutual TLS with the same certificates, no interceptor),
   sent the very LookupRequest bytes that the registry gets;
2. the registry's unary `Lookup`, at the same 32 calls in flight, logging
   every call as `jpr serve` does;
3. the registry's `LookupBatch`, 1,000 applicants of 2 tokens per call.

1, 2 and 3 alternate `--rounds` times (3 by default); each round's figures are
printed, and the targets are checked on the medians.

`--tokens N` seeds a registry whose lookup index holds about N tokens: every
subject has an open report (77 % accepted into an ACTIVE listing, 23 % under
review), envelopes are 64 random bytes instead of about 900, and before the
servers start the bench reads the index once under `tracemalloc` and prints its
heap per token, then times `jpr serve`'s start (the index load is most of it).
After the rounds the registry stops, which writes its lookup index snapshot
(DATA_DIR/index.snapshot), and the bench times a second start in a new process,
which reads it back, and checks every probe's verdict again.
Tokens are random 64-byte values, not OPRF outputs: the index only needs them
uniformly random, which OPRF outputs are, and Lookup takes tokens as they are.

Exits 1 when a target is missed (unless --no-check). Binds 127.0.0.1:0 only and
removes its temporary directory and processes on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

from jpr_client.api.jpr.v1 import registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.crypto import dsse
from jpr_client.model import IdentifierType, ListingStatus, ReportStatus
from registry.crypto import pki
from registry.datadir import INDEX_SNAPSHOT, DataDir
from registry.server.app import MESSAGE_LIMIT, start
from registry.server.log_format import handler
from registry.settings import Settings, load_settings
from registry.store import schema
from registry.store.certificates import CertificateStore
from registry.store import events
from registry.store.database import Database
from registry.store.view import ReadView
from registry.store.models import (
    ListingRow,
    MemberKeyRow,
    MemberRow,
    ReportRow,
    ReportTokenRow,
    SubjectRow,
    SubjectTokenRow,
)

UNARY_TARGET = 0.8  # registry Lookup calls/s over echo calls/s (issue 15)
BATCH_TARGET = 150_000  # LookupBatch tokens/s (issue 15)
IN_FLIGHT = 32
BATCH_IN_FLIGHT = 4
BATCH_SIZE = 1000
PROBES = 10_000
SEED_BLOCK = 200_000  # subjects per block of seeding statements
TOKENS_PER_SUBJECT = 7 / 3  # one strong token, one or two phones (two a third of the time)
ECHO_METHOD = "/bench.Echo/Echo"
LOOKUP_METHOD = "/jpr.v1.Registry/Lookup"
BATCH_METHOD = "/jpr.v1.Registry/LookupBatch"
MEMBER = "bench-platform"
PLATFORMS = tuple(f"platform-{i:02d}" for i in range(1, 9))
CATEGORIES = ("COUNTERFEIT_OR_SUBSTANDARD_GOODS", "FALSE_ADVERTISING", "FRAUD", "FAKE_SALES_OR_TRAFFIC", "TAX_EVASION")


# ---------------------------------------------------------------- seeding


@dataclass
class Population:
    """What was seeded, enough to build probes and to know each probe's right verdict."""

    strong: list[bytes] = field(default_factory=list)  # index: subject id - 1
    phones: list[list[bytes]] = field(default_factory=list)
    owners: dict[bytes, list[int]] = field(default_factory=dict)  # phone token -> subject ids
    listed: set[int] = field(default_factory=set)
    under_review: set[int] = field(default_factory=set)


def seed(database: Database, subjects: int, rng: random.Random, now: datetime, *, all_reported: bool = False) -> Population:
    """Subjects with 1 strong + 1-2 weak tokens; ~10% listed, ~3% under review, ~1% rejected
    (`all_reported`: 77% listed, 23% under review, so that every token is in the lookup index)."""
    population = Population()
    block = SEED_BLOCK if all_reported else subjects  # millions of rows are written a block at a time
    with _bulk_loading(database) as conn, _without_cyclic_gc():
        member_ids = _seed_members(conn, now)
        listed_so_far = 0
        for first in range(1, subjects + 1, block):
            these = range(first, min(first + block, subjects + 1))
            subject_rows, token_rows = [], []
            for subject in these:
                subject_rows.append({"id": subject, "created_at": now})
                token_rows.extend(_subject_tokens(population, subject, rng, now))
            _insert(conn, SubjectRow, subject_rows)
            _insert(conn, SubjectTokenRow, token_rows)
            listings, reports = _seed_reports(population, these, member_ids, rng, now, all_reported, listed_so_far)
            listed_so_far += len(listings)
            _insert(conn, ListingRow, listings)
            _insert(conn, ReportRow, reports)
            _seed_report_tokens(conn, population, reports)
    return population


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """No cycle collection while seeding: the rows are millions of dicts and none is in a cycle,
    but each full collection walks all of them, so seeding grew faster than its size."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def _bulk_loading(database: Database) -> Iterator[Any]:
    """One transaction for the whole seeding; on SQLite, one set up for a fresh file's bulk load.

    The registry's own connections keep a write-ahead log and a 32 MiB page cache. Seeding
    millions of random tokens that way spills the cache into the log over and over (a page
    rewritten goes to the log again each time), so ten million tokens were still a quarter
    done after 15 minutes. The seeding connection is its own, on the fresh file: no rollback
    journal (a failed seeding is thrown away with its directory), an 8 GiB page cache taken
    only as pages are used, and the secondary indexes of the big tables built after the rows
    instead of row by row (from the very SQL that made them, so the schema is unchanged). The
    file goes back to the write-ahead log before the registry opens it.
    """
    if database.engine.dialect.name != "sqlite":
        with database.engine.begin() as conn:
            yield conn
        return
    database.engine.dispose()  # the registry's own connections (the migrations') hold the file in WAL mode
    engine = create_engine(database.engine.url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -8000000", "temp_store = MEMORY"):
                conn.exec_driver_sql(f"PRAGMA {pragma}")
            big = ", ".join(f"'{t.__tablename__}'" for t in (SubjectTokenRow, ReportRow, ReportTokenRow, ListingRow))
            indexes = conn.exec_driver_sql(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({big})"
            ).all()
            conn.commit()  # SQLAlchemy began its transaction with the first statement; the file's one begins here
            with conn.begin():
                for name, _ in indexes:
                    conn.exec_driver_sql(f'DROP INDEX "{name}"')
                yield conn
                for _, sql in indexes:
                    conn.exec_driver_sql(sql)
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            conn.commit()
    finally:
        engine.dispose()


def _bind(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The column type's bind processor for the dialect, remembering its answers for timestamps
    and flags: a seeding binds millions of them and they take few distinct values."""
    bind = column_type.dialect_impl(dialect).bind_processor(dialect)
    try:
        underlying = getattr(column_type, "impl_instance", column_type)  # a TypeDecorator's own type says object
        repeats = bind is not None and underlying.python_type in (datetime, bool)
    except NotImplementedError:
        repeats = False
    if not repeats:
        return bind
    known: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        if value not in known:
            known[value] = bind(value)
        return known[value]

    return remembered


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """The rows through the driver's own executemany, each value bound as its column's type binds it.

    SQLAlchemy's executemany spent most of a seeding's time per value (129 s for 1M tokens);
    here each column's bind processor (`UTCDateTime`, SQLite's `DateTime` strings, JSON) is
    looked up once, the values are converted in one loop, and `exec_driver_sql` hands the
    statement SQLAlchemy compiled for the dialect to the driver as it is.
    """
    table = getattr(table, "__table__", table)
    if not rows:
        return
    names = list(rows[0])
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=names)
    order = list(compiled.positiontup) if compiled.positional else names
    binds = [(name, _bind(table.c[name].type, conn.dialect)) for name in order]
    for start_at in range(0, len(rows), 50_000):
        block = rows[start_at : start_at + 50_000]
        values = [tuple(row[name] if bind is None else bind(row[name]) for name, bind in binds) for row in block]
        params: Any = values if compiled.positional else [dict(zip(order, v)) for v in values]
        conn.exec_driver_sql(str(compiled), params)


def _seed_report_tokens(conn: Any, population: Population, reports: list[dict[str, Any]]) -> None:
    """The tokens each report asserted: all of its subject's. Verdicts follow these rows."""
    rows = []
    for report in reports:
        subject = report["subject_id"]
        rows.append({"report_id": report["report_id"], "token": population.strong[subject - 1], "id_type": "cn_ric", "strong": True})
        rows.extend({"report_id": report["report_id"], "token": p, "id_type": "phone", "strong": False} for p in population.phones[subject - 1])
    _insert(conn, ReportTokenRow, rows)


def _seed_members(conn: Any, now: datetime) -> dict[str, tuple[int, str]]:
    ids: dict[str, tuple[int, str]] = {}
    for number, name in enumerate((MEMBER, *PLATFORMS), start=1):
        key_id = dsse.key_id(dsse.public_key(dsse.generate_signing_key()))
        conn.execute(insert(MemberRow), {"id": number, "name": name, "status": "ACTIVE", "created_at": now})
        conn.execute(
            insert(MemberKeyRow),
            {"key_id": key_id, "member_id": number, "public_key": bytes(32), "valid_from": now, "revoked_at": None},
        )
        ids[name] = (number, key_id)
    return ids


def _subject_tokens(population: Population, subject: int, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    strong = rng.randbytes(64)
    phones = []
    for _ in range(rng.choice((1, 1, 2))):
        # ~2% of phone numbers are recycled: the token already belongs to someone else.
        recycled = population.phones and rng.random() < 0.02
        phone = rng.choice(population.phones[rng.randrange(len(population.phones))]) if recycled else rng.randbytes(64)
        if phone not in phones:
            phones.append(phone)
            population.owners.setdefault(phone, []).append(subject)
    population.strong.append(strong)
    population.phones.append(phones)
    row = {"subject_id": subject, "attached_at": now}
    return [
        {**row, "token": strong, "id_type": IdentifierType.CN_RIC.value, "strong": True},
        *({**row, "token": p, "id_type": IdentifierType.PHONE.value, "strong": False} for p in phones),
    ]


def _seed_reports(
    population: Population, subjects: range, members: dict[str, tuple[int, str]], rng: random.Random, now: datetime,
    all_reported: bool, listed_before: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    listings: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    envelope = 64 if all_reported else 900
    for subject in subjects:
        draw = rng.random() * (0.13 if all_reported else 1.0)
        if draw < 0.10:
            listing_id = listed_before + len(listings) + 1
            since = now - timedelta(days=rng.randrange(1, 700))
            listings.append(
                {"id": listing_id, "subject_id": subject, "status": ListingStatus.ACTIVE.value, "listed_from": since,
                 "listed_until": since + timedelta(days=1825), "created_at": since, "updated_at": since}
            )
            for platform in rng.sample(PLATFORMS, rng.choice((1, 1, 1, 2))):
                reports.append(_report(members[platform], subject, ReportStatus.ACCEPTED, listing_id, rng, since, envelope))
            population.listed.add(subject)
        elif draw < 0.13:
            reports.append(_report(members[rng.choice(PLATFORMS)], subject, ReportStatus.SUBMITTED, None, rng, now, envelope))
            population.under_review.add(subject)
        elif draw < 0.14:
            reports.append(_report(members[rng.choice(PLATFORMS)], subject, ReportStatus.REJECTED, None, rng, now))
    return listings, reports


def _report(
    member: tuple[int, str], subject: int, status: ReportStatus, listing_id: int | None, rng: random.Random, at: datetime,
    size: int = 900,
) -> dict[str, Any]:
    envelope = rng.randbytes(size)  # 900: about the size of a real DSSE envelope; never read by lookups
    return {
        "report_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "member_id": member[0], "subject_id": subject,
        "status": status.value, "role": "MERCHANT", "category": rng.choice(CATEGORIES),
        "severity": rng.choice(("SERIOUS", "SEVERE")), "created_at": at, "received_at": at, "key_id": member[1],
        "envelope": envelope, "envelope_sha256": rng.randbytes(32), "payload_sha256": rng.randbytes(32),
        "decided_at": None if status is ReportStatus.SUBMITTED else at, "decided_by": None, "decision_reason": None,
        "listing_id": listing_id,
    }


# ---------------------------------------------------------------- probes


@dataclass(frozen=True)
class Probe:
    strong: bytes
    phone: bytes
    expected: str  # CLEAR, REVIEW or DENY


def probes(population: Population, count: int, rng: random.Random) -> list[Probe]:
    """~90% new applicants (misses); ~10% known subjects: 5% listed, 1% under review, 4% clean."""
    listed, review = sorted(population.listed), sorted(population.under_review)
    made = []
    for _ in range(count):
        draw = rng.random()
        if draw >= 0.10:
            made.append(Probe(rng.randbytes(64), rng.randbytes(64), "CLEAR"))
            continue
        pool = listed if draw < 0.05 else review if draw < 0.06 else None
        subject = rng.choice(pool) if pool else rng.randrange(1, len(population.strong) + 1)
        strong, phone = population.strong[subject - 1], population.phones[subject - 1][0]
        made.append(Probe(strong, phone, _expected(population, subject, population.owners[phone])))
    return made


def _expected(population: Population, subject: int, phone_owners: Sequence[int]) -> str:
    if subject in population.listed:
        return "DENY"
    weak = [s for s in phone_owners if s != subject]
    if subject in population.under_review or any(s in population.listed or s in population.under_review for s in weak):
        return "REVIEW"
    return "CLEAR"


def _applicant(probe: Probe) -> registry_pb2.Applicant:
    return registry_pb2.Applicant(
        role=types_pb2.ROLE_MERCHANT,
        identifiers=[
            types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_CN_RIC, token=probe.strong),
            types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=probe.phone),
        ],
    )


def lookup_requests(made: Sequence[Probe]) -> list[bytes]:
    return [registry_pb2.LookupRequest(applicant=_applicant(p)).SerializeToString() for p in made]


def batch_requests(made: Sequence[Probe]) -> list[bytes]:
    return [
        registry_pb2.LookupBatchRequest(applicants=[_applicant(p) for p in made[i : i + BATCH_SIZE]]).SerializeToString()
        for i in range(0, len(made) - BATCH_SIZE + 1, BATCH_SIZE)
    ]


# ---------------------------------------------------------------- load generation (child process)


@dataclass(frozen=True)
class Tls:
    ca: bytes
    key: bytes
    cert: bytes


@dataclass(frozen=True)
class Load:
    port: int
    tls: Tls
    method: str
    requests: list[bytes]
    in_flight: int
    warmup: float
    seconds: float


@dataclass(frozen=True)
class Result:
    calls: int
    errors: int
    seconds: float
    latencies: list[float]
    client_cpu: float
    server_cpu: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average at the window's end: what else was running

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000 if len(self.latencies) > 1 else float("nan")


def generate_load(drive: Callable[[Any, Connection], Awaitable[Any]], load: Any, pipe: Connection) -> None:
    """Child process: run `drive(load, pipe)`, which says "begin" and "end" around its window; send its result."""
    pipe.send(asyncio.run(drive(load, pipe)))
    pipe.close()


async def _drive(load: Load, pipe: Connection) -> Result:
    credentials = grpc.ssl_channel_credentials(load.tls.ca, load.tls.key, load.tls.cert)
    options = [("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)]
    async with grpc.aio.secure_channel(f"127.0.0.1:{load.port}", credentials, options=options) as channel:
        # Bytes in, bytes out: the same client work for every server.
        call = channel.unary_unary(load.method, request_serializer=None, response_deserializer=None)
        begin = time.perf_counter() + load.warmup
        end = begin + load.seconds
        latencies: list[float] = []
        errors = [0]

        async def caller(first: int) -> None:
            n = first
            while (sent := time.perf_counter()) < end:
                try:
                    await call(load.requests[n % len(load.requests)], timeout=30)
                except grpc.aio.AioRpcError:
                    errors[0] += 1
                done = time.perf_counter()
                if begin <= done < end:
                    latencies.append(done - sent)
                n += load.in_flight

        async def window() -> float:
            await asyncio.sleep(load.warmup)
            pipe.send("begin")
            cpu = time.process_time()
            await asyncio.sleep(load.seconds)
            pipe.send("end")
            return time.process_time() - cpu

        timing = asyncio.create_task(window())
        await asyncio.gather(*(caller(i) for i in range(load.in_flight)))
        client_cpu = await timing
    return Result(calls=len(latencies), errors=errors[0], seconds=load.seconds, latencies=latencies, client_cpu=client_cpu)


def measure(load: Load) -> Result:
    """Keep `load.in_flight` calls going from a fresh process; calls completed in the window."""
    result, server_cpu, load_average = in_child(_drive, load, 60 + load.warmup + load.seconds)
    return replace(result, server_cpu=server_cpu, load=load_average)


def in_child(drive: Callable[[Any, Connection], Awaitable[Any]], load: Any, timeout: float) -> tuple[Any, float, float]:
    """`drive(load, pipe)` run in a fresh process, while this process (the server's) measures its own CPU
    between the child's "begin" and "end": (the child's result, server CPU seconds, 1-minute load average)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=generate_load, args=(drive, load, theirs), daemon=True)
    child.start()
    try:
        _expect(ours, "begin", timeout)
        cpu = time.process_time()
        _expect(ours, "end", timeout)
        server_cpu = time.process_time() - cpu
        load_average = os.getloadavg()[0]
        result = _receive(ours, timeout)
        child.join(10)
    finally:
        if child.is_alive():
            child.terminate()
            child.join(5)
    return result, server_cpu, load_average


def _receive(pipe: Connection, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError("the load generator stopped answering")
    return pipe.recv()


def _expect(pipe: Connection, word: str, timeout: float) -> None:
    got = _receive(pipe, timeout)
    if got != word:
        raise RuntimeError(f"load generator said {got!r}, expected {word!r}")


# ---------------------------------------------------------------- servers


def start_echo(data: DataDir, workers: int) -> tuple[grpc.Server, int]:
    """The registry's server settings without the registry: same pool, limits and TLS; no interceptor."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="echo"),
        options=[("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)],
    )
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)  # no (de)serializers: bytes
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Echo": echo}),))
    port = server.add_secure_port("127.0.0.1:0", data.server_credentials())
    server.start()
    return server, port


def member_tls(data: DataDir) -> Tls:
    key_pem, csr_pem = pki.make_csr(MEMBER, pki.ROLE_MEMBER)
    return Tls(ca=data.ca_certificate(), key=key_pem, cert=data.issuer().sign(csr_pem, MEMBER, pki.ROLE_MEMBER))


def check_verdicts(port: int, tls: Tls, made: Sequence[Probe]) -> dict[str, int]:
    """Every probe through the real stub: the bench measures right answers, not fast wrong ones."""
    credentials = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    options = [("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)]
    counts = {"CLEAR": 0, "REVIEW": 0, "DENY": 0}
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        for start_at in range(0, len(made), BATCH_SIZE):
            chunk = made[start_at : start_at + BATCH_SIZE]
            response = stub.LookupBatch(registry_pb2.LookupBatchRequest(applicants=[_applicant(p) for p in chunk]), timeout=60)
            for probe, result in zip(chunk, response.results, strict=True):
                got = registry_pb2.Verdict.Name(result.verdict).removeprefix("VERDICT_")
                if got != probe.expected:
                    raise AssertionError(f"probe expected {probe.expected}, the registry answered {got}")
                counts[got] += 1
    return counts


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Seeded:
    data: DataDir
    settings: Settings
    probes: list[Probe]
    tls: Tls


def prepare(options: argparse.Namespace, root: Path, database_url: str) -> Seeded:
    rng = random.Random(20240601)
    data = DataDir(root / "jpr-data")
    data.initialize(registry_name="jpr-bench", admin_name="admin", endpoint="127.0.0.1:0")
    flags = {
        "data_dir": data.path, "listen": "127.0.0.1:0", "workers": options.workers, "database_url": database_url or None,
        # The limits' code runs, but the load generator is one member far above any platform's onboarding rate.
        "lookups_per_second": 1e9, "lookups_burst": 10**9, "tokenize_per_second": 1e9, "tokenize_burst": 10**9,
        "log_format": options.log_format,
    }
    settings = load_settings(flags, environ={})
    database = Database(settings.effective_database_url)
    try:
        schema.upgrade(database)
        started = time.perf_counter()
        subjects = round(options.tokens / TOKENS_PER_SUBJECT) if options.tokens else options.subjects
        population = seed(database, subjects, rng, datetime.now(UTC), all_reported=bool(options.tokens))
        # One event, as every real registry has: the index snapshot of a restart is tied to the event log.
        database.write(lambda session: events.record(session, at=datetime.now(UTC), actor="bench", kind="member.created", member=MEMBER))
        tls = member_tls(data)  # the registry admits only the certificates it was given
        CertificateStore(database).register(pki.inspect_client_cert(tls.ca, tls.cert, datetime.now(UTC)), actor="bench", now=datetime.now(UTC))
        print(f"seeded {subjects:,} subjects ({len(population.listed):,} listed, "
              f"{len(population.under_review):,} under review) in {time.perf_counter() - started:.1f} s", flush=True)
        if options.tokens:
            index_heap(database)
    finally:
        database.dispose()
    return Seeded(data, settings, probes(population, PROBES, rng), tls)


def index_heap(database: Database) -> None:
    """The lookup index's heap per token: one `ReadView.load` under tracemalloc (slower than without)."""
    gc.collect()
    tracemalloc.start()
    view = ReadView(database)
    before = tracemalloc.get_traced_memory()[0]
    view.load()
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tokens = view.tokens_indexed
    print(f"lookup index: {tokens:,} tokens, {view.subjects_indexed:,} subjects; heap {(held - before) / 2**20:,.0f} MiB, "
          f"{(held - before) / tokens:.0f} B per token (peak while loading {(peak - before) / tokens:.0f} B per token)", flush=True)
    del view
    gc.collect()


def run(options: argparse.Namespace, root: Path, database_url: str = "") -> dict[str, list[Result]]:
    """Both servers up side by side; echo, Lookup and LookupBatch measured in alternation."""
    seeded = prepare(options, root, database_url)
    with logging_like_serve(root / "registry.log", seeded.settings.log_level, seeded.settings.log_format):
        return _measure_all(options, seeded)


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    import psycopg
    from sqlalchemy import make_url

    name = f"jpr_bench_{uuid.uuid4().hex[:10]}"
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _measure_all(options: argparse.Namespace, seeded: Seeded) -> dict[str, list[Result]]:
    unary, batches = lookup_requests(seeded.probes), batch_requests(seeded.probes)

    def load(port: int, method: str, requests: list[bytes], in_flight: int) -> Load:
        return Load(port, seeded.tls, method, requests, in_flight, options.warmup, options.seconds)

    results: dict[str, list[Result]] = {"echo": [], "Lookup": [], "LookupBatch": []}
    # The same thread pool as the registry's: its request threads plus the threads reserved for streams.
    echo, echo_port = start_echo(seeded.data, seeded.settings.workers + seeded.settings.max_streams)
    resident, started = _resident_mib(), time.perf_counter()
    registry = start(seeded.settings)
    try:
        print(f"lookup index: {registry.view.subjects_indexed:,} subjects, {registry.view.tokens_indexed:,} tokens; "
              f"ready {time.perf_counter() - started:.1f} s after start; "
              f"the registry's start added {_resident_mib() - resident:.0f} MiB resident", flush=True)
        counts = check_verdicts(registry.port, seeded.tls, seeded.probes)
        print(f"verdicts of {len(seeded.probes):,} probes as expected: {counts}", flush=True)
        for round_number in range(1, options.rounds + 1):
            print(f"round {round_number}/{options.rounds}: echo, Lookup, LookupBatch ...", flush=True)
            results["echo"].append(measure(load(echo_port, ECHO_METHOD, unary, IN_FLIGHT)))
            results["Lookup"].append(measure(load(registry.port, LOOKUP_METHOD, unary, IN_FLIGHT)))
            results["LookupBatch"].append(measure(load(registry.port, BATCH_METHOD, batches, BATCH_IN_FLIGHT)))
    finally:
        echo.stop(None).wait()
        registry.stop(grace=None)  # writes the index snapshot
    restart(seeded, counts)
    return results


def restart(seeded: Seeded, counts: dict[str, int]) -> None:
    """The registry started again in a new process, as after a restart (another `hash()` key), from its
    snapshot: how long until it serves, and every probe's verdict checked again."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_again, args=(seeded.settings, theirs), daemon=True)
    child.start()
    try:
        ready, tokens, port = _receive(ours, 600)
        print(f"restarted in a new process: {tokens:,} tokens ready {ready:.1f} s after start "
              f"(snapshot {seeded.data.file(INDEX_SNAPSHOT).stat().st_size / 2**20:,.0f} MiB)", flush=True)
        assert check_verdicts(port, seeded.tls, seeded.probes) == counts, "the restarted registry answered otherwise"
        print("verdicts after the restart as before", flush=True)
        ours.send("stop")
        child.join(60)
    finally:
        if child.is_alive():
            child.terminate()
            child.join(5)


def serve_again(settings: Settings, pipe: Connection) -> None:
    started = time.perf_counter()
    running = start(settings)
    pipe.send((time.perf_counter() - started, running.view.tokens_indexed, running.port))
    pipe.recv()
    running.stop(grace=None)


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def logging_like_serve(path: Path, level: str, log_format: str) -> Iterator[None]:
    """Every call logged as `jpr serve` does (one record per call, formatted off the request threads, written
    a batch at a time by the handler `jpr serve` uses), to a file instead of standard error."""
    stream = open(path, "a", encoding="utf-8")
    writer = handler(log_format, stream)
    root = logging.getLogger()
    root.addHandler(writer)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(writer)
        writer.close()
        stream.close()


def median(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def report(runs: dict[str, list[Result]], options: argparse.Namespace, backend: str = "sqlite") -> bool:
    """Print the table and the ratios; True when every target is met."""
    results = {name: median(found) for name, found in runs.items()}
    rounds = f", median of {options.rounds} rounds" if options.rounds > 1 else ""
    print(f"\n{backend}: {options.seconds:g} s per measurement{rounds}, {options.workers} server workers, {multiprocessing.cpu_count()} CPUs")
    print(f"{'server / method':<14} {'in flight':>9} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'server CPU/call':>16} {'client CPU':>11} {'errors':>6}")
    for name, in_flight in (("echo", IN_FLIGHT), ("Lookup", IN_FLIGHT), ("LookupBatch", BATCH_IN_FLIGHT)):
        r = results[name]
        per_call = f"{r.server_cpu / r.calls * 1000:.3f} ms" if r.calls else "-"
        print(f"{name:<14} {in_flight:>9} {r.rate:>9,.1f} {r.percentile(50):>8.2f} {r.percentile(99):>8.2f} "
              f"{per_call:>16} {r.client_cpu / r.seconds:>10.0%} {r.errors:>6}")
        if not r.calls:
            print(f"{'':<14} no call completed within the {options.seconds:g} s window")
    print_rounds(runs)
    ratio = statistics.median(unary_ratios(runs))
    applicants = results["LookupBatch"].rate * BATCH_SIZE
    tokens = applicants * 2
    unary_ok, batch_ok = ratio >= UNARY_TARGET, tokens >= BATCH_TARGET
    print(f"\nLookup / echo calls/s: {ratio:.2f}, the median of the rounds' (target >= {UNARY_TARGET}) {'ok' if unary_ok else 'MISSED'}")
    print(f"LookupBatch: {tokens:,.0f} tokens/s, {applicants:,.0f} applicants/s "
          f"(target >= {BATCH_TARGET:,} tokens/s: {tokens / BATCH_TARGET:.2f}x) {'ok' if batch_ok else 'MISSED'}")
    errors = sum(r.errors for found in runs.values() for r in found)
    if errors:
        print(f"{errors} calls failed: the figures are not valid")
    return unary_ok and batch_ok and errors == 0


def unary_ratios(runs: dict[str, list[Result]]) -> list[float]:
    """Each round's Lookup calls/s over the echo calls/s measured just before it, under the same load."""
    return [u.rate / e.rate if e.rate else 0.0 for e, u in zip(runs["echo"], runs["Lookup"], strict=True)]


def print_rounds(runs: dict[str, list[Result]]) -> None:
    """Every round's figures, not only the medians: on a shared machine the spread says how far to trust them."""
    rows = [
        ("echo calls/s", [f"{r.rate:,.0f}" for r in runs["echo"]]),
        ("Lookup calls/s", [f"{r.rate:,.0f}" for r in runs["Lookup"]]),
        ("Lookup / echo", [f"{ratio:.2f}" for ratio in unary_ratios(runs)]),
        ("Batch tokens/s", [f"{r.rate * BATCH_SIZE * 2:,.0f}" for r in runs["LookupBatch"]]),
        ("load e/L/B", [" / ".join(f"{r.load:.1f}" for r in found) for found in zip(*runs.values(), strict=True)]),
    ]
    print(f"\n{'by round':<16}" + "".join(f"{f'round {n}':>18}" for n in range(1, len(runs["echo"]) + 1)))
    for label, cells in rows:
        print(f"{label:<16}" + "".join(f"{cell:>18}" for cell in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects to seed (default 100000)")
    parser.add_argument("--tokens", type=int, default=0, help="instead of --subjects: seed about this many indexed tokens, "
                        "every subject reported; also prints the index's heap per token")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement (default 2)")
    parser.add_argument("--workers", type=int, default=Settings.workers, help=f"server threads, both servers (default: the registry's, {Settings.workers})")
    parser.add_argument("--rounds", type=int, default=3, help="alternate echo, Lookup and LookupBatch this many times, report medians (default 3)")
    parser.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="the access log's, as `jpr serve --log-format` (default text)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("JPR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                        help="server to create the PostgreSQL run's database on (env JPR_TEST_POSTGRES_URL)")
    options = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if options.backend == "both" else [options.backend]
    results: dict[str, dict[str, list[Result]]] = {}
    for backend in backends:
        print(f"== {backend}", flush=True)
        with tempfile.TemporaryDirectory(prefix="jpr-bench-") as root:
            if backend == "sqlite":
                results[backend] = run(options, Path(root))
            else:
                with postgres_database(options.postgres_url) as url:
                    results[backend] = run(options, Path(root), url)
    met = all([report(found, options, backend) for backend, found in results.items()])
    if len(results) == 2:
        met = compare_backends(results) and met
    return 0 if met or options.no_check else 1


def compare_backends(results: dict[str, dict[str, list[Result]]]) -> bool:
    """PostgreSQL should reach at least half of SQLite's Lookup calls/s and LookupBatch tokens/s."""
    lite, pg = ({name: median(found) for name, found in results[b].items()} for b in ("sqlite", "postgresql"))
    print(f"\n{'':<24}{'SQLite':>12}{'PostgreSQL':>12}{'ratio':>8}")
    ok = True
    for label, name, scale in (("Lookup calls/s", "Lookup", 1), ("LookupBatch tokens/s", "LookupBatch", BATCH_SIZE * 2)):
        a, b = lite[name].rate * scale, pg[name].rate * scale
        ratio = b / a if a else 0.0
        ok = ok and ratio >= 0.5
        print(f"{label:<24}{a:>12,.0f}{b:>12,.0f}{ratio:>8.2f}  (target >= 0.5) {'ok' if ratio >= 0.5 else 'MISSED'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
