"""The append-only event log. Every state change adds its row in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from registry.store.models import EventRow


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    kind: str,
    report_id: str | None = None,
    subject_id: int | None = None,
    listing_id: int | None = None,
    **detail: Any,
) -> None:
    session.add(
        EventRow(
            occurred_at=at,
            actor=actor,
            kind=kind,
            report_id=report_id,
            subject_id=subject_id,
            listing_id=listing_id,
            detail=detail,
        )
    )
