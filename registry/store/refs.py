"""External ids of subjects and listings: "S42", "L7"."""

from __future__ import annotations

from registry.domain.errors import InvalidArgument


def subject_ref(subject_id: int) -> str:
    return f"S{subject_id}"


def listing_ref(listing_id: int | None) -> str:
    return "" if listing_id is None else f"L{listing_id}"


def parse_ref(prefix: str, ref: str) -> int:
    digits = ref[len(prefix) :] if ref.startswith(prefix) else ""
    if not digits.isdigit():
        kind = {"S": "subject", "L": "listing", "A": "appeal"}[prefix]
        raise InvalidArgument(f"{ref!r} is not a {kind} id like {prefix}42")
    return int(digits)
