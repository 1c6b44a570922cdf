"""canonical_json is RFC 8785 byte for byte: its fast path (Python's json) and the rfc8785 package agree.

The fast path serves the values events hold (strings, integers, booleans, null, lists,
objects); everything else goes to rfc8785. Generated values of every shape, including
control characters, non-ASCII and astral-plane text, keys that sort differently in UTF-16
and in code points, integers at the edge of a double's exact range, and floats.
"""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from jpr_client.transparency.entry import canonical_json

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # any code point but a lone surrogate
scalars = st.none() | st.booleans() | text | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=20)


@settings(max_examples=600, deadline=None)
@given(values)
def test_the_fast_path_writes_what_rfc8785_writes(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_edge_cases_named() -> None:
    for value in [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 puts the emoji's surrogates (D83D) before U+E000; code points do not
        {"b": "\x00\x1f\x7f\u2028\u2029\"\\/", "a": "张三 ☎"},
        [2**53 - 1, -(2**53 - 1)],
        [2**53, 10**20],  # beyond a double's exact range: rfc8785 decides
        [0.5, 1e21, -0.0],  # floats: rfc8785's ECMAScript number form
        {"nested": {"z": [True, False, None], "a": {}}},
    ]:
        try:
            expected = rfc8785.dumps(value)
        except Exception as error:  # what rfc8785 refuses, canonical_json refuses too
            try:
                canonical_json(value)
            except Exception as ours:
                assert type(ours) is type(error)
                continue
            raise AssertionError(f"{value!r}: rfc8785 refuses it, canonical_json did not") from None
        assert canonical_json(value) == expected, value
