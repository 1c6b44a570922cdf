"""E-mail domains follow UTS #46 as WHATWG URL's domain to ASCII does: the e-mail probes of docs/vectors/normalization.json."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from jpr_client import InvalidIdentifier, _email_domain, normalize

KIT = Path(__file__).parents[3] / "docs" / "vectors" / "normalization.json"


def spec_vectors() -> list[tuple[str, str | None, str | None]]:
    """(address, normalized value or None, refusal or None) of the kit's e-mail probes (docs/protocol.md 3.5)."""
    probes = json.loads(KIT.read_text(encoding="utf-8"))["probes"]
    return [(p["input"], p.get("value"), p.get("error")) for p in probes if p["type"] == "email"]


VECTORS = spec_vectors()
ACCEPTED = [(raw, value) for raw, value, _ in VECTORS if value is not None]
REFUSED = [(raw, reason) for raw, value, reason in VECTORS if reason is not None]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED, ids=[v for _, v in ACCEPTED])
def test_the_specs_email_vectors_normalize_to_their_values(raw: str, expected: str) -> None:
    assert normalize("email", raw).value == expected


@pytest.mark.parametrize(("raw", "reason"), REFUSED, ids=[json.dumps(r) for r, _ in REFUSED])
def test_the_specs_refused_email_vectors_are_refused_for_their_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalize("email", raw)
    assert reason in info.value.reason


def test_the_vectors_cover_the_cases_where_the_standards_differ() -> None:
    inputs = " ".join(raw for raw, _, _ in VECTORS)
    for needle in ("ß", "ς", "\u200c", "\u200d", "\u3002", "\uff0e", "\uff61", ".com.", "_", "xn--", "-a.", "a-."):
        assert needle in inputs, f"no vector for {needle!r}"


def test_sharp_s_keeps_its_own_token_instead_of_becoming_ss() -> None:
    # IDNA 2003 and transitional UTS #46 map ß to ss; non-transitional processing keeps it.
    assert normalize("email", "x@straße.de") != normalize("email", "x@strasse.de")


def test_final_sigma_keeps_its_own_token() -> None:
    assert normalize("email", "x@ς.gr") != normalize("email", "x@σ.gr")


def test_an_address_with_a_trailing_dot_is_the_same_identifier() -> None:
    for dot in (".", "\u3002", "\uff0e", "\uff61"):
        assert normalize("email", "a@example.com" + dot) == normalize("email", "a@example.com")


def test_a_unicode_domain_and_its_a_label_are_the_same_identifier() -> None:
    assert normalize("email", "a@Bücher.example") == normalize("email", "a@xn--bcher-kva.example")


def test_a_domain_just_within_the_label_limit_is_kept() -> None:
    assert normalize("email", "a@" + "b" * 63 + ".cn").value == "a@" + "b" * 63 + ".cn"


def test_the_domain_modules_docstring_examples_hold() -> None:
    results = doctest.testmod(_email_domain)
    assert results.attempted > 0 and results.failed == 0
