"""Cold start of the platform commands: `jpr lookup`, `jpr report`, `jpr health`, `jpr --help`.

    python bench/cli_start.py [--rounds 3] [--runs 9]

Sets up a registry the way an operator does (`jpr init`, `jpr serve --listen
127.0.0.1:0`, `jpr admin members add --generate`) in a temporary directory, then
runs each command as a new process `--runs` times per round, the commands
alternating, and reports per round the median wall time from start to exit:

- `python -c pass`: the interpreter's own start, the reference of the same run;
- `jpr --help`, `jpr report --help`;
- `jpr health` and `jpr lookup` against the registry (a real mTLS call each:
  a lookup tokenizes its identifier first, so it makes two calls).

Also one run of each under `python -X importtime`: the time spent importing.
Exits 1 when the median over rounds of a jpr command is 0.5 s or more (the target
of issue 11), unless --no-check. The registry is stopped and the directory
removed on exit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from served import JPR, served

TARGET_SECONDS = 0.5


def commands(endpoint: str, platform: Path, probe: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "jpr --help": [*JPR, "--help"],
        "jpr report --help": [*JPR, "report", "--help"],
        "jpr health": [*JPR, "health", "--credentials", str(probe), "--endpoint", endpoint],
        "jpr lookup": [*JPR, "lookup", "--credentials", str(platform), "--endpoint", endpoint, "--role", "merchant", "--cn-ric", "11010519491231002X"],
    }


def wall_seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_seconds(argv: list[str]) -> float:
    """Seconds spent in imports by one run: the sum of the top-level cumulative times of -X importtime."""
    run = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], check=True, capture_output=True, text=True)
    top = [line.split("|") for line in run.stderr.splitlines() if line.startswith("import time:") and not line.split("|")[2].startswith("  ")]
    return sum(int(fields[1]) for fields in top if fields[1].strip().isdigit()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=9, help="runs of each command per round (median)")
    parser.add_argument("--no-check", action="store_true")
    options = parser.parse_args(argv)
    os.chdir(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="jpr-bench-cli-") as root, served(Path(root), "platform-a") as registry:
        runs = commands(registry.endpoint, registry.member, registry.probe)
        rounds: dict[str, list[float]] = {name: [] for name in runs}
        for number in range(1, options.rounds + 1):
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(options.runs):
                for name, command in runs.items():
                    times[name].append(wall_seconds(command))
            for name in runs:
                rounds[name].append(statistics.median(times[name]))
            print(f"round {number}: " + ", ".join(f"{name} {rounds[name][-1]:.3f} s" for name in runs), flush=True)
        imports = {name: import_seconds(command) for name, command in runs.items()}
    reference = statistics.median(rounds["python -c pass"])
    print(f"\n{'command':<20} {'median s':>9} {'rounds':>22} {'imports s':>10} {'- python':>9}")
    missed = []
    for name, figures in rounds.items():
        median = statistics.median(figures)
        print(f"{name:<20} {median:>9.3f} {' '.join(f'{f:.3f}' for f in figures):>22} {imports[name]:>10.3f} {median - reference:>9.3f}")
        if name.startswith("jpr") and median >= TARGET_SECONDS:
            missed.append(name)
    if missed:
        print(f"\nmissed the {TARGET_SECONDS} s target: {', '.join(missed)}")
    return 0 if options.no_check or not missed else 1


if __name__ == "__main__":
    sys.exit(main())
