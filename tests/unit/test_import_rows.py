"""Reading the association's CSV lists: columns, values, and messages that never repeat a value."""

from __future__ import annotations

from datetime import datetime

import pytest

from jpr_client.model import IdentifierType
from registry.cli.import_rows import CHINA_STANDARD_TIME, BadRow, ListedRow, mask_name, read_rows

HEADER = "Role,CN_RIC,phone,category,severity,reason,banned_by,start_date,end_date"
RIC = "11010519491231002X"


def rows(*lines: str) -> list[ListedRow | BadRow]:
    return list(read_rows("\r\n".join(lines) + "\r\n", "list.csv"))


@pytest.mark.parametrize(("name", "masked"), [("张三明", "张*明"), ("张明", "张*"), ("张*明", "张*明"), ("欧阳小明", "欧**明"), ("张", "*"), ("", "")])
def test_display_names_are_masked_and_masking_twice_changes_nothing(name: str, masked: str) -> None:
    assert mask_name(name) == masked and mask_name(masked) == masked


def test_several_values_per_cell_dates_in_china_time_and_an_inclusive_end() -> None:
    [row] = rows(HEADER, f"Anchor,{RIC.lower()}, 13800138000；+86 139 0013 9000 ,fraud,SEVERE,refund fraud,Platform A,2024年3月1日,2026/02/28")
    assert isinstance(row, ListedRow) and row.line == 2
    assert [i.type for i in row.identifiers] == [IdentifierType.CN_RIC, IdentifierType.PHONE, IdentifierType.PHONE]
    assert row.listed_from == datetime(2024, 3, 1, tzinfo=CHINA_STANDARD_TIME)
    assert row.listed_until == datetime(2026, 3, 1, tzinfo=CHINA_STANDARD_TIME)


def test_line_numbers_count_quoted_line_breaks_and_blank_lines() -> None:
    found = rows(HEADER, f'merchant,{RIC},,fraud,serious,"two\nlines",A,2024-01-01,2029-01-01', "", "merchant,,,fraud,serious,x,A,2024-01-01,2029-01-01")
    assert [(r.line, type(r).__name__) for r in found] == [(2, "ListedRow"), (5, "BadRow")]


def test_an_unknown_column_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError) as refused:
        rows(f"{RIC},role", "x,y")
    assert RIC not in str(refused.value) and "header column 1 is not one of the columns" in str(refused.value)


@pytest.mark.parametrize(("cells", "problem"), [
    (f"chef,{RIC},,fraud,serious,x,A,2024-01-01,2029-01-01", "role: not one of merchant, anchor, mcn_institution"),
    (f"merchant,{RIC},,fraud,minor,x,A,2024-01-01,2029-01-01", "severity: not one of serious, severe"),
    (f"merchant,{RIC},,fraud,serious,x,A,2024-01-01,2023-01-01", "end_date: before start_date"),
    (f"merchant,{RIC},,fraud,serious,,A,2024-01-01,2029-01-01", "reason: empty; say it without personal data"),
    (f"merchant,{RIC},,fraud,serious,x,{RIC},2024-01-01,2029-01-01", "banned_by: holds one of the row's identifiers; only the identifier columns may"),
    (f"merchant,{RIC},1,2,3,4,5,6,7,8", "10 cells, the header has 9 columns"),
])
def test_bad_cells_name_the_column_and_never_the_value(cells: str, problem: str) -> None:
    [row] = rows(HEADER, cells)
    assert row == BadRow(2, problem)


NAMED = "Role,CN_RIC,phone,display_name,category,severity,reason,banned_by,start_date,end_date"


@pytest.mark.parametrize(("reason", "problem"), [
    (f"ID {RIC.lower()} again", "reason: holds one of the row's identifiers; only the identifier columns may"),
    ("call 138-0013-8000 for refunds", "reason: holds one of the row's identifiers; only the identifier columns may"),
    ("the shop on +86 138 0013 8000", "reason: holds one of the row's identifiers; only the identifier columns may"),
    ("张三明因售假被封店", "reason: holds the full name; only display_name may, and it is masked"),
])
def test_free_text_carrying_an_identifier_written_otherwise_or_the_full_name_is_a_bad_row(reason: str, problem: str) -> None:
    [row] = rows(NAMED, f"merchant,{RIC},+86 138 0013 8000,张三明,fraud,serious,{reason},Platform A,2024-01-01,2029-01-01")
    assert row == BadRow(2, problem)


def test_free_text_with_other_numbers_and_a_masked_name_is_fine() -> None:
    [row] = rows(NAMED, f"merchant,{RIC},13800138000,张*明,fraud,serious,sold 2024 fakes for 13900 yuan,Platform A,2024-01-01,2029-01-01")
    assert isinstance(row, ListedRow) and row.reason == "sold 2024 fakes for 13900 yuan"
