"""The shared rate-limit buckets (registry/domain/limits.py decides what they hold)."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from registry.domain.errors import Unavailable
from registry.domain.limits import Bucket, Step
from registry.store.database import Database
from registry.store.models import RateBucketRow

log = logging.getLogger("jpr.store")


class BucketStore:
    """One row per member and kind; a change locks it (SELECT ... FOR UPDATE), so the changes of every
    replica and process to one bucket happen one after another."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def change(self, member: str, kind: str, full: Bucket, step: Step) -> None:
        def work(conn: Connection) -> None:
            found = self._locked(conn, member, kind)
            if found is None:
                insert = sqlite_insert if self._db.is_sqlite else postgresql_insert
                conn.execute(insert(RateBucketRow).values(member=member, kind=kind, level=full.level, updated_at=full.updated_at)
                             .on_conflict_do_nothing())
                found = self._locked(conn, member, kind)  # ours, or the one another process just inserted
                assert found is not None
            changed = step(found)
            conn.execute(update(RateBucketRow).where(RateBucketRow.member == member, RateBucketRow.kind == kind)
                         .values(level=changed.level, updated_at=changed.updated_at))

        try:
            self._db.write_locked(work)
        except DBAPIError as error:
            log.warning("a rate-limit bucket could not be changed: %s", error.orig)
            raise Unavailable(
                "the registry cannot count this call against your rate limit: its database did not answer; retry"
            ) from error

    @staticmethod
    def _locked(conn: Connection, member: str, kind: str) -> Bucket | None:
        row = RateBucketRow
        statement = select(row.level, row.updated_at).where(row.member == member, row.kind == kind).with_for_update()
        found = conn.execute(statement).first()
        return None if found is None else Bucket(found.level, found.updated_at)
