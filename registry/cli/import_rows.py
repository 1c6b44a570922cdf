"""Reading the association's existing lists (CSV) into normalized rows, for `jpr admin import`.

A row is personal data: nothing here ever puts a cell's value into a message.
A problem is reported by line number and column name only.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from jpr_client.identifiers import Identifier, InvalidIdentifier, normalize
from jpr_client.model import Category, IdentifierType, Role, Severity

E = TypeVar("E", bound=enum.Enum)

IDENTIFIER_COLUMNS = ("cn_ric", "cn_uscc", "passport", "phone", "email")
REQUIRED_COLUMNS = ("role", "category", "severity", "reason", "banned_by", "start_date", "end_date")
COLUMNS = (*REQUIRED_COLUMNS[:1], *IDENTIFIER_COLUMNS, "display_name", *REQUIRED_COLUMNS[1:])
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
MAX_REASON = 1800  # leaves room in the report's 2,000-character summary for who banned
MAX_BANNED_BY = 100
MAX_DISPLAY_NAME = 64

_SEPARATORS = re.compile(r"[;；]")
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")


@dataclass(frozen=True)
class ListedRow:
    """One punishment of the list, normalized; `listed_until` is the end of the end date (exclusive)."""

    line: int
    role: Role
    identifiers: tuple[Identifier, ...]
    display_name: str  # masked here
    category: Category
    severity: Severity
    reason: str
    banned_by: str
    listed_from: datetime
    listed_until: datetime


@dataclass(frozen=True)
class BadRow:
    line: int
    problem: str  # names the column and the problem, never the value


class RowError(ValueError):
    """A row that cannot be imported; the message never holds a cell's value."""


def decode(data: bytes, encoding: str, name: str) -> str:
    """The file's text: UTF-8 with or without a byte order mark by default."""
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        hint = "; pass --encoding gb18030 for a file saved in a Chinese locale" if codec == "utf-8-sig" else ""
        raise ValueError(f"{name}: line {line} is not valid {encoding}{hint}") from None
    except LookupError:
        raise ValueError(f"--encoding {encoding}: not an encoding Python knows (try utf-8 or gb18030)") from None


def read_rows(text: str, name: str) -> Iterator[ListedRow | BadRow]:
    """Each data row of the CSV text, parsed, or the reason it cannot be."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header(next(reader, []), name)
    line = reader.line_num + 1
    for cells in reader:
        if any(c.strip() for c in cells):
            try:
                yield parse_row(line, _cells(header, cells))
            except RowError as error:
                yield BadRow(line, str(error))
        line = reader.line_num + 1


def _header(cells: list[str], name: str) -> list[str]:
    header = [c.strip().lower() for c in cells]
    known = ", ".join(COLUMNS)
    for index, column in enumerate(header, start=1):
        if column not in COLUMNS:  # not quoted: a file without a header would show a row's value
            raise ValueError(f"{name}: header column {index} is not one of the columns {known} (see docs/import.md)")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{name}: the header has no column {', '.join(missing)} (columns: {known})")
    if not any(c in header for c in IDENTIFIER_COLUMNS):
        raise ValueError(f"{name}: the header names no identifier column ({', '.join(IDENTIFIER_COLUMNS)})")
    if len(set(header)) != len(header):
        raise ValueError(f"{name}: the header names a column twice")
    return header


def _cells(header: list[str], cells: list[str]) -> dict[str, str]:
    if len(cells) > len(header):
        raise RowError(f"{len(cells)} cells, the header has {len(header)} columns")
    return {column: value.strip() for column, value in zip(header, cells)}


def parse_row(line: int, cells: Mapping[str, str]) -> ListedRow:
    """One row's cells by column name, checked and normalized."""
    identifiers = _identifiers(cells)
    texts = {c: cells.get(c, "") for c in ("reason", "banned_by", "display_name")}
    _check_texts(texts, [v for c in IDENTIFIER_COLUMNS for v in _values(cells.get(c, ""))], identifiers)
    listed_from = _day(cells, "start_date")
    listed_until = _day(cells, "end_date") + timedelta(days=1)
    if listed_until <= listed_from:
        raise RowError("end_date: before start_date")
    return ListedRow(
        line=line,
        role=_choice(Role, cells, "role"),
        identifiers=identifiers,
        display_name=mask_name(texts["display_name"]),
        category=_choice(Category, cells, "category"),
        severity=_choice(Severity, cells, "severity"),
        reason=texts["reason"],
        banned_by=texts["banned_by"],
        listed_from=listed_from,
        listed_until=listed_until,
    )


def mask_name(name: str) -> str:
    """The name with every character but the first and the last masked: 张三明 -> 张*明, 张明 -> 张*.

    Masking a masked name changes nothing, so a list that is already masked keeps its names.
    """
    name = name.replace("＊", "*").strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _identifiers(cells: Mapping[str, str]) -> tuple[Identifier, ...]:
    found: dict[tuple[IdentifierType, str], Identifier] = {}
    for column in IDENTIFIER_COLUMNS:
        for value in _values(cells.get(column, "")):
            try:
                identifier = normalize(column, value)
            except InvalidIdentifier as error:
                raise RowError(f"{column}: {error.reason}") from None
            found.setdefault((identifier.type, identifier.value), identifier)  # the same one twice counts once
    if not any(i.type.strong for i in found.values()):
        raise RowError("no cn_ric, cn_uscc or passport: a listing needs at least one of them")
    return tuple(found.values())


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isdigit())


def _values(cell: str) -> list[str]:
    return [v.strip() for v in _SEPARATORS.split(cell) if v.strip()]


def _check_texts(texts: Mapping[str, str], raw_identifiers: list[str], identifiers: tuple[Identifier, ...]) -> None:
    """The free texts are signed into the report and shown to reviewers: none may carry the row's
    identifiers, however written (as in its cell, normalized, or its digits with other separators),
    nor the full name the display name masks."""
    spelled = {v.casefold() for v in (*raw_identifiers, *(i.value for i in identifiers))}
    digits = {d for v in spelled if len(d := _digits(v)) >= 8}
    digits |= {d[2:] for d in digits if d.startswith("86") and len(d) == 13}  # +86 mobile numbers, as written at home
    name = texts["display_name"]
    for column, text in texts.items():
        if column != "display_name" and not text:
            raise RowError(f"{column}: empty; say it without personal data")
        if column == "display_name":
            continue
        folded = text.casefold()
        if any(value in folded for value in spelled) or any(d in _digits(text) for d in digits):
            raise RowError(f"{column}: holds one of the row's identifiers; only the identifier columns may")
        if len(name) >= 2 and "*" not in name and name in text:
            raise RowError(f"{column}: holds the full name; only display_name may, and it is masked")
        if any(ord(c) < 32 and c not in "\n\t" for c in text):
            raise RowError(f"{column}: control characters are not allowed")
    for column, limit in (("reason", MAX_REASON), ("banned_by", MAX_BANNED_BY), ("display_name", MAX_DISPLAY_NAME)):
        if len(texts[column]) > limit:
            raise RowError(f"{column}: {len(texts[column])} characters, at most {limit}")


def _day(cells: Mapping[str, str], column: str) -> datetime:
    """The start of the cell's date in China Standard Time (the lists are kept in Chinese dates)."""
    match = _DATE.fullmatch(cells.get(column, ""))
    try:
        if match is None:
            raise ValueError
        year, month, day = (int(g) for g in match.groups())
        return datetime(year, month, day, tzinfo=CHINA_STANDARD_TIME)
    except ValueError:
        raise RowError(f"{column}: not a date like 2024-03-01") from None


def _choice(kind: type[E], cells: Mapping[str, str], column: str) -> E:
    value = cells.get(column, "").upper()
    if value not in kind.__members__:
        raise RowError(f"{column}: not one of {', '.join(m.lower() for m in kind.__members__)}")
    return kind[value]
