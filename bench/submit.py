"""SubmitReport throughput and latency, against the raw Ed25519 verify rate of the same envelopes.

    python bench/submit.py [--backend sqlite|postgresql|both] [--rounds 3] [--seconds 10] [--submitters 4] [--members 4]

One run: a temporary registry (`registry.server.app.start`, mutual TLS on
127.0.0.1:0, every call logged as `jpr serve` logs it), `--members` members
created through the Admin API with real signing keys, a base of reports
submitted unmeasured (so new reports meet known subjects: 15% share a strong
token with an earlier report, 5% bridge two earlier subjects and merge them,
2% of phone tokens are recycled), then per round:

1. the raw verify rate: `dsse.verify` of this round's envelopes on one thread
   of this process, the reference (the one check no write path can skip);
2. `SubmitReport` from a load-generator process of its own, `--submitters`
   calls in flight (one per member, each awaiting its answer before the next),
   every envelope signed before the timing starts and sent once.

Afterwards every acknowledged report is read back from the database. Exits 1
when a target is missed (unless --no-check).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc, registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.credentials import Credentials
from jpr_client.crypto import dsse
from registry.cli.enrollment import generate_keys
from registry.crypto import pki
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.server.app import MESSAGE_LIMIT, RunningRegistry, start
from registry.settings import Settings, load_settings
from registry.store import schema
from registry.store.database import Database
from registry.store.models import ReportRow

from lookup import Tls, in_child, logging_like_serve, postgres_database  # bench/lookup.py

RATE_TARGET = 1000.0  # reports/s on SQLite
P99_TARGET_MS = 50.0
POSTGRES_SHARE = 0.5  # of SQLite's reports/s
METHOD = "/jpr.v1.Registry/SubmitReport"
BASE_REPORTS = 1000
OPTIONS = [("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)]


@dataclass(frozen=True)
class Member:
    name: str
    seed: bytes
    tls: Tls


# ---------------------------------------------------------------- envelopes


class Envelopes:
    """Signed reports whose tokens overlap the way a real registry's do."""

    def __init__(self, members: Sequence[Member], registry_name: str, rng: random.Random) -> None:
        self._members = members
        self._registry = registry_name
        self._rng = rng
        self._strong: list[bytes] = []
        self._phones: list[bytes] = []

    def make(self, member: Member) -> bytes:
        rng = self._rng
        draw = rng.random()
        strong = [rng.randbytes(64)]
        if self._strong and draw < 0.15:
            strong = [rng.choice(self._strong)]
        elif len(self._strong) > 1 and draw < 0.20:
            strong = rng.sample(self._strong, 2)
        self._strong.extend(s for s in strong if draw >= 0.15)
        phone = rng.choice(self._phones) if self._phones and rng.random() < 0.02 else rng.randbytes(64)
        self._phones.append(phone)
        identifiers = [types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_CN_RIC, token=s) for s in strong]
        identifiers.append(types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=phone))
        stamp = Timestamp(seconds=int(time.time()) - 60)
        payload = types_pb2.ReportPayload(
            report_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), reporter=member.name, registry=self._registry,
            created_at=stamp, role=types_pb2.ROLE_MERCHANT, identifiers=identifiers,
            category=types_pb2.CATEGORY_FRAUD, severity=types_pb2.SEVERITY_SERIOUS, platform_action="account banned",
            summary="refund fraud across 40 orders", evidence_sha256=rng.randbytes(32),
        )
        return dsse.sign_envelope(member.seed, dsse.REPORT_PAYLOAD_TYPE, payload.SerializeToString(deterministic=True))

    def batch(self, per_member: int) -> list[list[bytes]]:
        """`per_member` envelopes for each member, interleaved as they would arrive."""
        made: list[list[bytes]] = [[] for _ in self._members]
        for _ in range(per_member):
            for index, member in enumerate(self._members):
                made[index].append(self.make(member))
        return made


def verify_rate(envelopes: Sequence[bytes], keys: dict[str, bytes], seconds: float) -> float:
    """Ed25519 verifies of these envelopes per second on one thread (parsing excluded)."""
    parsed = [dsse.parse_envelope(e) for e in envelopes]
    done, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        for envelope in parsed[done % len(parsed) : done % len(parsed) + 200]:
            signature = envelope.signatures[0]
            if not dsse.verify(keys[signature.keyid], envelope.payload_type, envelope.payload, signature.sig):
                raise AssertionError("a bench envelope does not verify")
            done += 1
    return done / elapsed


# ---------------------------------------------------------------- load generation (child process)


@dataclass(frozen=True)
class Load:
    port: int
    tls: list[Tls]  # one per submitter
    envelopes: list[list[bytes]]  # one list per submitter, each sent once
    warmup: float
    seconds: float


@dataclass(frozen=True)
class Result:
    reports: int
    errors: list[str]
    ran_out: bool
    seconds: float
    latencies: list[float]
    acknowledged: list[str]  # report ids the registry answered with a receipt
    server_cpu: float = 0.0
    verify_rate: float = 0.0

    @property
    def rate(self) -> float:
        return self.reports / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000 if len(self.latencies) > 1 else float("nan")


async def _drive(load: Load, pipe: Connection) -> Result:
    begin = time.perf_counter() + load.warmup
    end = begin + load.seconds
    latencies: list[float] = []
    errors: list[str] = []
    acknowledged: list[str] = []
    ran_out = [False]

    async def submitter(tls: Tls, envelopes: list[bytes]) -> None:
        credentials = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
        async with grpc.aio.secure_channel(f"127.0.0.1:{load.port}", credentials, options=OPTIONS) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)
            for envelope in envelopes:
                sent = time.perf_counter()
                if sent >= end:
                    return
                try:
                    receipt = await stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=30)
                    acknowledged.append(receipt.report_id)
                except grpc.aio.AioRpcError as error:
                    errors.append(f"{error.code().name}: {error.details()}")
                done = time.perf_counter()
                if begin <= done < end:
                    latencies.append(done - sent)
            ran_out[0] = True

    submitting = asyncio.ensure_future(asyncio.gather(*(submitter(t, e) for t, e in zip(load.tls, load.envelopes, strict=True))))
    await asyncio.sleep(load.warmup)
    pipe.send("begin")
    await asyncio.wait([submitting], timeout=load.seconds)  # the window, or less when every envelope is sent
    pipe.send("end")
    await submitting
    return Result(len(latencies), errors, ran_out[0], load.seconds, latencies, acknowledged)


def measure(load: Load) -> Result:
    """Submit `load`'s envelopes from a fresh process; this process (the server's) measures its CPU in the window."""
    result, server_cpu, _ = in_child(_drive, load, 120 + load.warmup + load.seconds)
    return replace(result, server_cpu=server_cpu)


# ---------------------------------------------------------------- the registry


def add_members(registry: RunningRegistry, data: DataDir, count: int) -> list[Member]:
    """Members created as `jpr admin members add` creates them: a signing key and a certificate each."""
    admin = Credentials.load(data.path / ADMIN_CREDENTIALS)
    credentials = grpc.ssl_channel_credentials(admin.ca_certificate.encode(), admin.private_key.encode(), admin.certificate.encode())
    members = []
    with grpc.secure_channel(f"127.0.0.1:{registry.port}", credentials) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        for number in range(1, count + 1):
            name = f"platform-{number:02d}"
            keys = generate_keys(name)
            request = keys.request()
            certificate = data.issuer().sign(request.csr_pem.encode(), name, pki.ROLE_MEMBER)
            stub.CreateMember(admin_pb2.CreateMemberRequest(
                name=name, signing_public_key=request.signing_public_key, certificate_pem=certificate.decode()), timeout=30)
            tls = Tls(ca=data.ca_certificate(), key=keys.tls_key_pem.encode(), cert=certificate)
            members.append(Member(name, keys.signing_key, tls))
    return members


def settings_for(data: DataDir, options: argparse.Namespace, database_url: str) -> Settings:
    flags = {"data_dir": data.path, "listen": "127.0.0.1:0", "workers": options.workers, "database_url": database_url or None,
             "log_format": "text"}
    return load_settings(flags, environ={})


def stored(registry: RunningRegistry, report_ids: Sequence[str]) -> int:
    """How many of these report ids the database holds."""
    found = 0
    with registry.database.read() as conn:
        for start_at in range(0, len(report_ids), 500):
            chunk = list(report_ids[start_at : start_at + 500])
            found += conn.execute(select(func.count()).where(ReportRow.report_id.in_(chunk))).scalar_one()
    return found


def run(options: argparse.Namespace, root: Path, database_url: str = "") -> list[Result]:
    data = DataDir(root / "jpr-data")
    data.initialize(registry_name="jpr-bench", admin_name="admin", endpoint="127.0.0.1:0")
    settings = settings_for(data, options, database_url)
    database = Database(settings.effective_database_url)
    try:
        schema.upgrade(database)
    finally:
        database.dispose()
    with logging_like_serve(root / "registry.log", settings.log_level, settings.log_format):
        registry = start(settings)
        try:
            return _rounds(options, data, registry)
        finally:
            registry.stop(grace=None)


def _rounds(options: argparse.Namespace, data: DataDir, registry: RunningRegistry) -> list[Result]:
    members = add_members(registry, data, options.members)
    submitters = members[: options.submitters]
    envelopes = Envelopes(submitters, "jpr-bench", random.Random(20240601))
    keys = {dsse.key_id(dsse.public_key(m.seed)): dsse.public_key(m.seed) for m in submitters}
    base = measure(Load(registry.port, [m.tls for m in submitters], envelopes.batch(BASE_REPORTS // len(submitters)), 0, 600))
    print(f"{len(base.acknowledged):,} base reports submitted ({len(base.errors)} refused)", flush=True)
    results = []
    per_submitter = int(options.max_rate * (options.warmup + options.seconds) / len(submitters)) + 1
    for number in range(1, options.rounds + 1):
        batch = envelopes.batch(per_submitter)
        reference = verify_rate([e for each in batch for e in each[:500]], keys, options.verify_seconds)
        result = measure(Load(registry.port, [m.tls for m in submitters], batch, options.warmup, options.seconds))
        result = replace(result, verify_rate=reference)
        missing = len(result.acknowledged) - stored(registry, result.acknowledged)
        if missing:
            raise AssertionError(f"{missing} acknowledged reports are not in the database")
        print(f"round {number}/{options.rounds}: {result.rate:,.0f} reports/s, p99 {result.percentile(99):.1f} ms, "
              f"verify {reference:,.0f}/s; {len(result.acknowledged):,} acknowledged reports all stored", flush=True)
        results.append(result)
    return results


# ---------------------------------------------------------------- the report


def median(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def report(runs: list[Result], options: argparse.Namespace, backend: str) -> bool:
    print(f"\n{backend}: {options.seconds:g} s per round, {options.submitters} submitters, {options.workers} server workers, "
          f"{multiprocessing.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'round':<7} {'reports/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU/report':>11} {'verify/s':>9} {'ratio':>7} {'errors':>6}")
    for number, r in enumerate(runs, start=1):
        per = f"{r.server_cpu / r.reports * 1000:.2f} ms" if r.reports else "-"
        print(f"{number:<7} {r.rate:>10,.0f} {r.percentile(50):>8.1f} {r.percentile(99):>8.1f} {per:>11} "
              f"{r.verify_rate:>9,.0f} {r.rate / r.verify_rate:>7.3f} {len(r.errors):>6}")
        for error in sorted(set(r.errors))[:5]:
            print(f"        refused: {error}")
        if r.ran_out:
            print("        a submitter ran out of envelopes before the window ended: raise --max-rate")
    m = median(runs)
    rate_target = RATE_TARGET * (POSTGRES_SHARE if backend == "postgresql" else 1)
    rate_ok, p99_ok = m.rate >= rate_target, m.percentile(99) < P99_TARGET_MS
    print(f"median: {m.rate:,.0f} reports/s (target >= {rate_target:,.0f}: {m.rate / rate_target:.2f}x) {'ok' if rate_ok else 'MISSED'}; "
          f"p99 {m.percentile(99):.1f} ms (target < {P99_TARGET_MS:g}) {'ok' if p99_ok else 'MISSED'}")
    return rate_ok and p99_ok and not any(r.errors or r.ran_out for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=1, help="measurements, each with fresh envelopes; medians reported (default 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement (default 2)")
    parser.add_argument("--verify-seconds", type=float, default=2.0, help="length of each raw verify measurement (default 2)")
    parser.add_argument("--submitters", type=int, default=4, help="concurrent submitters, one member each (default 4)")
    parser.add_argument("--members", type=int, default=4, help="members in the registry, at least --submitters (default 4)")
    parser.add_argument("--max-rate", type=float, default=2500.0, help="envelopes signed per round: this rate over the round (default 2500/s)")
    parser.add_argument("--workers", type=int, default=Settings.workers, help=f"server threads (default the registry's, {Settings.workers})")
    parser.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    parser.add_argument("--postgres-url", default=os.environ.get("JPR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                        help="server to create the PostgreSQL run's database on (env JPR_TEST_POSTGRES_URL)")
    options = parser.parse_args(argv)
    options.members = max(options.members, options.submitters)
    backends = ["sqlite", "postgresql"] if options.backend == "both" else [options.backend]
    results: dict[str, list[Result]] = {}
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
        share = median(results["postgresql"]).rate / median(results["sqlite"]).rate
        print(f"\nPostgreSQL / SQLite reports/s: {share:.2f} (target >= {POSTGRES_SHARE}) {'ok' if share >= POSTGRES_SHARE else 'MISSED'}")
        met = met and share >= POSTGRES_SHARE
    return 0 if met or options.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
