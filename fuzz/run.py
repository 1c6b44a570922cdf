"""Run the checks of fuzz/targets.py under atheris (coverage-guided, libFuzzer).

    python fuzz/run.py TARGET [libFuzzer flags and corpus dirs]   one target, as libFuzzer is told
    python fuzz/run.py --all --seconds 30                          every target for 30 s (`make fuzz`)

With --all each target runs in its own process, growing a corpus in fuzz/corpus/<target>/
(kept between runs, not committed) from the seeds in fuzz/seeds/<target>/, and writing
any input that crashes it to fuzz/regressions/<target>/, where `make test` replays it.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

FUZZ = Path(__file__).resolve().parent
CORPUS = FUZZ / "corpus"
SEEDS = FUZZ / "seeds"
REGRESSIONS = FUZZ / "regressions"
# One input taking this long is a denial of service, and libFuzzer's default is 20 minutes.
UNIT_TIMEOUT_SECONDS = 10
INSTRUMENTED = ["fuzz", "jpr_client", "registry", "stdnum", "phonenumbers"]
# libFuzzer's last status line: "#52011  DONE   cov: 412 ft: 1630 corp: 190/4211b ... exec/s: 10402 ..."
_DONE = re.compile(r"^#(\d+)\s+DONE\b(.*)$", re.M)
_STAT = re.compile(r"(cov|corp|exec/s): (\d+)")
_PROGRESS = re.compile(r"^(INFO: Instrumenting |#\d+\s+(NEW|REDUCE|pulse)\b)")

# `python fuzz/run.py` puts fuzz/ on sys.path, not the repository root that holds the `fuzz` package.
sys.path.insert(0, str(FUZZ.parent))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--all"]:
        parser = argparse.ArgumentParser(prog="fuzz/run.py --all", description="Fuzz every target in turn.")
        parser.add_argument("--seconds", type=int, default=30, help="how long to fuzz each target (default 30)")
        return fuzz_all(parser.parse_args(args[1:]).seconds)
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    fuzz_one(args[0], args[1:])


def fuzz_one(name: str, libfuzzer_args: list[str]) -> NoReturn:
    """Fuzz one target in this process until libFuzzer stops; a crash exits non-zero."""
    import atheris  # type: ignore[import-untyped]

    # Only the code under test and the parsers it leans on: instrumenting the standard
    # library and grpc too takes half a minute before the first input runs.
    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz.targets import TARGETS
    if name not in TARGETS:
        sys.exit(f"unknown target {name!r}; the targets are {', '.join(TARGETS)}")
    atheris.Setup([sys.argv[0], *libfuzzer_args], TARGETS[name])
    atheris.Fuzz()
    sys.exit(0)  # atheris.Fuzz() does not return; this is for the type checker


def fuzz_all(seconds: int) -> int:
    """Each target for `seconds` in its own process; non-zero when any of them failed."""
    if importlib.util.find_spec("atheris") is None:
        print("atheris is not installed: run `make fuzz`, or pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    from fuzz.targets import TARGETS

    failed = [name for name in TARGETS if not _fuzz_in_subprocess(name, seconds)]
    if failed:
        print(f"\n{len(failed)} target(s) failed: {', '.join(failed)}.")
        print("Keep each new file under fuzz/regressions/ (make test replays it), fix the defect, commit both.")
        return 1
    print(f"\nall {len(TARGETS)} targets ran {seconds} s without a crash")
    return 0


def _fuzz_in_subprocess(name: str, seconds: int) -> bool:
    corpus, artifacts, seeds = CORPUS / name, REGRESSIONS / name, SEEDS / name
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    command = [
        sys.executable, str(Path(__file__).resolve()), name,
        f"-max_total_time={seconds}", f"-timeout={UNIT_TIMEOUT_SECONDS}", f"-artifact_prefix={artifacts}/",
        str(corpus), *([str(seeds)] if seeds.is_dir() else []),
    ]  # fmt: skip
    print(f"{name}: fuzzing for {seconds} s", flush=True)
    # libFuzzer logs every new input; show its output only when there is something to read.
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    found = sorted(set(artifacts.iterdir()) - before)
    if result.returncode == 0 and not found:
        print(f"{name}: ok, {_summary(result.stderr)}")
        return True
    print(_failure(result.stdout + result.stderr))
    print(f"{name}: FAILED (exit status {result.returncode})")
    for path in found:
        print(f"{name}: keep {path.relative_to(FUZZ.parent)}")
    return False


def _summary(log: str) -> str:
    """"52011 runs, cov 412, corp 190, exec/s 10402" from libFuzzer's final status line."""
    done = _DONE.findall(log)
    if not done:
        return "libFuzzer printed no final status"
    runs, rest = done[-1]
    return ", ".join([f"{runs} runs", *(f"{key} {value}" for key, value in _STAT.findall(rest))])


def _failure(log: str) -> str:
    """The log without its progress lines, which bury the traceback."""
    return "\n".join(line for line in log.splitlines() if not _PROGRESS.match(line))


if __name__ == "__main__":
    sys.exit(main())
