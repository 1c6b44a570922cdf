"""Normalize identifiers on the platform before they are tokenized.

Each identifier type has exactly one normalizer, reached through :func:`normalize`.
Two platforms holding the same identifier in different spellings must arrive at the
same normalized value, or their tokens would silently fail to match; input that
cannot be normalized is rejected with :class:`InvalidIdentifier`. Its message names
the type and the problem but never repeats the input, because identifiers are
personal data and error messages end up in logs.

>>> normalize("cn_ric", "11010519491231002x").value
'11010519491231002X'
>>> normalize(IdentifierType.PHONE, "138 0013 8000").value
'+8613800138000'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import assert_never

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from jpr_client._countries import ALPHA3
from jpr_client._email_domain import InvalidDomain, domain_to_ascii
from jpr_client.model import IdentifierType

__all__ = ["STRONG_TYPES", "Identifier", "IdentifierType", "InvalidIdentifier", "normalize"]


# One definition of the identifier types, shared with the registry.
STRONG_TYPES: frozenset[IdentifierType] = frozenset(t for t in IdentifierType if t.strong)

# Unicode's White_Space property (PropList.txt), the 25 code points docs/protocol.md 3
# lists. Not str.isspace(), which adds U+001C-U+001F, nor JavaScript's trim(), which
# adds U+FEFF: every language must strip the same set.
_WHITE_SPACE = "".join(
    map(chr, (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000))
)


class InvalidIdentifier(ValueError):
    """An identifier that cannot be normalized.

    ``str()`` names the type and the problem, never the rejected value.

    >>> try:
    ...     normalize("cn_ric", "110105194912310021")
    ... except InvalidIdentifier as exc:
    ...     print(exc.id_type, "/", exc.reason, "/", exc)
    IdentifierType.CN_RIC / check digit does not match / invalid cn_ric: check digit does not match
    """

    def __init__(self, id_type: IdentifierType, reason: str) -> None:
        super().__init__(f"invalid {id_type.value}: {reason}")
        self.id_type = id_type
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidIdentifier], tuple[IdentifierType, str]]:
        return (InvalidIdentifier, (self.id_type, self.reason))


@dataclass(frozen=True)
class Identifier:
    """A normalized identifier, ready to be tokenized. Build one with :func:`normalize`.

    The value is personal data, so it is left out of ``repr()``.

    >>> normalize("email", " Li.Lei@Example.COM ")
    Identifier(type=<IdentifierType.EMAIL: 'email'>)
    """

    type: IdentifierType
    value: str = field(repr=False)


def normalize(
    id_type: IdentifierType | str, raw: str, *, default_region: str = "CN"
) -> Identifier:
    """Validate ``raw`` as an identifier of ``id_type`` and return its normalized form.

    ``default_region`` (ISO 3166-1 alpha-2) is used only for phone numbers written
    without a country calling code. Raises :class:`InvalidIdentifier` for bad input
    and plain ``ValueError`` for an unknown type or region (a caller's mistake).

    >>> normalize("cn_ric", "１１０１０５ １９４９１２３１ ００２ｘ").value
    '11010519491231002X'
    >>> normalize("cn_uscc", "9111 0000 6000 3734 1l").value
    '91110000600037341L'
    >>> normalize("passport", "chn-e12345678").value
    'CHNE12345678'
    >>> normalize("phone", "+86 138-0013-8000").value
    '+8613800138000'
    >>> normalize("phone", "(650) 253-0000", default_region="US").value
    '+16502530000'
    >>> normalize("email", "Zhang.San@Bücher.Example").value
    'Zhang.San@xn--bcher-kva.example'
    >>> normalize("platform_account", " shop-a:User_42 ").value
    'shop-a:User_42'
    """
    kind = _parse_type(id_type)
    text = raw.strip(_WHITE_SPACE)
    try:
        return Identifier(kind, _normalize_text(kind, text, default_region))
    except _Rejected as exc:
        # `from None`: nothing chained may quote the input, and tracebacks are logged.
        raise InvalidIdentifier(kind, exc.reason) from None


def _parse_type(id_type: IdentifierType | str) -> IdentifierType:
    if isinstance(id_type, IdentifierType):
        return id_type
    try:
        return IdentifierType(id_type)
    except ValueError:
        known = ", ".join(t.value for t in IdentifierType)
        raise ValueError(f"unknown identifier type {id_type!r}; expected one of {known}") from None


class _Rejected(Exception):
    """A normalizer's verdict on bad input; normalize() adds the type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _normalize_text(kind: IdentifierType, text: str, default_region: str) -> str:
    if not text:
        raise _Rejected("value is empty")
    match kind:
        case IdentifierType.CN_RIC:
            return _cn_ric(text)
        case IdentifierType.CN_USCC:
            return _cn_uscc(text)
        case IdentifierType.PASSPORT:
            return _passport(text)
        case IdentifierType.PHONE:
            return _phone(text, default_region)
        case IdentifierType.EMAIL:
            return _email(text)
        case IdentifierType.PLATFORM_ACCOUNT:
            return _platform_account(text)
        case _:
            assert_never(kind)


# The normalizers below raise _Rejected after, not inside, the handler of a library
# exception, so that no library message (which may quote the input) is chained.

_WHITE_SPACE_CLASS = re.escape(_WHITE_SPACE)
_SEPARATORS = re.compile(f"[{_WHITE_SPACE_CLASS}\\-]+")


def _compact_code(text: str) -> str:
    """Full-width to ASCII (NFKC), drop spaces and hyphens, upper-case."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()


def _cn_ric(text: str) -> str:
    number = _compact_code(text)
    reason = _cn_ric_refusal(number)
    if reason is not None:
        raise _Rejected(reason)
    return number


def _cn_ric_refusal(number: str) -> str | None:
    try:
        ric.validate(number)
    except InvalidLength:
        return f"must be 18 characters, got {len(number)}"
    except InvalidFormat:
        return "the first 17 characters must be digits"
    except InvalidChecksum:
        return "check digit does not match"
    except (InvalidComponent, KeyError):  # KeyError: python-stdnum 2.2, a known province with an unknown county
        return _cn_ric_component_reason(number)
    return _cn_ric_birth_year_reason(number)


def _cn_ric_component_reason(number: str) -> str:
    """Tell apart the checks behind stdnum's InvalidComponent: date, then year, then region."""
    try:
        ric.get_birth_date(number)
    except InvalidComponent:
        return "birth date (characters 7-14) is not a real date"
    return _cn_ric_birth_year_reason(number) or _REGION_UNKNOWN


# Fixed, not "up to today": a number must normalize the same on every platform and in
# every year, or a token made at submission would stop matching at a later lookup.
_BIRTH_YEARS = range(1900, 2100)


def _cn_ric_birth_year_reason(number: str) -> str | None:
    if int(number[6:10]) in _BIRTH_YEARS:
        return None
    return f"birth year (characters 7-10) must be {_BIRTH_YEARS[0]} to {_BIRTH_YEARS[-1]}"


_REGION_UNKNOWN = "region code (first 6 digits) is not a division known for the birth year"


def _cn_uscc(text: str) -> str:
    code = _compact_code(text)
    try:
        return str(uscc.validate(code))
    except InvalidLength:
        reason = f"must be 18 characters, got {len(code)}"
    except InvalidFormat:
        reason = (
            "must be 8 digits followed by 10 digits or upper-case letters "
            "other than I, O, S, V and Z"
        )
    except InvalidChecksum:
        reason = "check character does not match"
    raise _Rejected(reason)


_PASSPORT_SEPARATORS = re.compile(f"[{_WHITE_SPACE_CLASS}:\\-]+")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]+")


def _passport(text: str) -> str:
    country, number = _split_passport(unicodedata.normalize("NFKC", text))
    if not country.isascii() or country.upper() not in ALPHA3:
        raise _Rejected("issuing country must be an ISO 3166-1 alpha-3 code such as CHN")
    if not 5 <= len(number) <= 20:
        raise _Rejected(f"passport number must be 5 to 20 characters, got {len(number)}")
    if not _ASCII_ALNUM.fullmatch(number):
        raise _Rejected("passport number must contain only letters A-Z and digits")
    return country.upper() + number.upper()


def _split_passport(text: str) -> tuple[str, str]:
    """Split "CHN E123", "CHN:E123" or "CHNE123" into issuing country and number.

    A separator, where present, decides where the country ends, so that an alpha-2
    slip such as "US A1234567" is rejected instead of being read as "USA" + "1234567".
    """
    parts = _PASSPORT_SEPARATORS.split(text, maxsplit=1)
    country, number = (parts[0], parts[1]) if len(parts) == 2 else (text[:3], text[3:])
    return country, _PASSPORT_SEPARATORS.sub("", number)


_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_PHONE_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed-line",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "universal access",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
_PHONE_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the IDD prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def _phone(text: str, default_region: str) -> str:
    # phonenumbers reads letters as a vanity number ("138001380AB") and drops some
    # trailing junk ("13800138000x"): a typo would become someone else's number.
    if _has_letter(text):
        raise _Rejected("must not contain letters")
    number = _parse_phone(text, default_region)
    if number.extension:
        raise _Rejected("a mobile number cannot have an extension")
    if not phonenumbers.is_valid_number(number):
        raise _Rejected("not a valid number in its country's plan")
    kind = phonenumbers.number_type(number)
    if kind not in _MOBILE_TYPES:
        name = _PHONE_TYPE_NAMES.get(kind, "unknown-type")
        raise _Rejected(f"is a {name} number, not a mobile number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _has_letter(text: str) -> bool:
    """A letter (general category L) after NFKC, so that Ⓐ (So, NFKC "A") and ℡ count."""
    return any(unicodedata.category(c).startswith("L") for c in unicodedata.normalize("NFKC", text))


def _parse_phone(text: str, default_region: str) -> phonenumbers.PhoneNumber:
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unsupported default_region {default_region!r}")
    try:
        return phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        reason = _PHONE_PARSE_REASONS.get(exc.error_type, "not a phone number")
    raise _Rejected(reason)


_MAX_EMAIL_OCTETS = 254  # RFC 5321's 256-octet path limit less the angle brackets


def _email(text: str) -> str:
    if text.count("@") != 1:
        raise _Rejected("must contain exactly one @")
    local, _, domain = text.partition("@")
    if not local:
        raise _Rejected("local part (before @) is empty")
    if not domain:
        raise _Rejected("domain (after @) is empty")
    if _has_invisible(local):
        raise _Rejected("local part contains whitespace or control characters")
    address = f"{local}@{_email_domain(domain)}"
    if len(address.encode("utf-8")) > _MAX_EMAIL_OCTETS:
        raise _Rejected(f"longer than {_MAX_EMAIL_OCTETS} octets")
    return address


def _email_domain(domain: str) -> str:
    """UTS #46 to ASCII as WHATWG URL does it, then host-name rules (section 3.5)."""
    # Format characters are UTS #46's to judge: it drops U+200B and keeps ZWJ/ZWNJ in context.
    if any(c in _WHITE_SPACE or unicodedata.category(c) in {"Cc", "Cs"} for c in domain):
        raise _Rejected("domain contains whitespace or control characters")
    try:
        return domain_to_ascii(domain)
    except InvalidDomain as exc:
        reason = exc.reason
    raise _Rejected(reason)


_MEMBER_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # registry.domain.admin.MEMBER_NAME
_MAX_ACCOUNT_ID = 128


def _platform_account(text: str) -> str:
    member_id, colon, account_id = text.partition(":")
    if not colon:
        raise _Rejected("must have the form <member-id>:<account-id>")
    if not _MEMBER_ID.fullmatch(member_id):
        raise _Rejected(
            "member id must be a registry member name: 2 to 63 lower-case letters, "
            "digits or hyphens, not starting with a hyphen"
        )
    _check_account_id(account_id)
    return text


def _check_account_id(account_id: str) -> None:
    if not account_id:
        raise _Rejected("account id is empty")
    if len(account_id) > _MAX_ACCOUNT_ID:
        raise _Rejected(
            f"account id must be at most {_MAX_ACCOUNT_ID} characters, got {len(account_id)}"
        )
    if _has_invisible(account_id):
        raise _Rejected("account id contains whitespace or control characters")


# Control, format (zero-width and bidi marks) and lone surrogates: they make two
# identifiers that look the same tokenize differently.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def _has_invisible(text: str) -> bool:
    return any(c in _WHITE_SPACE or unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in text)
