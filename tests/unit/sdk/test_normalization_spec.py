"""Normalization follows the rules docs/protocol.md section 3 states, not whatever a library or Python does."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
import unicodedata
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from stdnum.cn import ric

from jpr_client import IdentifierType, InvalidIdentifier, normalize

ROOT = Path(__file__).parents[3]
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
DIVISIONS = ROOT / "docs" / "vectors" / "cn_ric_divisions.dat"
RIC = "11010519491231002X"


def with_check_digit(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


def refusal(id_type: IdentifierType | str, raw: str) -> str | None:
    try:
        normalize(id_type, raw)
    except InvalidIdentifier as error:
        return error.reason
    return None


# --- white space ---------------------------------------------------------------------


def spec_white_space() -> set[str]:
    """The code points section 3 lists as white space, ranges expanded."""
    sentence = PROTOCOL.split("**White space**")[1].split(". Not ")[0]
    found: set[str] = set()
    for first, last in re.findall(r"U\+([0-9A-F]{4})(?:–U\+([0-9A-F]{4}))?", sentence):
        found.update(map(chr, range(int(first, 16), int(last or first, 16) + 1)))
    return found


# Every code point some language's trim takes for white space, and the invisible ones near them.
CANDIDATES = sorted(
    {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()} | {"\ufeff", "\u180e", "\u200b", "\u2060"}
)


def test_the_spec_lists_the_25_code_points_of_unicodes_white_space_property() -> None:
    assert len(spec_white_space()) == 25
    assert "\u001c" not in spec_white_space() and "\ufeff" not in spec_white_space()


@pytest.mark.parametrize("char", CANDIDATES, ids=[f"U+{ord(c):04X}" for c in CANDIDATES])
def test_exactly_the_specs_white_space_is_stripped(char: str) -> None:
    stripped = char in spec_white_space()
    for id_type, raw in ((IdentifierType.CN_RIC, RIC), (IdentifierType.PLATFORM_ACCOUNT, "shop-a:User_42")):
        assert (refusal(id_type, char + raw + char) is None) is stripped


@pytest.mark.parametrize("char", sorted(spec_white_space()), ids=lambda c: f"U+{ord(c):04X}")
def test_the_specs_white_space_separates_the_parts_of_a_code(char: str) -> None:
    assert normalize("cn_ric", f"110105{char}19491231{char}002X").value == RIC
    assert normalize("passport", f"CHN{char}E12345678").value == "CHNE12345678"


# --- letters in phone numbers ----------------------------------------------------------------

# Not letters to Python's str.isalpha() (category So, Nl), but letters after NFKC.
LETTER_LIKE = ["\u24b6", "\u24d0", "\u2121", "\u216b", "\u249c", "\U0001f130"]


@pytest.mark.parametrize("char", LETTER_LIKE, ids=lambda c: unicodedata.name(c))
def test_a_phone_number_with_a_character_whose_nfkc_form_is_a_letter_is_refused(char: str) -> None:
    for raw in (f"13800138000{char}", f"{char}13800138000", f"138 0013 8000 {char}"):
        assert refusal("phone", raw) == "must not contain letters"


def test_the_spec_defines_letters_as_category_l_after_nfkc_and_names_the_circled_a() -> None:
    section = PROTOCOL.split("### 3.4")[1].split("### 3.5")[0]
    assert "general category `Lu`, `Ll`, `Lt`, `Lm` or\n   `Lo` in the NFKC form" in section
    assert "`Ⓐ` (U+24B6" in section


def test_digits_and_punctuation_of_any_width_are_not_letters() -> None:
    assert normalize("phone", "＋８６ （１３８） ００１３－８０００").value == "+8613800138000"


# --- cn_ric birth year ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "accepted"),
    [("19000101", True), ("20991231", True), ("18991231", False), ("21000101", False), ("00010101", False), ("99991231", False)],
)
def test_a_cn_ric_birth_year_must_be_1900_to_2099(birth_date: str, accepted: bool) -> None:
    # 110105 (Beijing Chaoyang) is a division in every year of the table.
    reason = refusal("cn_ric", with_check_digit(f"110105{birth_date}002"))
    assert reason is None if accepted else reason == "birth year (characters 7-10) must be 1900 to 2099"


def test_an_impossible_date_is_refused_as_a_date_before_its_year_is_judged() -> None:
    assert "birth date" in str(refusal("cn_ric", with_check_digit("11010518990230002")))


def test_a_year_outside_the_range_is_refused_as_such_even_where_the_region_is_unknown_then() -> None:
    # 110103 was Chongwen district until 2010: the year is the first problem of an 1850 number.
    assert "birth year" in str(refusal("cn_ric", with_check_digit("11010318500101002")))


# --- the division table ----------------------------------------------------------------


def test_the_repositorys_division_table_is_the_one_python_stdnum_uses() -> None:
    installed = resources.files("stdnum").joinpath("cn/loc.dat").read_bytes()
    assert DIVISIONS.read_bytes() == installed


def test_the_spec_points_at_the_division_table_and_names_its_source_and_version() -> None:
    section = PROTOCOL.split("### 3.1")[1].split("### 3.2")[0]
    assert "docs/vectors/cn_ric_divisions.dat" in section and "python-stdnum 2.2" in section
    header = DIVISIONS.read_text(encoding="utf-8").splitlines()[1]
    assert header == "# https://zh.wikipedia.org/w/index.php?title=中华人民共和国行政区划代码_(1区)&action=raw"


def table_divisions() -> Iterator[tuple[str, list[str]]]:
    """(six-digit code, its names) from the table file, read by the rule section 3.1 states."""
    province = ""
    for line in DIVISIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        code, _, value = line.strip().partition(" ")
        names = value.removeprefix('county="').removesuffix('"').split(",")
        if line.startswith("  "):
            yield province + code, names
        else:
            province = code


def known_in(names: list[str], year: int) -> bool:
    for name in names:
        span = re.match(r"\[(\d*)-(\d*)\]", name)
        if span is None or int(span[1] or 0) <= year <= int(span[2] or 9999):
            return True
    return False


def test_the_code_accepts_a_division_exactly_in_the_years_the_table_gives() -> None:
    checked = 0
    for code, names in table_divisions():
        bounds = {int(y) for y in re.findall(r"\d{4}", ",".join(names))}
        for year in {y + d for y in bounds for d in (-1, 0, 1)} | {1949}:
            number = with_check_digit(f"{code}{year}0615123")
            assert (refusal("cn_ric", number) is None) is known_in(names, year), (code, year)
            checked += 1
    assert checked > 6800


def test_a_code_missing_from_the_table_is_refused() -> None:
    codes = {code for code, _ in table_divisions()}
    assert "110199" not in codes
    assert "region code" in str(refusal("cn_ric", with_check_digit("11019919900615123")))


# --- exact versions ----------------------------------------------------------------


def pinned(distribution: str) -> str:
    dependencies = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if re.fullmatch(rf"{re.escape(distribution)}\s*[=<>!~].*", d)]
    version = pin.partition("==")[2]
    assert version and re.fullmatch(r"[\w.]+", version), f"{pin!r} is not an exact pin"
    return version


@pytest.mark.parametrize("distribution", ["python-stdnum", "phonenumbers", "idna"])
def test_the_libraries_that_decide_acceptance_are_pinned_exactly_and_installed_at_the_pin(distribution: str) -> None:
    assert importlib.metadata.version(distribution) == pinned(distribution)


def test_the_spec_names_the_pinned_versions() -> None:
    section_3 = PROTOCOL.split("## 3. Identifiers")[1].split("## 4.")[0]
    assert f"python-stdnum {pinned('python-stdnum')}" in section_3
    assert f"release **{pinned('phonenumbers')}**" in section_3
    assert f"`phonenumbers` {pinned('phonenumbers')}" in section_3
    import idna

    assert f"`idna` package ({pinned('idna')}, pinned" in section_3
    assert f"UTS #46 data is Unicode {idna.unicode_version}" in section_3
