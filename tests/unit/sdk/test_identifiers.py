"""The one normalizer per identifier type, and its errors that never quote the input."""

from __future__ import annotations

import dataclasses
import doctest
import pickle
import unicodedata

import pytest
from stdnum.cn import ric, uscc

from jpr_client import identifiers
from jpr_client.identifiers import (
    STRONG_TYPES,
    Identifier,
    IdentifierType,
    InvalidIdentifier,
    normalize,
)

# The example number printed in GB 11643-1999 itself.
RIC = "11010519491231002X"
# A second one made with stdnum: Shenzhen Futian, born 1990-03-07.
RIC_2 = "44030519900307123" + ric.calc_check_digit("44030519900307123" + "0")
USCC = "91110000600037341L"
USCC_2 = "91310000MA1FL4C8" + "0" + uscc.calc_check_digit("91310000MA1FL4C80")


def with_check_digit(body: str) -> str:
    """A 17-character RIC body completed with its correct check digit."""
    return body + ric.calc_check_digit(body + "0")


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms, spaces as U+3000."""
    return "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c
        for c in text
    )


# --- the types -------------------------------------------------------------------------


def test_identifier_types_use_their_wire_names_as_values() -> None:
    assert [t.value for t in IdentifierType] == [
        "cn_ric",
        "cn_uscc",
        "passport",
        "phone",
        "email",
        "platform_account",
    ]


def test_only_ric_uscc_and_passport_are_strong() -> None:
    assert STRONG_TYPES == {IdentifierType.CN_RIC, IdentifierType.CN_USCC, IdentifierType.PASSPORT}
    assert {t for t in IdentifierType if t.strong} == STRONG_TYPES


def test_normalize_accepts_the_type_as_enum_or_as_its_wire_name() -> None:
    assert normalize(IdentifierType.CN_RIC, RIC) == normalize("cn_ric", RIC)


def test_an_unknown_type_name_is_a_plain_value_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown identifier type 'iban'.*cn_ric") as info:
        normalize("iban", "DE89370400440532013000")
    assert not isinstance(info.value, InvalidIdentifier)


def test_identifier_is_frozen_and_keeps_its_value_out_of_repr() -> None:
    identifier = normalize("cn_ric", RIC)
    assert identifier == Identifier(IdentifierType.CN_RIC, RIC)
    assert RIC not in repr(identifier)
    with pytest.raises(dataclasses.FrozenInstanceError):
        identifier.value = "x"  # type: ignore[misc]


def test_invalid_identifier_carries_type_and_reason_and_survives_pickling() -> None:
    error = InvalidIdentifier(IdentifierType.PASSPORT, "passport number must be 5 to 20 characters, got 3")
    assert isinstance(error, ValueError)
    assert str(error) == "invalid passport: passport number must be 5 to 20 characters, got 3"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.id_type, copy.reason, str(copy)) == (error.id_type, error.reason, str(error))


def test_the_docstring_examples_hold() -> None:
    results = doctest.testmod(identifiers)
    assert results.attempted > 0
    assert results.failed == 0


# --- valid input -------------------------------------------------------------------------

VALID = [
    # cn_ric: full-width, lower-case x, spaces and hyphens all fold to one form
    (IdentifierType.CN_RIC, RIC, RIC),
    (IdentifierType.CN_RIC, "11010519491231002x", RIC),
    (IdentifierType.CN_RIC, full_width("11010519491231002X"), RIC),
    (IdentifierType.CN_RIC, full_width("110105 19491231 002x"), RIC),
    (IdentifierType.CN_RIC, " 110105-19491231-002X\t", RIC),
    (IdentifierType.CN_RIC, RIC_2, RIC_2),
    # cn_uscc
    (IdentifierType.CN_USCC, USCC, USCC),
    (IdentifierType.CN_USCC, "91110000600037341l", USCC),
    (IdentifierType.CN_USCC, "9111 0000 6000 3734 1L", USCC),
    (IdentifierType.CN_USCC, full_width("91110000600037341l"), USCC),
    (IdentifierType.CN_USCC, USCC_2.lower(), USCC_2),
    # passport: any of the accepted separators, or none
    (IdentifierType.PASSPORT, "CHN E12345678", "CHNE12345678"),
    (IdentifierType.PASSPORT, "chn-e12345678", "CHNE12345678"),
    (IdentifierType.PASSPORT, "CHN:E12345678", "CHNE12345678"),
    (IdentifierType.PASSPORT, "chn : e1234 5678", "CHNE12345678"),
    (IdentifierType.PASSPORT, "CHNE12345678", "CHNE12345678"),
    (IdentifierType.PASSPORT, full_width("chn e12345678"), "CHNE12345678"),
    (IdentifierType.PASSPORT, "GBR 123456789", "GBR123456789"),
    (IdentifierType.PASSPORT, "HKG K1234", "HKGK1234"),
    # phone: national, international, 00-prefixed and full-width forms of one mobile
    (IdentifierType.PHONE, "13800138000", "+8613800138000"),
    (IdentifierType.PHONE, "138 0013 8000", "+8613800138000"),
    (IdentifierType.PHONE, "+86 138-0013-8000", "+8613800138000"),
    (IdentifierType.PHONE, "0086 138 0013 8000", "+8613800138000"),
    (IdentifierType.PHONE, full_width("+86 13800138000"), "+8613800138000"),
    (IdentifierType.PHONE, "+44 7911 123456", "+447911123456"),
    # email: domain lower-cased and punycoded, local part untouched
    (IdentifierType.EMAIL, " Li.Lei@Example.COM ", "Li.Lei@example.com"),
    (IdentifierType.EMAIL, "zhang+shop@Bücher.Example", "zhang+shop@xn--bcher-kva.example"),
    (IdentifierType.EMAIL, "用户@例子.测试", "用户@xn--fsqu00a.xn--0zwm56d"),
    (IdentifierType.EMAIL, "a@XN--BCHER-KVA.example", "a@xn--bcher-kva.example"),
    (IdentifierType.EMAIL, "a@example.com.", "a@example.com"),
    (IdentifierType.EMAIL, "a@exam\u200bple.com", "a@example.com"),  # UTS #46 ignores U+200B
    # platform_account: kept as is, case and all, after trimming
    (IdentifierType.PLATFORM_ACCOUNT, " shop-a:User_42 ", "shop-a:User_42"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:ns:42", "shop-a:ns:42"),
    (IdentifierType.PLATFORM_ACCOUNT, "7x:店铺-小王", "7x:店铺-小王"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:" + "a" * 128, "shop-a:" + "a" * 128),
]


@pytest.mark.parametrize(("id_type", "raw", "expected"), VALID)
def test_valid_input_normalizes_to_one_canonical_value(id_type: IdentifierType, raw: str, expected: str) -> None:
    assert normalize(id_type, raw) == Identifier(id_type, expected)


@pytest.mark.parametrize(("id_type", "raw", "expected"), VALID)
def test_normalizing_a_normalized_value_changes_nothing(id_type: IdentifierType, raw: str, expected: str) -> None:
    assert normalize(id_type, expected).value == expected


def test_a_fixed_line_or_mobile_number_counts_as_mobile() -> None:
    # NANP numbers do not say whether they are mobile; phonenumbers reports both.
    assert normalize("phone", "(650) 253-0000", default_region="US").value == "+16502530000"


def test_default_region_only_applies_to_numbers_without_a_country_code() -> None:
    assert normalize("phone", "+8613800138000", default_region="US").value == "+8613800138000"


def test_an_unsupported_default_region_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported default_region 'ZZ'") as info:
        normalize("phone", "13800138000", default_region="ZZ")
    assert not isinstance(info.value, InvalidIdentifier)


# --- invalid input -----------------------------------------------------------------------

INVALID = [
    # (type, raw, a fragment the reason must contain)
    *[(t, raw, "value is empty") for t in IdentifierType for raw in ("", "  \t\u3000")],
    # cn_ric
    (IdentifierType.CN_RIC, RIC[:-1], "must be 18 characters, got 17"),
    (IdentifierType.CN_RIC, "110105491231002", "must be 18 characters, got 15"),
    (IdentifierType.CN_RIC, RIC + "0", "must be 18 characters, got 19"),
    (IdentifierType.CN_RIC, "110105A9491231002X", "first 17 characters must be digits"),
    (IdentifierType.CN_RIC, "110105194912310021", "check digit does not match"),
    (IdentifierType.CN_RIC, "11010519491231002A", "check digit does not match"),
    (IdentifierType.CN_RIC, with_check_digit("11010519491331002"), "birth date"),
    (IdentifierType.CN_RIC, with_check_digit("11010519490230002"), "birth date"),
    (IdentifierType.CN_RIC, with_check_digit("99999919491231002"), "region code"),
    # cn_uscc
    (IdentifierType.CN_USCC, USCC[:-2], "must be 18 characters, got 16"),
    (IdentifierType.CN_USCC, "A1110000600037341L", "8 digits followed by"),
    (IdentifierType.CN_USCC, "9111000060003734IL", "other than I, O, S, V and Z"),
    (IdentifierType.CN_USCC, "91110000600037341A", "check character does not match"),
    # passport
    (IdentifierType.PASSPORT, "XXX E12345678", "ISO 3166-1 alpha-3"),
    (IdentifierType.PASSPORT, "CN E12345678", "ISO 3166-1 alpha-3"),
    (IdentifierType.PASSPORT, "US A1234567", "ISO 3166-1 alpha-3"),  # not "USA" + "1234567"
    (IdentifierType.PASSPORT, "D C01X00T47", "ISO 3166-1 alpha-3"),  # ICAO's code, not ISO's
    (IdentifierType.PASSPORT, "ÇHN E12345678", "ISO 3166-1 alpha-3"),
    (IdentifierType.PASSPORT, "CHN E123", "5 to 20 characters, got 4"),
    (IdentifierType.PASSPORT, "CHN " + "E" * 21, "5 to 20 characters, got 21"),
    (IdentifierType.PASSPORT, "CHN E1234/5678", "only letters A-Z and digits"),
    (IdentifierType.PASSPORT, "DEU C01ß00T47", "only letters A-Z and digits"),
    # phone
    (IdentifierType.PHONE, "+", "not a phone number"),
    (IdentifierType.PHONE, "+999 1234 5678", "unknown country calling code"),
    (IdentifierType.PHONE, "+86 1", "too short"),
    (IdentifierType.PHONE, "1380013800012345678", "too long"),
    (IdentifierType.PHONE, "95588", "not a valid number"),
    (IdentifierType.PHONE, "010 6552 9988", "is a fixed-line number, not a mobile number"),
    (IdentifierType.PHONE, "400 600 1234", "is a shared-cost number, not a mobile number"),
    (IdentifierType.PHONE, "800 810 8888", "is a toll-free number, not a mobile number"),
    (IdentifierType.PHONE, "138-0013-8000#12", "cannot have an extension"),
    (IdentifierType.PHONE, "13800138000x", "must not contain letters"),
    (IdentifierType.PHONE, "1380013DFAD", "must not contain letters"),
    (IdentifierType.PHONE, "tel:+86-138-0013-8000", "must not contain letters"),
    # email
    (IdentifierType.EMAIL, "li.lei.example.com", "exactly one @"),
    (IdentifierType.EMAIL, "li@lei@example.com", "exactly one @"),
    (IdentifierType.EMAIL, "@example.com", "local part (before @) is empty"),
    (IdentifierType.EMAIL, "li.lei@", "domain (after @) is empty"),
    (IdentifierType.EMAIL, "li lei@example.com", "local part contains whitespace or control characters"),
    (IdentifierType.EMAIL, "li.lei\u200b@example.com", "local part contains whitespace or control characters"),
    (IdentifierType.EMAIL, "li.lei@example.com\x00", "domain contains whitespace or control characters"),
    (IdentifierType.EMAIL, "li.lei@example..com", "domain has an empty label"),
    (IdentifierType.EMAIL, "li.lei@exam_ple.com", "only letters, digits and hyphens"),
    (IdentifierType.EMAIL, "li.lei@" + "a" * 64 + ".com", "longer than 63 octets"),
    (IdentifierType.EMAIL, "li.lei@" + "ü" * 60 + ".com", "longer than 63 octets"),
    (IdentifierType.EMAIL, "l" * 64 + "@" + ".".join(["d" * 60] * 4), "longer than 254 octets"),
    # platform_account
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a/User_42", "<member-id>:<account-id>"),
    (IdentifierType.PLATFORM_ACCOUNT, "Shop-A:User_42", "member id must be a registry member name"),
    (IdentifierType.PLATFORM_ACCOUNT, "-shop:User_42", "member id must be a registry member name"),
    (IdentifierType.PLATFORM_ACCOUNT, "s:User_42", "member id must be a registry member name"),
    (IdentifierType.PLATFORM_ACCOUNT, "s" * 64 + ":User_42", "member id must be a registry member name"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:", "account id is empty"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:" + "a" * 129, "at most 128 characters, got 129"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:User 42", "whitespace or control characters"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:User\u200d42", "whitespace or control characters"),
    (IdentifierType.PLATFORM_ACCOUNT, "shop-a:User\x1b42", "whitespace or control characters"),
]


def _case_id(case: tuple[IdentifierType, str, str]) -> str:
    return f"{case[0].value}-{case[2]}"


@pytest.mark.parametrize(("id_type", "raw", "reason"), INVALID, ids=[_case_id(c) for c in INVALID])
def test_invalid_input_is_rejected_with_a_message_naming_the_type_and_the_problem(
    id_type: IdentifierType, raw: str, reason: str
) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalize(id_type, raw)
    error = info.value
    assert error.id_type is id_type
    assert reason in error.reason
    assert str(error) == f"invalid {id_type.value}: {error.reason}"


def _spellings(raw: str) -> set[str]:
    """The raw value as given and as it would look after folding, for leak checks."""
    stripped = raw.strip()
    folded = unicodedata.normalize("NFKC", stripped)
    alnum = "".join(c for c in folded if c.isalnum())
    return {s for s in (stripped, folded, alnum, alnum.upper(), alnum.lower()) if len(s) >= 4}


LEAK_CASES = [c for c in INVALID if _spellings(c[1])]


@pytest.mark.parametrize(("id_type", "raw", "reason"), LEAK_CASES, ids=[_case_id(c) for c in LEAK_CASES])
def test_error_never_repeats_the_raw_value(id_type: IdentifierType, raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalize(id_type, raw)
    error = info.value
    shown = " ".join([str(error), repr(error), *map(str, error.args), error.reason])
    for spelling in _spellings(raw):
        assert spelling not in shown
    # A chained library exception would print the input in a logged traceback.
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_every_identifier_type_has_invalid_cases_beyond_emptiness() -> None:
    covered = {t for t, _, reason in INVALID if reason != "value is empty"}
    assert covered == set(IdentifierType)
