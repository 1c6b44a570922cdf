"""The lookup index's token table against a dictionary model: collisions, shared tokens, removal, growth."""

from __future__ import annotations

import builtins
import json
import os
import pickle
import struct
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpr_client.model import IdentifierType
from registry.domain.verdict import Hit
from registry.store import token_table
from registry.store.token_table import TokenTable

TOKENS = [bytes([n]) * 64 for n in range(12)]  # few tokens, so that operations meet each other often
hits = st.builds(
    Hit,
    subject=st.integers(1, 4),
    type=st.sampled_from([IdentifierType.CN_RIC, IdentifierType.PHONE]),
    listing=st.one_of(st.none(), st.integers(1, 3)),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(TOKENS), hits),
        st.tuples(st.just("remove"), st.sampled_from(TOKENS), st.integers(1, 4)),
    ),
    max_size=120,
)


def model_remove(model: dict[bytes, frozenset[Hit]], token: bytes, subject: int) -> None:
    left = frozenset(h for h in model.get(token, ()) if h.subject != subject)
    if left:
        model[token] = left
    else:
        model.pop(token, None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_the_table_answers_like_a_dictionary_of_hit_sets(ops: list[tuple[str, bytes, object]]) -> None:
    table, model = TokenTable(), {}
    for op, token, arg in ops:
        if op == "add":
            assert isinstance(arg, Hit)
            table.add(token, arg)
            model[token] = model.get(token, frozenset()) | {arg}
        elif (row := table.row(token)) >= 0:
            assert isinstance(arg, int)
            table.remove_subject(row, arg)
            model_remove(model, token, arg)
    assert len(table) == len(model)
    for token in TOKENS:
        row = table.row(token)
        assert (table.hits(row) if row >= 0 else frozenset()) == model.get(token, frozenset())
    # A batch's probe in one loop: the same hits, for the tokens held only, whatever the order and repeats.
    assert table.found([bytes(64), *reversed(TOKENS), *TOKENS]) == model


def replay(ops: list[tuple[str, bytes, object]], table: TokenTable) -> TokenTable:
    """`table` after `ops` (a removal of a token the table does not hold does nothing)."""
    for op, token, arg in ops:
        if op == "add":
            assert isinstance(arg, Hit)
            table.add(token, arg)
        elif (row := table.row(token)) >= 0:
            assert isinstance(arg, int)
            table.remove_subject(row, arg)
    return table


reported = st.lists(
    st.tuples(st.sampled_from(["r1", "r2", "r3", "closed"]), st.sampled_from(TOKENS), st.sampled_from(["cn_ric", "phone"])), max_size=60
)
PLACES = {"r1": 1 << token_table.LISTING_BITS | 3, "r2": 2 << token_table.LISTING_BITS, "r3": 4 << token_table.LISTING_BITS | 1}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, reported, st.integers(0, 40))
def test_adding_reported_tokens_in_one_loop_equals_adding_each(
    ops: list[tuple[str, bytes, object]], tokens: list[tuple[str, bytes, str]], expected: int
) -> None:
    """The load's loop (`add_reported`) against `add`, after any history: deleted slots, freed rows, growth.

    Hashes are made to collide (three values for twelve tokens), so that a token sits past
    deleted slots in a long run of probes, where a loop that stopped early would add it twice.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(token_table, "hash", lambda value: value[0] % 3, raising=False)
        check_reported(ops, tokens, expected)


def check_reported(ops: list[tuple[str, bytes, object]], tokens: list[tuple[str, bytes, str]], expected: int) -> None:
    one_loop, each = replay(ops, TokenTable(expected)), replay(ops, TokenTable(expected))
    codes = {"cn_ric": token_table.CODE[IdentifierType.CN_RIC], "phone": token_table.CODE[IdentifierType.PHONE]}
    rows, subjects = one_loop.add_reported(tokens, PLACES, codes)
    kept = [(report, token, kind) for report, token, kind in tokens if report in PLACES]
    assert list(subjects) == [PLACES[report] >> token_table.LISTING_BITS for report, _, _ in kept]
    for (report, token, kind), row in zip(kept, rows, strict=True):
        place = PLACES[report]
        hit = Hit(place >> token_table.LISTING_BITS, IdentifierType(kind), (place & 0xFFFFFFFF) or None)
        assert each.add(token, hit) == row  # both tables have the same history, so the same rows
        assert hit in one_loop.hits(row)
    assert len(one_loop) == len(each)
    for token in TOKENS:
        found, expected_row = one_loop.row(token), each.row(token)
        assert (one_loop.hits(found) if found >= 0 else frozenset()) == (each.hits(expected_row) if expected_row >= 0 else frozenset())


def test_tokens_whose_hashes_collide_are_told_apart_by_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    table = TokenTable()
    a, b, c = (bytes([1] * 63 + [n]) for n in (1, 2, 3))
    slots = len(table._slots)
    # Hashes equal modulo the table size: all three probe the same run of slots.
    same = {a: 5, b: 5 + slots, c: 5 + 2 * slots}
    monkeypatch.setattr(token_table, "hash", lambda value: same.get(value, builtins.hash(value)), raising=False)
    for n, token in enumerate((a, b, c), start=1):
        table.add(token, Hit(n, IdentifierType.CN_RIC, None))
    assert [table.hits(table.row(t)) for t in (a, b, c)] == [frozenset({Hit(n, IdentifierType.CN_RIC, None)}) for n in (1, 2, 3)]
    table.remove_subject(table.row(b), 2)  # a deleted slot in the middle of the run must not end the search
    assert table.row(b) == -1 and table.row(c) >= 0 and table.row(a) >= 0
    assert table.found([a, b, c]) == {a: {Hit(1, IdentifierType.CN_RIC, None)}, c: {Hit(3, IdentifierType.CN_RIC, None)}}


def test_a_token_on_two_subjects_keeps_both_until_each_lets_go() -> None:
    table, phone = TokenTable(), os.urandom(64)
    first, second = Hit(1, IdentifierType.PHONE, 7), Hit(2, IdentifierType.PHONE, None)
    table.add(phone, first)
    row = table.add(phone, second)
    assert table.hits(row) == {first, second} and table.subjects(row) == {1, 2}
    table.remove_subject(row, 1)
    assert table.hits(table.row(phone)) == {second}
    table.remove_subject(table.row(phone), 2)
    assert table.row(phone) == -1 and len(table) == 0


def test_removed_rows_are_reused_and_the_table_grows_without_losing_a_token() -> None:
    table = TokenTable()
    tokens = [os.urandom(64) for _ in range(5000)]
    for n, token in enumerate(tokens):
        table.add(token, Hit(n + 1, IdentifierType.CN_RIC, None))
    for n, token in enumerate(tokens[:2500]):
        table.remove_subject(table.row(token), n + 1)
    rows_before = len(table._subject)
    for n, token in enumerate(tokens[:2500]):
        table.add(token, Hit(n + 1, IdentifierType.CN_RIC, n))
    assert len(table._subject) == rows_before  # the freed rows, not new ones
    assert all(table.hits(table.row(t)) == {Hit(n + 1, IdentifierType.CN_RIC, n or None)} for n, t in enumerate(tokens[:2500]))
    assert all(table.row(t) >= 0 for t in tokens) and table.row(os.urandom(64)) == -1
    assert len(table._slots) >= len(table) / 0.6


def test_a_token_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="64 bytes, not 5"):
        TokenTable().add(b"short", Hit(1, IdentifierType.CN_RIC, None))


def test_the_loads_loop_finds_a_token_past_a_deleted_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted slot with no freed row left (the row went to a token elsewhere) must not end the probe."""
    table = TokenTable()
    a, b, c, d = (bytes([1] * 63 + [n]) for n in (1, 2, 3, 4))
    where = {a: 5, b: 5, c: 5, d: 9}  # a, b and c share one run of slots; d lands apart
    monkeypatch.setattr(token_table, "hash", lambda value: where.get(value, builtins.hash(value)), raising=False)
    for n, token in enumerate((a, b, c), start=1):
        table.add(token, Hit(n, IdentifierType.CN_RIC, None))
    table.remove_subject(table.row(a), 1)
    table.add(d, Hit(4, IdentifierType.CN_RIC, None))  # takes a's freed row, in an empty slot: a's slot stays deleted
    assert (table._deleted, list(table._free)) == (1, [])
    rows, _ = table.add_reported([("r", c, "phone")], {"r": 7 << token_table.LISTING_BITS}, {"phone": token_table.CODE[IdentifierType.PHONE]})
    assert list(rows) == [table.row(c)] and len(table) == 3
    assert table.hits(table.row(c)) == {Hit(3, IdentifierType.CN_RIC, None), Hit(7, IdentifierType.PHONE, None)}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_a_table_read_back_from_its_sections_is_the_same_table(ops: list[tuple[str, bytes, object]]) -> None:
    """What a snapshot file keeps (index_snapshot.py): shared tokens, deleted slots and freed rows included."""
    table = replay(ops, TokenTable())
    back = TokenTable.from_sections({name: memoryview(data) for name, data in table.sections().items()})
    assert {n: d for n, d in back.sections().items() if n != "multi"} == {n: d for n, d in table.sections().items() if n != "multi"}
    assert back._multi == table._multi and len(back) == len(table)  # (a frozenset's order is its own)
    for token in TOKENS:
        row = table.row(token)
        assert back.row(token) == row and (row < 0 or back.hits(row) == table.hits(row))
    extra = os.urandom(64)  # and it goes on working: a new token takes a freed row or a new one
    assert back.hits(back.add(extra, Hit(9, IdentifierType.PHONE, None))) == {Hit(9, IdentifierType.PHONE, None)}


def test_sections_that_do_not_fit_together_are_refused() -> None:
    table = TokenTable()
    table.add(os.urandom(64), Hit(1, IdentifierType.CN_RIC, None))
    sections = table.sections()
    with pytest.raises(ValueError, match="disagree on its rows"):
        TokenTable.from_sections(sections | {"keys": sections["keys"][:-1]})
    with pytest.raises(ValueError, match="free rows are not"):
        TokenTable.from_sections(sections | {"free": array("i", [0, 0]).tobytes()})
    with pytest.raises(ValueError, match="shared token at row 5"):
        TokenTable.from_sections(sections | {"multi": struct.pack("<iI", 5, 1) + struct.pack("<iBi", 1, 0, 0)})


READ_BACK = """
import json, pickle, sys
from registry.store.token_table import TokenTable
sections, tokens = pickle.load(open(sys.argv[1], "rb"))
table = TokenTable.from_sections(sections)
print(json.dumps([sorted((h.subject, h.type.value, h.listing) for h in table.hits(r)) if (r := table.row(t)) >= 0 else None for t in tokens]))
"""


@pytest.mark.parametrize("seed", ["1", "2", "random"])
def test_a_table_read_back_in_another_process_finds_every_token(tmp_path: Path, seed: str) -> None:
    """Slots follow the built-in hash(), whose key is new in every process: the reader must place the rows
    itself (a snapshot read at the next start, or by another of `--processes N`)."""
    table = TokenTable()
    tokens = [os.urandom(64) for _ in range(3000)]
    for n, token in enumerate(tokens):
        table.add(token, Hit(n % 700 + 1, IdentifierType.PHONE if n % 3 else IdentifierType.CN_RIC, n % 5 or None))
    for n, token in enumerate(tokens[:300]):  # freed rows and deleted slots
        table.remove_subject(table.row(token), n % 700 + 1)
    table.add(tokens[400], Hit(9999, IdentifierType.PHONE, None))  # a shared token
    (tmp_path / "table.pickle").write_bytes(pickle.dumps((table.sections(), tokens)))
    environment = {**os.environ, "PYTHONHASHSEED": seed}
    found = json.loads(subprocess.run(
        [sys.executable, "-c", READ_BACK, str(tmp_path / "table.pickle")], env=environment, check=True, capture_output=True, text=True,
    ).stdout)
    expected = [sorted((h.subject, h.type.value, h.listing) for h in table.hits(r)) if (r := table.row(t)) >= 0 else None for t in tokens]
    assert [list(map(tuple, f)) if f is not None else None for f in found] == [list(e) if e is not None else None for e in expected]
    assert found[:300] == [None] * 300 and len(found[400]) == 2
