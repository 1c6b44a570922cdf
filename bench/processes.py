"""`Lookup` calls/s of `jpr serve --processes 2` over `jpr serve --processes 1`, in the same run.

    python bench/processes.py [--subjects 100000] [--seconds 10] [--rounds 3] [--connections 16] [--workers 4]

Seeds a temporary SQLite registry as bench/lookup.py does, starts `jpr serve` twice on it
(the console script, as an operator runs it: one process, and two processes sharing one
port), checks every probe's verdict through each, then measures unary `Lookup` at 32 calls
in flight from a load-generator process of its own, one server after the other, `--rounds`
times. The load spreads over `--connections` connections (the kernel gives each connection
to one process: a client with one connection would use one process whatever N is). Prints
each round's calls/s and ratio, and the median ratio. Binds 127.0.0.1:0 only; removes its
temporary directory and stops its servers on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import grpc

from lookup import IN_FLIGHT, LOOKUP_METHOD, MESSAGE_LIMIT, Load, Seeded, check_verdicts, lookup_requests, prepare
from registry.settings import Settings

JPR = [sys.executable, str(Path(sys.executable).parent / "jpr")]
SERVING = re.compile(r"(?m)^serving on 127\.0\.0\.1:(\d+)")
# One member sends everything: far above any platform's rate, the limits' code still runs (as in bench/lookup.py).
UNLIMITED = {"JPR_LOOKUPS_PER_SECOND": "1e9", "JPR_LOOKUPS_BURST": str(10**9)}


@dataclass(frozen=True)
class Spread:
    load: Load
    connections: int


def generate_load(spread: Spread, pipe: Connection) -> None:
    """Child process: `in_flight` calls going over `connections` connections; calls completed in the window."""
    pipe.send(asyncio.run(_drive(spread)))
    pipe.close()


async def _drive(spread: Spread) -> int:
    load = spread.load
    credentials = grpc.ssl_channel_credentials(load.tls.ca, load.tls.key, load.tls.cert)
    # A subchannel pool of its own per channel: a connection of its own, not one shared by equal channels.
    options = [("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.secure_channel(f"127.0.0.1:{load.port}", credentials, options=options) for _ in range(spread.connections)]
    calls = [channel.unary_unary(load.method, request_serializer=None, response_deserializer=None) for channel in channels]
    begin = time.perf_counter() + load.warmup
    end = begin + load.seconds
    done = [0]

    async def caller(first: int) -> None:
        n, call = first, calls[first % len(calls)]
        while time.perf_counter() < end:
            await call(load.requests[n % len(load.requests)], timeout=30)
            if begin <= time.perf_counter() < end:
                done[0] += 1
            n += load.in_flight

    await asyncio.gather(*(caller(i) for i in range(load.in_flight)))
    for channel in channels:
        await channel.close()
    return done[0]


def measure(spread: Spread) -> float:
    """Calls/s of `spread`, generated from a fresh process."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=generate_load, args=(spread, theirs), daemon=True)
    child.start()
    theirs.close()
    try:
        if not ours.poll(60 + spread.load.warmup + spread.load.seconds):
            raise TimeoutError("the load generator stopped answering")
        calls: int = ours.recv()
        child.join(10)
    finally:
        if child.is_alive():
            child.terminate()
    return calls / spread.load.seconds


@contextmanager
def serving(seeded: Seeded, processes: int, workers: int, log: Path) -> Iterator[int]:
    """`jpr serve --processes N` on the seeded data directory; its port."""
    command = [*JPR, "serve", "--data-dir", str(seeded.data.path), "--listen", "127.0.0.1:0", "--processes", str(processes),
               "--workers", str(workers)]
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **UNLIMITED})
    try:
        yield _port(server, log)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def _port(server: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if found := SERVING.search(log.read_text(errors="replace")):
            return int(found.group(1))
        if server.poll() is not None:
            raise SystemExit(f"jpr serve exited {server.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise SystemExit(f"jpr serve did not serve within 120 s:\n{log.read_text(errors='replace')}")


def run(options: argparse.Namespace, root: Path) -> list[tuple[float, float]]:
    """(one process's calls/s, two processes') for each round."""
    seeded = prepare(options, root, "")
    requests = lookup_requests(seeded.probes)
    rounds = []
    with serving(seeded, 1, options.workers, root / "one.log") as one, serving(seeded, 2, options.workers, root / "two.log") as two:
        for port in (one, two):
            print(f"port {port}: verdicts of {len(seeded.probes):,} probes as expected: {check_verdicts(port, seeded.tls, seeded.probes)}",
                  flush=True)

        def rate(port: int) -> float:
            load = Load(port, seeded.tls, LOOKUP_METHOD, requests, IN_FLIGHT, options.warmup, options.seconds)
            return measure(Spread(load, options.connections))

        for number in range(1, options.rounds + 1):
            single, double = rate(one), rate(two)
            rounds.append((single, double))
            print(f"round {number}/{options.rounds}: 1 process {single:,.0f} calls/s, 2 processes {double:,.0f} calls/s, "
                  f"ratio {double / single:.2f}", flush=True)
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects to seed (default 100000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="measure both this many times in alternation (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="connections the 32 calls in flight spread over (default 16)")
    parser.add_argument("--workers", type=int, default=Settings.workers, help=f"server threads per process (default {Settings.workers})")
    options = parser.parse_args(argv)
    options.log_format = "text"  # what prepare() reads; the servers log as `jpr serve` does by default
    with tempfile.TemporaryDirectory(prefix="jpr-bench-processes-") as root:
        rounds = run(options, Path(root))
    ratios = [double / single for single, double in rounds]
    load = os.getloadavg()
    print(f"\n2 processes / 1 process, Lookup calls/s: rounds {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f} ({multiprocessing.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
