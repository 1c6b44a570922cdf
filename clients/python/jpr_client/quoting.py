"""How JPR's error messages quote text they were given: bounded, so a refusal always fits its trailer."""

from __future__ import annotations

__all__ = ["QUOTED_CHARACTERS", "quoted"]

QUOTED_CHARACTERS = 64  # a key id, a UUID, a member name or a payload type fits whole


def quoted(text: str) -> str:
    """Request text as an error message quotes it: whole when short, else a bounded prefix and its length.

    The message travels in the `grpc-message` trailer; quoting a 60,000-character
    field whole would exceed the metadata size limit and turn the refusal into a
    transport failure. The bound holds for the quotation as written, escapes included.
    """
    shown = text[:QUOTED_CHARACTERS]
    while len(repr(shown)) > QUOTED_CHARACTERS + 2:  # two quote marks; "\x00" and "\U000e0001" count in full
        shown = shown[:-1]
    if shown == text:
        return repr(text)
    return f"{shown!r}... ({len(text):,} characters)"
