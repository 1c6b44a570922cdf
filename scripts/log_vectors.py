"""Write docs/vectors/log.json: JPR's own transparency-log vectors (docs/protocol.md section 11).

    python scripts/log_vectors.py            # rewrite the file
    python scripts/log_vectors.py --check    # exit 1 when the file differs from what the code computes

From fixed inputs (seven events with their salts, a test-only log key and witness key,
a fixed cosignature time) through every step a client in another language repeats:
the RFC 8785 canonical event, the commitment (leaf data), the RFC 9162 leaf hash, the
root at every size, inclusion proofs of every leaf, consistency proofs between every
pair of sizes, the C2SP checkpoint note the log key signs and a witness's
cosignature/v1 line. Ed25519 is deterministic, so the file is the same on every run.
tests/unit/sdk/test_log_vectors.py recomputes all of it from the inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jpr_client.transparency import merkle
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.cosignature import Cosigner
from jpr_client.transparency.entry import LogEvent, canonical_event, commitment
from jpr_client.transparency.note import Signer, sign_note

FILE = Path(__file__).resolve().parent.parent / "docs" / "vectors" / "log.json"
LOG_SEED = bytes(range(0x20, 0x40))  # TEST ONLY
WITNESS_SEED = bytes(range(0x40, 0x60))  # TEST ONLY
ORIGIN = "jpr.test"
WITNESS = "witness.jpr.test/w1"
COSIGNED_AT = 1_780_000_000

EVENTS: list[dict[str, Any]] = [
    {"seq": 1, "kind": "member.created", "actor": "admin:admin", "detail": {"member": "platform-a", "key_id": "3b2c9f0e1a7d5c44"}},
    {"seq": 2, "kind": "subject.created", "actor": "registry", "report_id": "3f1e2d4c-0b5a-4e6f-8a7b-9c0d1e2f3a4b", "subject_id": "S1",
     "detail": {}},
    {"seq": 3, "kind": "report.submitted", "actor": "member:platform-a", "report_id": "3f1e2d4c-0b5a-4e6f-8a7b-9c0d1e2f3a4b",
     "subject_id": "S1", "detail": {"envelope_sha256": "9a2f" * 16, "status": "SUBMITTED"}},
    {"seq": 4, "kind": "report.accepted", "actor": "admin:admin", "report_id": "3f1e2d4c-0b5a-4e6f-8a7b-9c0d1e2f3a4b",
     "subject_id": "S1", "listing_id": "L1",
     "detail": {"status": "ACCEPTED", "reason": "evidence reviewed: 40 refund-fraud orders", "term_days": 365,
                "term_ends_at": "2027-12-01T10:00:00+00:00"}},
    {"seq": 5, "kind": "listing.created", "actor": "admin:admin", "report_id": "3f1e2d4c-0b5a-4e6f-8a7b-9c0d1e2f3a4b",
     "subject_id": "S1", "listing_id": "L1",
     "detail": {"reason": "evidence reviewed: 40 refund-fraud orders", "status": "PENDING_NOTICE", "severity": "SERIOUS",
                "roles": ["MERCHANT"], "categories": ["FRAUD"], "listed_from": "2026-12-08T10:00:00+00:00",
                "listed_until": "2027-12-08T10:00:00+00:00", "reporting_platforms": 1,
                "report_ids": ["3f1e2d4c-0b5a-4e6f-8a7b-9c0d1e2f3a4b"]}},
    {"seq": 7, "kind": "appeal.filed", "actor": "admin:admin", "subject_id": "S1", "listing_id": "L1",
     "detail": {"appeal_id": "A1", "reason": "letter of 2026-12-03: the listed person says the account was stolen; 张三 ☎"}},
    {"seq": 6, "kind": "listing.opinion", "actor": "member:platform-b", "subject_id": "S1", "listing_id": "L1",
     "detail": {"opinion": "CONFIRMED", "reason": "", "weight": 0.5}},
]


def events() -> list[LogEvent]:
    made = []
    for number, fields in enumerate(EVENTS):
        made.append(LogEvent(
            seq=fields["seq"], kind=fields["kind"], actor=fields["actor"],
            occurred_at=datetime(2026, 12, 1, 10, 0, number, 123456 * number % 1_000_000, tzinfo=UTC),
            report_id=fields.get("report_id", ""), subject_id=fields.get("subject_id", ""), listing_id=fields.get("listing_id", ""),
            detail=fields["detail"], salt=bytes([number + 1]) * 32,
        ))
    return made


def vectors() -> dict[str, Any]:
    logged = events()
    leaves = [merkle.leaf_hash(commitment(e)) for e in logged]
    n = len(leaves)
    nodes: dict[tuple[int, int], bytes] = {}
    appender = merkle.Appender()
    for leaf in leaves:
        for level, index, value in appender.append(leaf):
            nodes[(level, index)] = value
    stored = lambda level, index: nodes[(level, index)]  # noqa: E731
    signer = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(LOG_SEED))
    body = Checkpoint(ORIGIN, n, merkle.root(leaves)).body()
    note = sign_note(body, [signer])
    cosigner = Cosigner(WITNESS, Ed25519PrivateKey.from_private_bytes(WITNESS_SEED))
    return {
        "about": "JPR's transparency-log vectors (docs/protocol.md section 11), written by scripts/log_vectors.py. Every value "
                 "follows from the inputs: the events with their salts, and the two keys. TEST KEYS ONLY: the seeds are public "
                 "test data for this file (bytes 0x20..0x3f and 0x40..0x5f); never use them for a log or a witness.",
        "events": [
            {"event": {"seq": e.seq, "kind": e.kind, "occurred_at": e.occurred_at.isoformat(), "actor": e.actor,
                       "report_id": e.report_id, "subject_id": e.subject_id, "listing_id": e.listing_id, "detail": dict(e.detail)},
             "salt": e.salt.hex(), "leaf_index": i, "canonical_event": canonical_event(e).decode(),
             "commitment": commitment(e).hex(), "leaf_hash": leaves[i].hex()}
            for i, e in enumerate(logged)
        ],
        "roots": {str(size): merkle.root(leaves[:size]).hex() for size in range(0, n + 1)},
        "inclusion_proofs": [
            {"leaf_index": i, "tree_size": size, "proof": [h.hex() for h in merkle.build_proof(merkle.inclusion_ranges(i, size), stored)]}
            for size in range(1, n + 1) for i in range(size)
        ],
        "consistency_proofs": [
            {"first": first, "second": second,
             "proof": [h.hex() for h in merkle.build_proof(merkle.consistency_ranges(first, second), stored)]}
            for second in range(1, n + 1) for first in range(1, second + 1)
        ],
        "log_key": {"seed_TEST_ONLY": LOG_SEED.hex(), "private_key_string_TEST_ONLY": signer.private_key_string(),
                    "verifier_key": signer.verifier().key_string(), "key_id": signer.key_hash.hex()},
        "checkpoint": {"origin": ORIGIN, "tree_size": n, "body": body, "note": note},
        "witness": {"seed_TEST_ONLY": WITNESS_SEED.hex(), "verifier_key": cosigner.verifier().key_string(), "timestamp": COSIGNED_AT,
                    "cosignature_line": cosigner.cosign(body, COSIGNED_AT)},
    }


def text() -> str:
    return json.dumps(vectors(), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    options = parser.parse_args(argv)
    if options.check:
        same = FILE.read_text(encoding="utf-8") == text()
        print(f"{FILE}: {'up to date' if same else 'differs from what the code computes'}")
        return 0 if same else 1
    FILE.write_text(text(), encoding="utf-8")
    print(f"wrote {FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
