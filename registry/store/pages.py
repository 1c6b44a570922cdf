"""Opaque page tokens for paginated admin listings."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from registry.domain.errors import InvalidArgument


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
