"""The `jpr` parser and the value types of its flags: a bad value is a usage error naming the flag.

argparse prefixes an `ArgumentTypeError` with `argument --FLAG:`, so each message here only says
what the value must be, in the words of the flag's help.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn


class UsageError(Exception):
    """A command line that does not parse, raised instead of argparse's exit so that --json can report it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class CommandParser(argparse.ArgumentParser):
    """A parser that refuses what it does not know itself, with its own usage line, by raising UsageError.

    argparse hands a subcommand's unknown flags up to the top parser, which then prints
    `usage: jpr COMMAND ...`: no help to someone who mistyped a flag of `jpr admin reports list`.
    Subparsers are made with the parent's class, so every level of `jpr` refuses its own.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)

    # typeshed spells the overloads of parse_known_args out; this one keeps their arguments and results.
    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def count(text: str) -> int:
    """A whole number, 0 or more, in ASCII digits (the registry checks the range it allows)."""
    if not (text.isascii() and text.isdigit()):  # isdigit() alone takes '²', which int() refuses
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    if count(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def utc_time(text: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is UTC, as every time the registry gives."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time like 2027-01-31 or 2027-01-31T08:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hex_bytes(size: int, what: str) -> Callable[[str], bytes]:
    """`size` bytes written as 2 * size hex digits, e.g. a SHA-256 digest."""

    def parse(text: str) -> bytes:
        digits = text.strip()
        if len(digits) != 2 * size or not _is_hex(digits):
            raise argparse.ArgumentTypeError(f"must be {2 * size} hex digits ({what}), not {text!r}")
        return bytes.fromhex(digits)

    parse.__name__ = what  # argparse names the type in some of its messages
    return parse


def hex_prefix(least: int, most: int, what: str) -> Callable[[str], str]:
    """The first digits of a hex value, lower-cased: `least` to `most` of them."""

    def parse(text: str) -> str:
        digits = text.strip().lower()
        if not least <= len(digits) <= most or not _is_hex(digits):
            raise argparse.ArgumentTypeError(f"must be {least} to {most} hex digits ({what}), not {text!r}")
        return digits

    parse.__name__ = what
    return parse


def report_id(text: str) -> str:
    """A report id: a UUID, written in the canonical lower-case form that is signed into the report."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UUID like 0b6f4a2e-8c1d-4f5e-9a7b-3c2d1e0f9a8b") from None


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in digits)
