"""Opaque page tokens for paginated admin listings."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from registry.domain.errors import InvalidArgument
from registry.domain.model import Page
from registry.store.refs import decimal_id

T = TypeVar("T")


def encode_page_token(after: datetime, key: str) -> str:
    raw = json.dumps([after.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        stamp, key = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(stamp), str(key)
    except (ValueError, TypeError, RecursionError) as error:  # RecursionError: arrays nested a thousand deep
        raise InvalidArgument("page_token is not one this registry issued; pass the next_page_token you received") from error


def decode_id_page_token(token: str, method: str, prefix: str) -> int | None:
    """The row id the previous page of `method` ended at (None: the first page), from a token whose key is
    `prefix` and the id's digits; a token of another method is refused."""
    after = decode_page_token(token)
    if after is None:
        return None
    key = after[1]
    after_id = decimal_id(key[len(prefix) :]) if key.startswith(prefix) else None
    if after_id is None:
        raise InvalidArgument(f"page_token is not a {method} token; pass the next_page_token {method} returned")
    return after_id


def id_page(
    session: Session, query: Select[Any], page_size: int, view: Callable[[Any], T], after: Callable[[T], tuple[datetime, str]]
) -> Page[T]:
    """The first `page_size` rows of `query` (in id order, past the token's id) as `view` makes them, and
    when more follow, a token for the page after the last: `after` gives its time and key."""
    rows = session.scalars(query.limit(page_size + 1)).all()
    items = tuple(view(row) for row in rows[:page_size])
    more = len(rows) > page_size
    return Page(items=items, next_page_token=encode_page_token(*after(items[-1])) if more else "")
