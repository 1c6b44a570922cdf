"""What must hold of the transparency log in any database the registry wrote, crashed or not."""

from __future__ import annotations

from jpr_client.transparency.note import Verifier
from registry.store import log_audit
from registry.store.database import Database


def check_log(database_url: str, verifier: Verifier) -> tuple[int, int]:
    """`jpr audit verify` finds nothing: every event has exactly one leaf committing to it, the indexes
    are 0..n-1, every stored checkpoint verifies under the log key with the root rebuilt from the
    events, and reports and listings agree with their events. (leaves, checkpoints)."""
    db = Database(database_url)
    try:
        report = log_audit.verify(db, verifier)
    finally:
        db.dispose()
    assert report.ok, "\n".join(str(finding) for finding in report.findings)
    return report.leaves, report.checkpoints
