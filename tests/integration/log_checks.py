"""What must hold of the transparency log in any database the registry wrote, crashed or not."""

from __future__ import annotations

from sqlalchemy import select

from jpr_client.transparency import merkle
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.entry import commitment
from jpr_client.transparency.note import Verifier, open_note
from registry.store.database import Database
from registry.store.events import log_event
from registry.store.models import EventRow, LogCheckpointRow, LogLeafRow

_EVENT_COLUMNS = ("seq", "kind", "occurred_at", "actor", "report_id", "subject_id", "listing_id", "detail", "salt")


def check_log(database_url: str, verifier: Verifier) -> tuple[int, int]:
    """Every event has exactly one leaf committing to it, the indexes are 0..n-1, and every stored
    checkpoint verifies under the log key with the root rebuilt from the leaves. (leaves, checkpoints)."""
    db = Database(database_url)
    try:
        with db.read(repeatable=True) as conn:
            events = {row.seq: row for row in conn.execute(select(*(getattr(EventRow, c) for c in _EVENT_COLUMNS)))}
            leaves = conn.execute(select(LogLeafRow.leaf_index, LogLeafRow.seq, LogLeafRow.commitment).order_by(LogLeafRow.leaf_index)).all()
            checkpoints = conn.execute(select(LogCheckpointRow).order_by(LogCheckpointRow.size)).all()
    finally:
        db.dispose()
    assert [leaf.leaf_index for leaf in leaves] == list(range(len(leaves))), "leaf indexes with a gap"
    by_seq = [leaf.seq for leaf in leaves]
    assert len(set(by_seq)) == len(by_seq), "an event with two leaves"
    assert set(by_seq) == set(events), f"events without a leaf: {sorted(set(events) - set(by_seq))[:5]}, " \
                                       f"leaves without an event: {sorted(set(by_seq) - set(events))[:5]}"
    for leaf in leaves:
        row = events[leaf.seq]
        assert commitment(log_event(row.seq, row._mapping)) == leaf.commitment, f"leaf {leaf.leaf_index} does not commit to event {leaf.seq}"
    appender, roots = merkle.Appender(), {0: merkle.EMPTY_ROOT}
    for leaf in leaves:
        appender.append(merkle.leaf_hash(leaf.commitment))
        roots[appender.size] = appender.root()
    for stored in checkpoints:
        assert stored.size in roots, f"a checkpoint of size {stored.size} beyond the {len(leaves)} leaves"
        assert stored.root_hash == roots[stored.size], f"the checkpoint of size {stored.size} is not the root of the leaves"
        signed = Checkpoint.parse(open_note(stored.note, [verifier]).text)
        assert (signed.size, signed.root_hash) == (stored.size, stored.root_hash)
    return len(leaves), len(checkpoints)
