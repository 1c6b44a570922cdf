"""C2SP checkpoints: the body is exactly the spec's three lines and extensions, and parsing accepts only that form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jpr_client.transparency.checkpoint import Checkpoint, CheckpointError
from jpr_client.transparency.merkle import EMPTY_ROOT
from jpr_client.transparency.note import NoteError, Verifier, open_note

COSIGNATURES: dict[str, Any] = json.loads((Path(__file__).parents[3] / "docs" / "vectors" / "cosignature.json").read_text(encoding="utf-8"))
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_the_spec_example_checkpoint_parses_and_prints_back() -> None:
    checkpoint = Checkpoint.parse(COSIGNATURES["spec_example"]["note"].split("\n\n")[0] + "\n")
    assert (checkpoint.origin, checkpoint.size, checkpoint.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert checkpoint.body() == SPEC_BODY


def test_extension_lines_are_kept_in_order() -> None:
    checkpoint = Checkpoint.parse(SPEC_BODY + "first\nsecond\n")
    assert checkpoint.extensions == ("first", "second") and checkpoint.body() == SPEC_BODY + "first\nsecond\n"


def test_the_empty_tree_is_size_zero() -> None:
    assert Checkpoint.parse(Checkpoint("log.jpr.test", 0, EMPTY_ROOT).body()).size == 0


@pytest.mark.parametrize("text", [
    SPEC_BODY[:-1],                                       # no final newline
    "example.com/log\n20852163\n",                        # no root hash line
    SPEC_BODY.replace("20852163", "020852163"),           # leading zero
    SPEC_BODY.replace("20852163", "+20852163"),
    SPEC_BODY.replace("20852163", "２０"),               # not ASCII digits
    SPEC_BODY.replace("20852163", "9223372036854775808"),  # beyond 2^63 - 1
    SPEC_BODY.replace("20852163", ""),
    "\n" + SPEC_BODY.split("\n", 1)[1],                   # empty origin
    SPEC_BODY.replace("2I=", "2I"),                       # unpadded base64
    SPEC_BODY.replace("2I=", "2J="),                      # non-canonical trailing bits
    SPEC_BODY.replace("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "AAAA"),  # 3 bytes, not 32
    SPEC_BODY + "\n",                                     # an empty extension line
])
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_a_checkpoint_error_is_a_note_error_and_a_value_error() -> None:
    assert issubclass(CheckpointError, NoteError) and issubclass(CheckpointError, ValueError)


def test_fields_are_checked_when_built() -> None:
    for arguments in (("", 1, EMPTY_ROOT), ("o", -1, EMPTY_ROOT), ("o", 1, b"short"), ("a\nb", 1, EMPTY_ROOT)):
        with pytest.raises(CheckpointError):
            Checkpoint(*arguments)
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, EMPTY_ROOT, ("",))


def test_a_cosigned_checkpoint_opens_with_the_witness_key_alone() -> None:
    jpr = COSIGNATURES["jpr"]
    cosignature = jpr["cosignatures"][0]
    note = cosignature["checkpoint_body"] + "\n" + cosignature["signature_line"]
    opened = open_note(note, [Verifier.from_key_string(jpr["verifier_key"])])
    assert Checkpoint.parse(opened.text).size == 20852163
