"""The domain of an e-mail address to ASCII, as docs/protocol.md section 3.5 defines it.

UTS #46 non-transitional processing with the options of the WHATWG URL Standard's
domain to ASCII (CheckHyphens off, CheckBidi on, CheckJoiners on, UseSTD3ASCIIRules
off, VerifyDnsLength off), so that Node's ``url.domainToASCII``, browsers and other
UTS #46 libraries produce the same A-labels; then the rules of a host name, which
WHATWG leaves to the scheme: one trailing dot dropped, no other empty label, labels
of letters, digits and inner hyphens, 1 to 63 octets.

``idna.encode`` is not used as is: it applies IDNA 2008's code point classes and
hyphen rules instead of UTS #46 validity, and checks the bidi rule only on
right-to-left labels. Its mapping table and context rules are used piecewise below.
"""

from __future__ import annotations

import re
import unicodedata

import idna

__all__ = ["InvalidDomain", "domain_to_ascii"]

_ACE_PREFIX = "xn--"
_MAX_LABEL_OCTETS = 63
_JOINERS = frozenset("\u200c\u200d")
_RTL_DIRECTIONS = frozenset({"R", "AL", "AN"})
_HOST_NAME_ASCII = re.compile(r"[a-z0-9-]")


class InvalidDomain(ValueError):
    """A domain refused; ``reason`` never quotes it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def domain_to_ascii(domain: str) -> str:
    """The A-label form of ``domain``, without a trailing dot.

    >>> domain_to_ascii("Bücher。Example.")
    'xn--bcher-kva.example'
    """
    labels = [_to_unicode(label) for label in _split(_map(domain))]
    for label in labels:
        _check_label(label)
    _check_bidi(labels)
    return ".".join(_to_ascii(label) for label in labels)


def _map(domain: str) -> str:
    """UTS #46 steps 1 and 2: map with the IDNA mapping table, then NFC."""
    try:
        return idna.uts46_remap(domain, std3_rules=False)
    except idna.IDNAError as exc:
        reason = "domain is too long" if exc.code == "input_too_long" else _DISALLOWED
    # Raised here, not in the handler: idna's message quotes the domain.
    raise InvalidDomain(reason)


_DISALLOWED = "domain contains a code point that UTS #46 disallows"


def _split(domain: str) -> list[str]:
    """Labels at U+002E; one final empty label (a trailing dot) is dropped."""
    labels = domain.split(".")
    if len(labels) > 1 and not labels[-1]:
        labels.pop()
    if not all(labels):
        raise InvalidDomain("domain has an empty label")
    return labels


def _to_unicode(label: str) -> str:
    """UTS #46 step 4: a label starting with xn-- is replaced by its Punycode decoding."""
    if not label.startswith(_ACE_PREFIX):
        return label
    encoded = label[len(_ACE_PREFIX) :]
    decoded = _punycode_decode(encoded)
    if decoded.isascii() or decoded.startswith(_ACE_PREFIX):
        raise InvalidDomain("domain has an xn-- label that does not encode a non-ASCII label")
    # Decoded labels are not mapped, so they must be what mapping would leave alone.
    if _punycode_encode(decoded) != encoded or _remapped(decoded) != decoded:
        raise InvalidDomain("domain has an xn-- label that is not a valid A-label")
    return decoded


def _punycode_decode(encoded: str) -> str:
    if encoded.isascii():
        try:
            return encoded.encode("ascii").decode("punycode")
        except UnicodeError:
            pass
    raise InvalidDomain("domain has an xn-- label that is not valid Punycode")


def _punycode_encode(label: str) -> str:
    return label.encode("punycode").decode("ascii")


def _remapped(label: str) -> str | None:
    try:
        return idna.uts46_remap(label, std3_rules=False)
    except idna.IDNAError:
        return None


def _check_label(label: str) -> None:
    """UTS #46 validity criteria left after mapping, then the host-name rule."""
    if unicodedata.category(label[0]).startswith("M"):
        raise InvalidDomain("a domain label must not start with a combining mark")
    if any(unicodedata.category(c) == "Cn" for c in label):
        raise InvalidDomain("domain contains a code point this Unicode version does not assign")
    if not all(_joiner_in_context(label, i) for i, c in enumerate(label) if c in _JOINERS):
        raise InvalidDomain("domain has a zero-width joiner or non-joiner outside the contexts RFC 5892 allows")
    _check_host_name(label)


def _joiner_in_context(label: str, position: int) -> bool:
    try:
        return idna.valid_contextj(label, position)
    except ValueError:  # a neighbour unknown to this Unicode version
        return False


def _check_host_name(label: str) -> None:
    if not all(_HOST_NAME_ASCII.match(c) for c in label if c.isascii()):
        raise InvalidDomain("domain labels may hold only letters, digits and hyphens")
    if label.startswith("-") or label.endswith("-"):
        raise InvalidDomain("a domain label must not start or end with a hyphen")


def _check_bidi(labels: list[str]) -> None:
    """CheckBidi: in a domain with any right-to-left label, every label obeys RFC 5893."""
    if not any(unicodedata.bidirectional(c) in _RTL_DIRECTIONS for label in labels for c in label):
        return
    try:
        for label in labels:
            idna.check_bidi(label, check_ltr=True)
    except idna.IDNAError:
        pass
    else:
        return
    raise InvalidDomain("domain breaks the bidi rule of RFC 5893")


def _to_ascii(label: str) -> str:
    ascii_label = label if label.isascii() else _ACE_PREFIX + _punycode_encode(label)
    if len(ascii_label) > _MAX_LABEL_OCTETS:
        raise InvalidDomain(f"a domain label is longer than {_MAX_LABEL_OCTETS} octets")
    return ascii_label
