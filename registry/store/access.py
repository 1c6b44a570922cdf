"""Access counts: calls per member, hour and method, added up from every replica's access log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from registry.domain.audit import LOOKUP_METHODS, TOKENIZE_METHOD, AccessTotals
from registry.store.database import Database
from registry.store.models import AccessCountRow, MemberRow

Count = tuple[str, datetime, str, int, int, int, int]  # member, hour, method, calls, refused, items, matched


class AccessStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, counts: Iterable[Count]) -> None:
        """Add counts to what is stored, in one transaction (replicas add to the same rows)."""
        rows = [
            {"member": m, "hour": h, "method": method, "calls": c, "refused": r, "items": i, "matched": x}
            for m, h, method, c, r, i, x in counts
        ]
        if not rows:
            return

        def work(session: Session) -> None:
            insert = sqlite_insert if self._db.is_sqlite else postgresql_insert
            statement = insert(AccessCountRow)
            table = AccessCountRow.__table__
            added = {name: table.c[name] + statement.excluded[name] for name in ("calls", "refused", "items", "matched")}
            session.execute(statement.on_conflict_do_update(index_elements=["member", "hour", "method"], set_=added), rows)

        self._db.write(work)

    def totals(self, since: datetime, until: datetime) -> list[AccessTotals]:
        """Each member's sums over the hours that start in [since, until)."""
        row = AccessCountRow
        lookups = row.method.in_(LOOKUP_METHODS)
        tokenize = row.method == TOKENIZE_METHOD
        query = (
            select(
                row.member,
                func.sum(row.calls),
                func.sum(row.refused),
                func.sum(case((lookups, row.calls), else_=0)),
                func.sum(case((lookups, row.items), else_=0)),
                func.sum(case((lookups, row.matched), else_=0)),
                func.sum(case((tokenize, row.items), else_=0)),
            )
            .where(row.hour >= since, row.hour < until)
            .group_by(row.member)
        )
        with self._db.read() as conn:
            return [AccessTotals(*(r[0], *(int(v or 0) for v in r[1:]))) for r in conn.execute(query)]

    def declared_volumes(self) -> dict[str, int | None]:
        with self._db.read() as conn:
            return {name: per_day for name, per_day in conn.execute(select(MemberRow.name, MemberRow.onboarding_per_day))}
