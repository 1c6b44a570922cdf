"""Transparency-log witnesses and the cosignatures they gave (verified before they get here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from jpr_client.quoting import quoted
from registry.domain.errors import AlreadyExists, NotFound
from registry.store import events
from registry.store.database import Database
from registry.store.models import LogCosignatureRow, WitnessRow


@dataclass(frozen=True)
class Witness:
    name: str
    verifier_key: str
    added_at: datetime
    removed_at: datetime | None = None

    @property
    def current(self) -> bool:
        return self.removed_at is None


class WitnessStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, name: str, verifier_key: str, *, reason: str, actor: str, now: datetime) -> Witness:
        """A witness again with the same key changes nothing; a removed one comes back with the key given."""

        def work(session: Session) -> Witness:
            row = session.get(WitnessRow, name)
            if row is not None and row.removed_at is None:
                if row.verifier_key == verifier_key:
                    return _witness(row)
                raise AlreadyExists(f"witness {quoted(name)} is current with another key; RemoveWitness first to change its key")
            if row is None:
                row = WitnessRow(name=name)
                session.add(row)
            row.verifier_key, row.added_at, row.removed_at = verifier_key, now, None
            session.flush()
            events.record(session, at=now, actor=actor, kind="witness.added", witness=name, verifier_key=verifier_key, reason=reason)
            return _witness(row)

        return self._db.write(work)

    def remove(self, name: str, *, reason: str, actor: str, now: datetime) -> Witness:
        def work(session: Session) -> Witness:
            row = session.get(WitnessRow, name)
            if row is None:
                raise NotFound(f"no witness {quoted(name)}; ListWitnesses shows them")
            if row.removed_at is None:
                row.removed_at = now
                session.flush()
                events.record(session, at=now, actor=actor, kind="witness.removed", witness=name, reason=reason)
            return _witness(row)

        return self._db.write(work)

    def every(self) -> list[Witness]:
        """Current and removed, by name."""
        with self._db.read() as conn:
            return [_witness(row) for row in conn.execute(select(WitnessRow).order_by(WitnessRow.name))]

    def current(self, name: str) -> Witness | None:
        with self._db.read() as conn:
            row = conn.execute(select(WitnessRow).where(WitnessRow.name == name, WitnessRow.removed_at.is_(None))).first()
        return None if row is None else _witness(row)

    def add_cosignature(self, size: int, witness: str, line: str, now: datetime) -> None:
        """Store a verified cosignature; the first one a witness gave for a size stays."""
        insert_ = sqlite_insert if self._db.is_sqlite else postgresql_insert
        statement = insert_(LogCosignatureRow).values(size=size, witness=witness, line=line, cosigned_at=now).on_conflict_do_nothing()
        self._db.write_locked(lambda conn: conn.execute(statement))

    def cosignatures(self, size: int) -> list[tuple[str, str]]:
        """(witness, line) of the checkpoint of `size`, by witness name."""
        query = select(LogCosignatureRow.witness, LogCosignatureRow.line).where(LogCosignatureRow.size == size).order_by(LogCosignatureRow.witness)
        with self._db.read() as conn:
            return [(row.witness, row.line) for row in conn.execute(query)]

    def newest_cosigned(self, witnesses: Sequence[str], at_least: int) -> int | None:
        """The largest checkpoint size that at least `at_least` of `witnesses` cosigned, or None."""
        query = (
            select(LogCosignatureRow.size).where(LogCosignatureRow.witness.in_(witnesses)).group_by(LogCosignatureRow.size)
            .having(func.count() >= at_least).order_by(LogCosignatureRow.size.desc()).limit(1)
        )
        with self._db.read() as conn:
            size: int | None = conn.execute(query).scalar()
        return size


def _witness(row: Any) -> Witness:
    """From a WitnessRow or a row of its columns."""
    return Witness(row.name, row.verifier_key, row.added_at, row.removed_at)
