"""External ids of subjects, listings and appeals ("S42", "L7", "A3") and the decimal numbers inside ids and cursors."""

from __future__ import annotations

from jpr_client.quoting import quoted
from registry.domain.errors import InvalidArgument

# Every id is a signed 64-bit column, and 18 digits always fit one: a longer number would
# overflow the database's integer, and past 4,300 digits int() itself refuses.
MAX_ID_DIGITS = 18


def subject_ref(subject_id: int) -> str:
    return f"S{subject_id}"


def listing_ref(listing_id: int | None) -> str:
    return "" if listing_id is None else f"L{listing_id}"


def appeal_ref(appeal_id: int | None) -> str:
    return "" if appeal_id is None else f"A{appeal_id}"


def decimal_id(digits: str) -> int | None:
    """The number that 1 to 18 ASCII digits spell, or None for anything else.

    `str.isdigit` and `int` also take '²', '١' and '１', which no id of this registry holds.
    """
    if 0 < len(digits) <= MAX_ID_DIGITS and digits.isascii() and digits.isdigit():
        return int(digits)
    return None


def parse_ref(prefix: str, ref: str) -> int:
    number = decimal_id(ref[len(prefix) :]) if ref.startswith(prefix) else None
    if number is None:
        kind = {"S": "a subject", "L": "a listing", "A": "an appeal"}[prefix]
        raise InvalidArgument(f"{quoted(ref)} is not {kind} id like {prefix}42")
    return number
