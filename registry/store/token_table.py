"""The lookup index's token table: each indexed token, and the reports it was found in, in flat arrays.

Ten million tokens held as Python objects (a bytes object, a set and a
dataclass per token) take about 12 GiB; here a token costs its 64 bytes, nine
bytes of hit and about ten of hash slots. Every token has one *row*:

    keys      bytearray   the token, TOKEN_SIZE bytes per row
    subject   array('i')  the subject whose report holds it
    listing   array('i')  the listing that report was accepted into, 0 while under review
    kind      bytearray   the identifier type declared by the report (an index in TYPES),
                          MULTI when the token has more than one hit (see `multi`)

and a slot in an open-addressing table (linear probing) of row numbers, keyed
by the built-in `hash()` of the token: keyed SipHash, so tokens a member chose
cannot crowd one run of slots. The rare token with two hits or more (a phone
recycled between two subjects, a report under review beside an accepted one)
keeps a frozenset of hits in `multi`. Rows are reused after removal.

One writer at a time; readers take no lock. A reader may see a half-done
change, so the caller (ReadView) brackets every change with a sequence counter
and readers retry (a seqlock); this class only promises that every index a
reader can meet stays within its arrays.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

from jpr_client.model import IdentifierType
from registry.domain.verdict import Hit

TOKEN_SIZE = 64
TYPES = tuple(IdentifierType)
CODE = {t: code for code, t in enumerate(TYPES)}
MULTI = 255
LISTING_BITS = 32  # `add_reported`'s report places: subject << LISTING_BITS | listing
_EMPTY, _DELETED = -1, -2
_MAX_LOAD = 0.6  # of slots in use or deleted; past it the slots are rebuilt
_GROWN_LOAD = 0.3  # after a rebuild: room to grow before the next one
_LOADED_LOAD = 0.5  # sized for a known count (the load at start, whose count of report tokens is an upper bound)
_MIN_SLOTS = 16
_MULTI_HEAD = struct.Struct("<iI")  # a snapshot's shared token: its row, how many hits
_MULTI_HIT = struct.Struct("<iBi")  # subject, type code, listing (0: under review)

Report = TypeVar("Report", bound=Hashable)


class TokenTable:
    def __init__(self, expected: int = 0) -> None:
        self._keys = bytearray()
        self._subject = array("i")
        self._listing = array("i")
        self._kind = bytearray()
        self._free = array("i")
        self._multi: dict[int, frozenset[Hit]] = {}
        self._used = 0  # slots holding a row
        self._deleted = 0
        self._slots = _new_slots(_capacity_for(expected, _LOADED_LOAD))

    def __len__(self) -> int:
        return self._used

    def row(self, token: bytes) -> int:
        """The token's row, or -1."""
        slots, keys = self._slots, self._keys
        mask = len(slots) - 1
        i = hash(token) & mask
        while (r := slots[i]) != _EMPTY:
            if r >= 0 and keys.startswith(token, r * TOKEN_SIZE, r * TOKEN_SIZE + TOKEN_SIZE):
                return r
            i = (i + 1) & mask
        return -1

    def found(self, tokens: Iterable[bytes]) -> dict[bytes, frozenset[Hit]]:
        """The hits of each of these tokens the table holds (`row` then `hits`, in one loop for a batch)."""
        slots, keys, kinds, subjects, listings, multi = self._slots, self._keys, self._kind, self._subject, self._listing, self._multi
        mask = len(slots) - 1
        found: dict[bytes, frozenset[Hit]] = {}
        for token in tokens:
            i = hash(token) & mask
            while (r := slots[i]) != _EMPTY:
                if r >= 0 and keys.startswith(token, r * TOKEN_SIZE, r * TOKEN_SIZE + TOKEN_SIZE):
                    kind = kinds[r]
                    if kind != MULTI:
                        found[token] = frozenset((Hit(subjects[r], TYPES[kind], listings[r] or None),))
                    elif shared := multi.get(r):
                        found[token] = shared
                    break
                i = (i + 1) & mask
        return found

    def hits(self, row: int) -> frozenset[Hit]:
        kind = self._kind[row]
        if kind == MULTI:
            return self._multi.get(row, frozenset())
        listing = self._listing[row]
        return frozenset((Hit(subject=self._subject[row], type=TYPES[kind], listing=listing or None),))

    def subjects(self, row: int) -> frozenset[int]:
        if self._kind[row] == MULTI:
            return frozenset(hit.subject for hit in self._multi.get(row, ()))
        return frozenset((self._subject[row],))

    def add(self, token: bytes, hit: Hit) -> int:
        """Record that `token` has `hit` (as well as any it had); its row."""
        row = self.row(token)
        if row < 0:
            return self._insert(token, hit.subject, CODE[hit.type], hit.listing or 0)
        if self._kind[row] == MULTI:
            self._multi[row] = self._multi[row] | {hit}
        elif hit not in (single := self.hits(row)):
            self._multi[row] = single | {hit}
            self._kind[row] = MULTI
        return row

    def remove_subject(self, row: int, subject: int) -> None:
        """Forget every hit of `subject` on this row; the row goes when no hit is left."""
        if self._kind[row] != MULTI:
            if self._subject[row] == subject:
                self._delete(row)
            return
        left = frozenset(hit for hit in self._multi[row] if hit.subject != subject)
        if len(left) > 1:
            self._multi[row] = left
        elif left:
            (hit,) = left
            self._set(row, hit)
            del self._multi[row]
        else:
            del self._multi[row]
            self._delete(row)

    def token(self, row: int) -> bytes:
        return bytes(self._keys[row * TOKEN_SIZE : (row + 1) * TOKEN_SIZE])

    def nbytes(self) -> int:
        """Heap held by the arrays (the multi-hit dictionary not counted)."""
        arrays: Iterable[bytearray | array[int]] = (self._keys, self._subject, self._listing, self._kind, self._free, self._slots)
        return sum(len(a) * (a.itemsize if isinstance(a, array) else 1) for a in arrays)

    def sections(self) -> dict[str, bytes]:
        """The table as bytes, for a snapshot file (`from_sections` reads it back). The caller holds
        the writer's side (no change runs meanwhile); the copies are its own.

        The slots are not kept: they follow the built-in `hash()`, whose key is new in every
        process, so the process that reads the file places every row again.
        """
        multi = bytearray()
        for row, found in self._multi.items():
            multi += _MULTI_HEAD.pack(row, len(found))
            for hit in found:
                multi += _MULTI_HIT.pack(hit.subject, CODE[hit.type], hit.listing or 0)
        return {
            "keys": bytes(self._keys), "subject": self._subject.tobytes(), "listing": self._listing.tobytes(),
            "kind": bytes(self._kind), "free": self._free.tobytes(), "multi": bytes(multi),
        }

    @classmethod
    def from_sections(cls, sections: Mapping[str, bytes | memoryview]) -> TokenTable:
        """A table from `sections()`, its slots placed by this process's `hash()`; ValueError when the
        sections do not fit together."""
        table = cls()
        keys = bytes(sections["keys"])
        table._keys = bytearray(keys)
        table._subject.frombytes(sections["subject"])
        table._listing.frombytes(sections["listing"])
        table._free.frombytes(sections["free"])
        table._kind = bytearray(sections["kind"])
        rows = len(table._subject)
        if not (len(keys) == rows * TOKEN_SIZE and len(table._listing) == rows == len(table._kind)):
            raise ValueError(f"the table's arrays disagree on its rows ({rows} subjects, {len(keys)} key bytes)")
        free = set(table._free)
        if len(free) != len(table._free) or not all(0 <= row < rows for row in free):
            raise ValueError(f"its free rows are not {len(table._free)} distinct rows of {rows}")
        multi, offset = bytes(sections["multi"]), 0
        while offset < len(multi):
            row, count = _MULTI_HEAD.unpack_from(multi, offset)
            offset += _MULTI_HEAD.size
            if not 0 <= row < rows or row in free or table._kind[row] != MULTI or offset + count * _MULTI_HIT.size > len(multi):
                raise ValueError(f"its shared token at row {row} does not fit the table")
            hits = []
            for subject, code, listing in _MULTI_HIT.iter_unpack(multi[offset : offset + count * _MULTI_HIT.size]):
                hits.append(Hit(subject=subject, type=TYPES[code], listing=listing or None))
            offset += count * _MULTI_HIT.size
            table._multi[row] = frozenset(hits)
        table._used = rows - len(free)
        table._slots = slots = _new_slots(_capacity_for(table._used, _LOADED_LOAD))
        for row in range(rows):
            if row not in free:
                _place(slots, hash(keys[row * TOKEN_SIZE : (row + 1) * TOKEN_SIZE]), row)
        return table

    # -- the writer's internals --

    def add_reported(
        self, tokens: Iterable[tuple[Report, bytes, str]], reports: Mapping[Report, int], codes: Mapping[str, int]
    ) -> tuple[array[int], array[int]]:
        """`add` for each (report, token, identifier type) whose report is in `reports`, in order.

        `reports[report]` is `subject << LISTING_BITS | listing` (listing 0: under review),
        `codes` gives the type code of each identifier type name. Returns the row and the
        subject of each token added. This is the load at start: millions of tokens, nearly all
        seen once, so finding the report, probing and inserting a new token are written out in
        one loop (a call per step cost more than the steps); a token already present, or any
        table with deleted slots, takes `add`.
        """
        rows, subjects_added = array("i"), array("i")
        keys, subjects, listings, kinds, slots = self._keys, self._subject, self._listing, self._kind, self._slots
        mask, size, limit = len(slots) - 1, TOKEN_SIZE, len(slots) * _MAX_LOAD
        find, low = reports.get, (1 << LISTING_BITS) - 1
        for report, token, id_type in tokens:
            if (where := find(report)) is None:
                continue  # a token of a report that is not open
            subject, listing, kind = where >> LISTING_BITS, where & low, codes[id_type]
            subjects_added.append(subject)
            if len(token) == size and not (self._used + 1 > limit or self._deleted or self._free):
                i = hash(token) & mask
                while (r := slots[i]) >= 0 and not keys.startswith(token, r * size, r * size + size):
                    i = (i + 1) & mask
                if r < 0:  # the probe ended on an empty slot and no slot is deleted: a new token
                    row = len(subjects)
                    keys += token
                    subjects.append(subject)
                    listings.append(listing)
                    kinds.append(kind)
                    slots[i] = row
                    self._used += 1
                    rows.append(row)
                    continue
            rows.append(self.add(token, Hit(subject=subject, type=TYPES[kind], listing=listing or None)))
            slots = self._slots
            mask, limit = len(slots) - 1, len(slots) * _MAX_LOAD
        return rows, subjects_added

    def _insert(self, token: bytes, subject: int, kind: int, listing: int) -> int:
        if len(token) != TOKEN_SIZE:
            raise ValueError(f"a token is {TOKEN_SIZE} bytes, not {len(token)}")
        if (self._used + self._deleted + 1) > len(self._slots) * _MAX_LOAD:
            self._rebuild()
        if self._free:
            row = self._free.pop()
            self._keys[row * TOKEN_SIZE : (row + 1) * TOKEN_SIZE] = token
            self._subject[row], self._kind[row], self._listing[row] = subject, kind, listing
        else:
            row = len(self._subject)
            self._keys += token
            self._subject.append(subject)
            self._listing.append(listing)
            self._kind.append(kind)
        if _place(self._slots, hash(token), row):
            self._deleted -= 1
        self._used += 1
        return row

    def _set(self, row: int, hit: Hit) -> None:
        self._subject[row] = hit.subject
        self._listing[row] = hit.listing or 0
        self._kind[row] = CODE[hit.type]

    def _delete(self, row: int) -> None:
        slots, token = self._slots, self.token(row)
        mask = len(slots) - 1
        i = hash(token) & mask
        while slots[i] != row:
            i = (i + 1) & mask
        slots[i] = _DELETED
        self._deleted += 1
        self._used -= 1
        self._free.append(row)

    def _rebuild(self) -> None:
        """New slots sized for the rows in use; readers holding the old array still find every row in it."""
        live = [slot for slot in self._slots if slot >= 0]
        slots = _new_slots(_capacity_for(len(live) + 1, _GROWN_LOAD))
        for row in live:
            _place(slots, hash(self.token(row)), row)
        self._slots = slots
        self._deleted = 0


def _capacity_for(rows: int, load: float) -> int:
    """Slots (a power of two) for `rows` at no more than `load`."""
    capacity = _MIN_SLOTS
    while capacity * load < rows:
        capacity *= 2
    return capacity


def _place(slots: array[int], hashed: int, row: int) -> bool:
    """Put `row` in the first free slot from its hash; True when that slot had been deleted."""
    mask = len(slots) - 1
    i = hashed & mask
    while slots[i] >= 0:
        i = (i + 1) & mask
    reused = slots[i] == _DELETED
    slots[i] = row
    return reused


def _new_slots(capacity: int) -> array[int]:
    return array("i", [_EMPTY]) * capacity
