"""The lookup index on disk between starts: a restart reads it back, then catches up with the event log.

Reading ten million tokens from the database takes about a minute of Python
(index_load.py); reading back the arrays the index is made of takes seconds.
A snapshot is only a shortcut: whatever is wrong with it, the registry reads
the database instead and says why in one log line.

A snapshot is tied to the history it saw by its *floor* (every event up to it
was applied, and none after it: on PostgreSQL, where events commit out of
sequence order, no snapshot is taken while one above the floor is applied), the
random salt of event `floor` (events.py gives every event one) and the number of
events up to it. At start the database must still hold that event with that
salt and that many events up to it: a database restored from an older backup
lacks the event or, once it has numbered new events again, holds another row
there; a backup taken while an earlier event was still committing lacks that
one; another registry's database holds another row there. The events after the
floor are then read like any catch-up: every subject they touch is read again
from the database, so an event applied twice gives the same index. The snapshot
is also tied to the code: the file format, a digest of the codes and record
layouts (LAYOUT), the registry's version and the schema's revision must match,
or the database is read.

The token table's slots are not kept: they follow the built-in `hash()`, whose
key is new in every process, so the reading process places every row again
(the table is read back in about 0.6 s a million tokens, placing included).

File layout (integers little-endian):

    MAGIC                        8 bytes
    header length                4 bytes
    header                       JSON: format, layout, version, revision, floor, salt,
                                 events, subjects, and each section's name and length,
                                 in file order
    sections                     the token table's arrays (token_table.py), then the
                                 record lengths (uint32 per subject id, 0: no record) and
                                 the records end to end
    SHA-256 of all of the above  32 bytes

The file is written to a temporary name beside it, flushed to disk and renamed
over the old one, so a crash leaves the old snapshot or the new one, never a
mix; it is readable by its owner only (it holds every indexed token, like the
database).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import struct
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

from jpr_client import __version__
from registry.store.lookup_index import CATEGORIES, LISTING, REPORT, ROLES, SEVERITIES
from registry.store.token_table import LISTING_BITS, MULTI, TOKEN_SIZE, TYPES, TokenTable

MAGIC = b"JPRIDX\x00\x01"
FORMAT = 1
_LENGTH = struct.Struct("<I")
_DIGEST = 32
# What the records and the table's codes mean to this code: a snapshot written by code that packs
# them otherwise (another commit of the same version) is not read.
LAYOUT = hashlib.sha256(repr((
    [t.value for t in TYPES], [r.value for r in ROLES], [c.value for c in CATEGORIES], [s.value for s in SEVERITIES],
    REPORT.format, LISTING.format, LISTING_BITS, TOKEN_SIZE, MULTI,
)).encode()).hexdigest()[:16]
_TABLE_SECTIONS = ("keys", "subject", "listing", "kind", "free", "multi")


class SnapshotError(ValueError):
    """A snapshot that cannot be used; the message says why, for the log line."""


@dataclass(frozen=True)
class Stamp:
    """What ties a snapshot to one database's history and to the code that wrote it."""

    floor: int  # every event up to this seq was applied, and none after it
    salt: str  # hex of event `floor`'s salt
    events: int  # how many events the database held up to `floor`
    revision: str  # the schema's migration revision
    version: str = __version__
    format: int = FORMAT
    layout: str = LAYOUT  # of the code that wrote it


@dataclass(frozen=True)
class Snapshot:
    stamp: Stamp
    table: TokenTable
    records: list[bytes | None]
    subjects: int


def write(path: Path, stamp: Stamp, table: dict[str, bytes], records: list[bytes | None], subjects: int) -> int:
    """Write a snapshot to `path` atomically (temporary file, fsync, rename); the bytes written.

    `table` is `TokenTable.sections()` and `records` a copy of the record list, both taken
    while no change ran: everything here works on copies, so the index may change meanwhile.
    """
    lengths = array("I", [len(record) if record else 0 for record in records])
    sections = table | {"lengths": lengths.tobytes(), "records": b"".join(filter(None, records))}
    header = json.dumps({
        "format": stamp.format, "layout": stamp.layout, "version": stamp.version, "revision": stamp.revision,
        "floor": stamp.floor, "salt": stamp.salt, "events": stamp.events, "subjects": subjects,
        "sections": [[name, len(data)] for name, data in sections.items()],
    }).encode()
    digest = hashlib.sha256()
    written = 0
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-way
        with contextlib.suppress(OSError):
            stale.unlink()
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            for chunk in (MAGIC, _LENGTH.pack(len(header)), header, *sections.values()):
                digest.update(chunk)
                out.write(chunk)
                written += len(chunk)
            out.write(digest.digest())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return written + _DIGEST


def read(path: Path) -> Snapshot:
    """The snapshot at `path`; SnapshotError saying why it cannot be used (missing, damaged, another format)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"there is no snapshot at {path}") from None
    except OSError as error:
        raise SnapshotError(f"cannot read {path}: {error.strerror}") from None
    if len(data) < len(MAGIC) + _LENGTH.size + _DIGEST or not data.startswith(MAGIC):
        raise SnapshotError(f"{path} is not a lookup index snapshot of this format")
    body = memoryview(data)[:-_DIGEST]
    if hashlib.sha256(body).digest() != data[-_DIGEST:]:
        raise SnapshotError(f"{path} is damaged (its SHA-256 does not match): it was cut short or changed")
    (size,) = _LENGTH.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    try:
        header = json.loads(bytes(body[start : start + size]))
        stamp = Stamp(floor=int(header["floor"]), salt=str(header["salt"]), events=int(header["events"]),
                      revision=str(header["revision"]), version=str(header["version"]), format=int(header["format"]),
                      layout=str(header["layout"]))
        if stamp.format != FORMAT:
            raise SnapshotError(f"{path} is of format {stamp.format}; this registry reads format {FORMAT}")
        if stamp.layout != LAYOUT:
            raise SnapshotError(f"{path} was written by code that packs records or codes types otherwise")
        if not 0 < stamp.floor < 2**62:
            raise ValueError(f"event {stamp.floor} is no event")
        places: dict[str, tuple[int, int]] = {}
        offset = start + size
        for name, length in header["sections"]:
            places[str(name)] = (offset, offset + int(length))
            offset += int(length)
        if offset != len(body) or set(places) != {*_TABLE_SECTIONS, "lengths", "records"}:
            raise ValueError("its sections do not fill the file")
        table = TokenTable.from_sections({name: body[slice(*places[name])] for name in _TABLE_SECTIONS})
        records = _records(body[slice(*places["lengths"])], data, places["records"])
        subjects = int(header["subjects"])
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, struct.error) as error:
        raise SnapshotError(f"{path} does not hold a lookup index: {error}") from None
    return Snapshot(stamp, table, records, subjects)


def _records(lengths_section: memoryview, data: bytes, place: tuple[int, int]) -> list[bytes | None]:
    """The record list back from its lengths and the records end to end at `place` in `data`."""
    lengths = array("I")
    lengths.frombytes(lengths_section)
    base, end = place
    ends = list(itertools.accumulate(lengths, initial=base))[1:]
    if (ends[-1] if ends else base) != end:
        raise ValueError("its records do not add up to their lengths")
    return [data[stop - length : stop] if length else None for length, stop in zip(lengths, ends)]
