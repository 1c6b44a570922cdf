"""Tokenize elements/s per core: verifiable (VOPRF, with the batch proof) against base-mode OPRF.

    python bench/tokenization.py [--rounds 3] [--seconds 3] [--batch 1000 --batch 2]

Measures the registry's own work for one `Tokenize` call on one thread, in this
process: parse the serialized `TokenizeRequest`, evaluate, serialize the
`TokenizeResponse`. Two ways, alternating `--rounds` times in the same run:

- base: RFC 9497 mode 0x00 as the registry served it before proofs, one
  `BlindEvaluate` per element and no proof (the server's side of base mode does
  not depend on the context string, so this is exactly the old work);
- voprf: `Tokenizer.evaluate`, the registry's code path: one evaluation per
  element and one batched DLEQ proof per call (ComputeCompositesFast).

Figures are elements per CPU second (`time.process_time`), i.e. per core;
gRPC transport, TLS and interceptors are left out, which leaves the ratio at
its lowest (they cost both ways the same). Exits 1 when the median ratio of a
batch size is under 0.5 (unless --no-check).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from jpr_client.api.jpr.v1 import registry_pb2
from jpr_client.crypto import oprf
from registry.domain.tokens import Tokenizer

TARGET_RATIO = 0.5


def request_bytes(batch: int) -> bytes:
    blinded = [oprf.blind(oprf.token_input("phone", f"+86138{n:08d}"))[1] for n in range(batch)]
    return registry_pb2.TokenizeRequest(blinded_elements=blinded).SerializeToString()


def base_mode(key: bytes) -> Callable[[bytes], bytes]:
    def handle(data: bytes) -> bytes:
        request = registry_pb2.TokenizeRequest.FromString(data)
        evaluated = [oprf.blind_evaluate(key, element) for element in request.blinded_elements]
        return registry_pb2.TokenizeResponse(evaluated_elements=evaluated).SerializeToString()

    return handle


def voprf_mode(key: bytes) -> Callable[[bytes], bytes]:
    tokenizer = Tokenizer(key)

    def handle(data: bytes) -> bytes:
        evaluation = tokenizer.evaluate(registry_pb2.TokenizeRequest.FromString(data).blinded_elements)
        return registry_pb2.TokenizeResponse(evaluated_elements=evaluation.evaluated_elements, proof=evaluation.proof).SerializeToString()

    return handle


def elements_per_cpu_second(handle: Callable[[bytes], bytes], data: bytes, batch: int, seconds: float) -> float:
    calls, started = 0, time.process_time()
    while (spent := time.process_time() - started) < seconds:
        handle(data)
        calls += 1
    return calls * batch / spent


def run_batch(key: bytes, batch: int, options: argparse.Namespace) -> float:
    data = request_bytes(batch)
    base, voprf = base_mode(key), voprf_mode(key)
    base_rates, voprf_rates = [], []
    for _ in range(options.rounds):
        base_rates.append(elements_per_cpu_second(base, data, batch, options.seconds))
        voprf_rates.append(elements_per_cpu_second(voprf, data, batch, options.seconds))
    base_rate, voprf_rate = statistics.median(base_rates), statistics.median(voprf_rates)
    ratio = voprf_rate / base_rate
    rounds = ", ".join(f"{v / b:.2f}" for b, v in zip(base_rates, voprf_rates, strict=True))
    print(f"batch {batch:>5}: base {base_rate:>8,.0f} el/s  voprf {voprf_rate:>8,.0f} el/s  ratio {ratio:.2f}  (rounds: {rounds})")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    parser.add_argument("--batch", type=int, action="append", help="elements per call (repeatable; default 1000 and 2)")
    parser.add_argument("--no-check", action="store_true")
    options = parser.parse_args(argv)
    key = oprf.generate_key()
    print(f"pid {os.getpid()}, one thread, {options.rounds} rounds of {options.seconds} CPU s each way, medians")
    ratios = [run_batch(key, batch, options) for batch in options.batch or [1000, 2]]
    return 0 if options.no_check or min(ratios) >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
