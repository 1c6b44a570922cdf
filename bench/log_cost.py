"""What the transparency log costs: SubmitReport and AcceptReport with it, against the same code without it.

    python bench/log_cost.py [--reference COMMIT] [--backend sqlite|postgresql|both] [--rounds 3] [--seconds 8]

The reference is the registry as it was just before the log (`--reference`, default
the commit named below), checked out into a temporary git worktree. Each round runs,
alternating, in one fresh process per tree (the tree's own `registry` and `jpr_client`
first on sys.path, the same virtualenv):

1. `SubmitReport`: the tree's own `bench/submit.py` measurement (a registry on 127.0.0.1:0
   with mutual TLS, `--submitters` members each with one call in flight);
2. `AcceptReport`: `--accept-reports` reports submitted unmeasured, then `--acceptors`
   admin calls in flight accepting them one each, for `--seconds`.

Reported: each round's calls/s for both trees and the ratio log / reference; the
target (issue 16) is a ratio of at least 0.9 for both, median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEFORE_LOG = "3c6b026"  # the last commit without the transparency log
TARGET = 0.9


# ---------------------------------------------------------------- the parent: alternate trees


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reference", default=BEFORE_LOG, help=f"the commit to compare with (default {BEFORE_LOG}, just before the log)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measurement (default 8)")
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--acceptors", type=int, default=4, help="AcceptReport calls in flight (default 4)")
    parser.add_argument("--accept-reports", type=int, default=4000, help="reports submitted before the AcceptReport window (default 4000)")
    parser.add_argument("--postgres-url", default=os.environ.get("JPR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--child", nargs=2, metavar=("TREE", "WHAT"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        return _child(options, Path(options.child[0]), options.child[1])
    backends = ["sqlite", "postgresql"] if options.backend == "both" else [options.backend]
    with tempfile.TemporaryDirectory(prefix="jpr-log-cost-") as scratch:
        reference = Path(scratch) / "reference"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(reference), options.reference], check=True)
        try:
            met = all([_compare(options, backend, reference) for backend in backends])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(reference)], check=False)
    return 0 if met else 1


def _compare(options: argparse.Namespace, backend: str, reference: Path) -> bool:
    rows: dict[str, list[tuple[float, float]]] = {"submit": [], "accept": []}
    print(f"== {backend}: {options.rounds} rounds of {options.seconds:g} s, {os.cpu_count()} CPUs", flush=True)
    for number in range(1, options.rounds + 1):
        for what in rows:
            before = _run(options, reference, what, backend)
            after = _run(options, ROOT, what, backend)
            rows[what].append((after, before))
            print(f"round {number} {what:<6}: with the log {after:8,.0f}/s, without {before:8,.0f}/s, ratio {after / before:.3f}, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    met = True
    for what, pairs in rows.items():
        ratios = [a / b for a, b in pairs]
        ratio = statistics.median(ratios)
        ok = ratio >= TARGET
        met = met and ok
        print(f"{backend} {what}: median ratio {ratio:.3f} (rounds {', '.join(f'{r:.3f}' for r in ratios)}; target >= {TARGET}) "
              f"{'ok' if ok else 'MISSED'}; with {statistics.median(a for a, _ in pairs):,.0f}/s, "
              f"without {statistics.median(b for _, b in pairs):,.0f}/s")
    return met


def _run(options: argparse.Namespace, tree: Path, what: str, backend: str) -> float:
    """One measurement in a fresh process whose `registry`, `jpr_client` and bench modules are `tree`'s."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(tree / "clients" / "python"), str(tree / "bench")]))
    flags = ["--seconds", str(options.seconds), "--submitters", str(options.submitters), "--acceptors", str(options.acceptors),
             "--accept-reports", str(options.accept_reports), "--backend", backend, "--postgres-url", options.postgres_url]
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(tree), what, *flags],
                          env=env, cwd=tree, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"the {what} measurement in {tree} failed:\n{done.stdout}\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


# ---------------------------------------------------------------- the child: one measurement of one tree


def _child(options: argparse.Namespace, tree: Path, what: str) -> int:
    sys.path.insert(0, str(tree / "bench"))
    import registry

    if not Path(registry.__file__).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"measuring {tree} but imported {registry.__file__}")
    import submit  # the tree's bench/submit.py
    from lookup import postgres_database

    submit_options = argparse.Namespace(
        rounds=1, seconds=options.seconds, warmup=1.0, verify_seconds=0.5, submitters=options.submitters,
        members=options.submitters, max_rate=2500.0, workers=submit.Settings.workers,
    )
    with tempfile.TemporaryDirectory(prefix="jpr-log-cost-child-") as root:
        if options.backend == "sqlite":
            rate = _measure(what, submit_options, options, Path(root), "")
        else:
            with postgres_database(options.postgres_url) as url:
                rate = _measure(what, submit_options, options, Path(root), url)
    print(json.dumps({"rate": rate}))
    return 0


def _measure(what: str, submit_options: argparse.Namespace, options: argparse.Namespace, root: Path, url: str) -> float:
    import submit

    if what == "submit":
        (result,) = _quietly(submit.run, submit_options, root, url)
        return float(result.rate)
    return _accept_rate(submit, submit_options, options, root, url)


def _quietly(function: Any, *args: Any) -> Any:
    """The tree's bench prints its progress; this process's stdout carries only the result."""
    real = sys.stdout
    sys.stdout = sys.stderr
    try:
        return function(*args)
    finally:
        sys.stdout = real


def _accept_rate(submit: Any, submit_options: argparse.Namespace, options: argparse.Namespace, root: Path, url: str) -> float:
    import random

    from jpr_client.credentials import Credentials
    from registry.datadir import ADMIN_CREDENTIALS, DataDir
    from registry.server.app import start
    from registry.store import schema
    from registry.store.database import Database

    data = DataDir(root / "jpr-data")
    data.initialize(registry_name="jpr-bench", admin_name="admin", endpoint="127.0.0.1:0")
    settings = submit.settings_for(data, submit_options, url)
    database = Database(settings.effective_database_url)
    try:
        schema.upgrade(database)
    finally:
        database.dispose()
    with submit.logging_like_serve(root / "registry.log", settings.log_level, settings.log_format):
        running = start(settings)
        try:
            members = submit.add_members(running, data, options.submitters)
            envelopes = submit.Envelopes(members, "jpr-bench", random.Random(20240601))
            per = options.accept_reports // len(members) + 1
            base = _quietly(submit.measure, submit.Load(running.port, [m.tls for m in members], envelopes.batch(per), 0, 600))
            admin = Credentials.load(data.path / ADMIN_CREDENTIALS)
            tls = submit.Tls(ca=admin.ca_certificate.encode(), key=admin.private_key.encode(), cert=admin.certificate.encode())
            load = _Accepts(running.port, tls, base.acknowledged, options.acceptors, 1.0, options.seconds)
            result, _cpu, _load = submit.in_child(_drive_accepts, load, 120 + options.seconds)
        finally:
            running.stop(grace=None)
    if result["errors"]:
        raise RuntimeError(f"AcceptReport refused: {sorted(set(result['errors']))[:3]}")
    if result["ran_out"]:
        raise RuntimeError("the acceptors ran out of reports before the window ended: raise --accept-reports")
    return float(result["accepted"] / options.seconds)


class _Accepts:
    def __init__(self, port: int, tls: Any, report_ids: list[str], acceptors: int, warmup: float, seconds: float) -> None:
        self.port, self.tls, self.report_ids = port, tls, report_ids
        self.acceptors, self.warmup, self.seconds = acceptors, warmup, seconds


async def _drive_accepts(load: _Accepts, pipe: Connection) -> dict[str, Any]:
    import grpc

    from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc

    begin = time.perf_counter() + load.warmup
    end = begin + load.seconds
    queue = list(load.report_ids)
    counts = {"accepted": 0, "errors": [], "ran_out": False}

    async def acceptor() -> None:
        credentials = grpc.ssl_channel_credentials(load.tls.ca, load.tls.key, load.tls.cert)
        async with grpc.aio.secure_channel(f"127.0.0.1:{load.port}", credentials) as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            while time.perf_counter() < end:
                if not queue:
                    counts["ran_out"] = True
                    return
                report_id = queue.pop()
                try:
                    await stub.AcceptReport(admin_pb2.AcceptReportRequest(report_id=report_id), timeout=30)
                except grpc.aio.AioRpcError as error:
                    counts["errors"].append(f"{error.code().name}: {error.details()}")
                    continue
                if begin <= time.perf_counter() < end:
                    counts["accepted"] += 1

    running = asyncio.ensure_future(asyncio.gather(*(acceptor() for _ in range(load.acceptors))))
    await asyncio.sleep(load.warmup)
    pipe.send("begin")
    await asyncio.wait([running], timeout=load.seconds)
    pipe.send("end")
    await running
    return counts


if __name__ == "__main__":
    sys.exit(main())
