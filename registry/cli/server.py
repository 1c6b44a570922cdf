"""`jpr init` and `jpr serve`: the registry process itself."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import TYPE_CHECKING

from grpc_health.v1 import health_pb2, health_pb2_grpc

from jpr_client.client import call, secure_channel
from jpr_client.credentials import Credentials
from registry.cli.output import add_json_flag, emit_json
from registry.settings import Settings, load_settings

if TYPE_CHECKING:
    from registry.datadir import DataDir

# The server, its storage (SQLAlchemy, Alembic) and its keys are imported by `init` and `serve`
# when they run: `jpr health` starts without them.


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    {"init": _init_flags, "health": _health_flags, "serve": _serve_flags}[command](parser)


def _init_flags(init: argparse.ArgumentParser) -> None:
    init.add_argument("--data-dir", help="where to create it (env JPR_DATA_DIR; default ./jpr-data)")
    init.add_argument("--name", help="the registry's name, signed into every report (default: random)")
    init.add_argument("--admin", default="admin", help="name of the first admin (default: admin)")
    init.add_argument("--database-url", help="SQLAlchemy URL (env JPR_DATABASE_URL; default: SQLite in the data directory)")
    init.add_argument("--endpoint", default="127.0.0.1:50051", help="address written into the admin credentials")
    init.add_argument("--no-database", action="store_true", help="prepare keys and certificates only; migrate the database later with `jpr db upgrade`")
    init.add_argument("--host", action="append", default=[], help="another DNS name or IP the server certificate is valid for (repeatable)")
    init.add_argument("--owner", type=owner, metavar="UID[:GID]",
                      help="hand what a replica reads to this user (the image's is 10001), modes unchanged; needs root")
    init.add_argument("--add-log-key", action="store_true",
                      help="only create the transparency log's key (log.key) in an existing data directory made before the log")
    add_json_flag(init)
    init.set_defaults(run=run_init)


def _health_flags(health: argparse.ArgumentParser) -> None:
    health.add_argument("--credentials", required=True, help="any credentials file; init writes probe.credentials.json for this")
    health.add_argument("--endpoint", help="override the credentials' endpoint")
    health.add_argument("--timeout", type=float, default=3.0)
    add_json_flag(health)
    health.set_defaults(run=run_health)


def _serve_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--data-dir", help="data directory (env JPR_DATA_DIR; default ./jpr-data)")
    serve.add_argument("--listen", help="address to listen on (env JPR_LISTEN; default 127.0.0.1:50051)")
    serve.add_argument("--metrics-listen", help="serve Prometheus metrics over plain HTTP at HOST:PORT (env JPR_METRICS_LISTEN; default: none)")
    serve.add_argument("--database-url", help="SQLAlchemy URL (env JPR_DATABASE_URL; default: SQLite in the data directory)")
    serve.add_argument("--lookup-database-url", help="read replica for lookups (env JPR_LOOKUP_DATABASE_URL; default: the database)")
    serve.add_argument("--workers", type=int, help="request threads (env JPR_WORKERS; default 4)")
    serve.add_argument("--processes", type=int,
                       help="processes serving the address, each with its own lookup index (env JPR_PROCESSES; default 0: one per core)")
    serve.add_argument("--max-streams", type=int, help="health watches, reflection and change watches open at once (env JPR_MAX_STREAMS; default 16)")
    serve.add_argument("--max-streams-per-caller", type=int, help="of those, what one caller may hold (env JPR_MAX_STREAMS_PER_CALLER; default 4)")
    serve.add_argument("--checkpoint-interval-seconds", type=float,
                       help="how often the transparency log signs a checkpoint while it grows (env JPR_CHECKPOINT_INTERVAL_SECONDS; default 1)")
    serve.add_argument("--log-format", help="text or json: one JSON object a line (env JPR_LOG_FORMAT; default text)")
    serve.set_defaults(run=run_serve)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({k: getattr(args, k, None) for k in (
        "data_dir", "listen", "database_url", "lookup_database_url", "metrics_listen", "workers", "processes", "max_streams", "max_streams_per_caller", "log_format",
        "checkpoint_interval_seconds",
    )})


def owner(text: str) -> tuple[int, int]:
    """`--owner UID[:GID]`: numeric ids, as in the image (names differ between the host and the container)."""
    uid, colon, gid = text.partition(":")
    if not (uid.isdigit() and (gid.isdigit() or not colon)):
        raise argparse.ArgumentTypeError(f"{text!r} is not UID or UID:GID in numbers (the image's user is 10001)")
    return int(uid), int(gid or uid)


def _check_can_hand_over(owner: tuple[int, int] | None) -> None:
    if owner and os.geteuid() != 0 and owner != (os.geteuid(), os.getegid()):
        raise PermissionError(f"jpr init --owner {owner[0]}:{owner[1]} gives files to another user: run it as root")


def run_init(args: argparse.Namespace) -> int:
    from registry.datadir import ADMIN_CREDENTIALS, ISSUER_DIR, DataDir, new_registry_name
    from registry.store import schema
    from registry.store.database import Database

    settings = _settings(args)
    data = DataDir(settings.data_dir)
    if args.add_log_key:
        return _add_log_key(data, args)
    _check_can_hand_over(args.owner)
    data.initialize(registry_name=args.name or new_registry_name(), admin_name=args.admin, endpoint=args.endpoint, hosts=args.host)
    if not args.no_database:
        database = Database(settings.effective_database_url)
        try:
            schema.upgrade(database)
        finally:
            database.dispose()
    if args.owner:
        data.hand_over(*args.owner)
    if args.json:
        emit_json({"registry_name": data.registry_name(), "data_dir": str(settings.data_dir), "admin_credentials": str(data.file(ADMIN_CREDENTIALS)),
                   "issuer_dir": str(data.file(ISSUER_DIR)), "database_migrated": not args.no_database,
                   "owner": f"{args.owner[0]}:{args.owner[1]}" if args.owner else None, "oprf_public_key": data.oprf_public_key(),
                   "log_public_key": data.log_public_key()})
        return 0
    if args.owner:
        print(f"handed what a replica reads to {args.owner[0]}:{args.owner[1]}; the CA key and the admin credentials stay yours")
    print(f"initialized registry {data.registry_name()!r} in {settings.data_dir}")
    print(f"admin credentials: {data.file(ADMIN_CREDENTIALS)}")
    print(f"for the replicas: {settings.data_dir} without {ISSUER_DIR}/ (oprf.key, log.key, server.key, server.pem, ca.pem, registry.toml)")
    print(f"for the issuer only: {data.file(ISSUER_DIR)} (ca.key): move it offline to the admin's machine; no replica needs it")
    print(f"OPRF public key (members pin it; publish it with the endpoint): {data.oprf_public_key().hex()}")
    print(f"log public key (members pin it; publish it with the endpoint): {data.log_public_key()}")
    return 0


def _add_log_key(data: DataDir, args: argparse.Namespace) -> int:
    from registry.datadir import LOG_KEY

    data.require()
    public_key = data.add_log_key()
    if args.owner:
        os.chown(data.file(LOG_KEY), *args.owner)
    if args.json:
        emit_json({"data_dir": str(data.path), "log_key": str(data.file(LOG_KEY)), "log_public_key": public_key})
        return 0
    print(f"created {data.file(LOG_KEY)}: copy it to every replica's data directory")
    print(f"log public key (members pin it; publish it with the endpoint): {public_key}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from registry.server import log_format
    from registry.server.app import start

    settings = _settings(args)
    log_format.configure(settings.log_level, settings.log_format)
    if settings.effective_processes > 1:
        return _serve_processes(settings)
    running = start(settings)
    print(f"serving on {_host(settings)}:{running.port}", flush=True)
    _signalled().wait()
    print("stopping: finishing calls in flight (5 s at most)", flush=True)
    running.stop(grace=5.0)
    print("stopped", flush=True)
    return 0


def _serve_processes(settings: Settings) -> int:
    from registry.server.processes import Supervisor

    _check_startable(settings)  # once, here, rather than N times in the processes' logs
    supervisor = Supervisor(settings)
    port = supervisor.start()
    print(f"serving on {_host(settings)}:{port} with {settings.effective_processes} processes", flush=True)
    code = supervisor.supervise(_signalled())
    print("stopping: finishing calls in flight (5 s at most)", flush=True)
    supervisor.stop()
    print("stopped", flush=True)
    return code


def _check_startable(settings: Settings) -> None:
    """The data directory and the database schema, as each process's start would check them."""
    from registry.datadir import DataDir
    from registry.store import schema
    from registry.store.database import Database

    DataDir(settings.data_dir).require()
    database = Database(settings.effective_database_url, pool_size=1)
    try:
        schema.require_current(database)
    finally:
        database.dispose()


def _host(settings: Settings) -> str:
    return settings.listen.rsplit(":", 1)[0]


def _signalled() -> threading.Event:
    """Set by the first SIGINT or SIGTERM."""
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    return stopped


def run_health(args: argparse.Namespace) -> int:
    credentials = Credentials.load(args.credentials)
    if args.endpoint:
        credentials = credentials.with_endpoint(args.endpoint)
    with secure_channel(credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = call("Check", stub.Check, health_pb2.HealthCheckRequest(), args.timeout)  # a probe: never retried
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    emit_json({"status": status}) if args.json else print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1
