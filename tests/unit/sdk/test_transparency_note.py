"""C2SP signed notes: Go's sumdb/note examples and the spec's own, signed and opened as Go's note.Open does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jpr_client.transparency.note import (
    MAX_SIGNATURES,
    NoteError,
    Signer,
    Verifier,
    add_signature_lines,
    generate_signer_key,
    key_hash,
    open_note,
    sign_note,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parents[3] / "docs" / "vectors" / "note.json").read_text(encoding="utf-8"))
KEYS = {label: Verifier.from_key_string(key["verifier_key"]) for label, key in VECTORS["keys"].items()}
PETER = Signer.from_key_string(VECTORS["keys"]["peter"]["signer_key_TEST_ONLY"])


def test_verifier_keys_parse_to_their_name_and_key_hash_and_print_back() -> None:
    for label, key in VECTORS["keys"].items():
        verifier = KEYS[label]
        assert (verifier.name, verifier.key_hash.hex(), verifier.alg) == (key["name"], key["key_hash"], 1)
        assert verifier.key_string() == key["verifier_key"]
        assert key_hash(verifier.name, bytes([1]) + verifier.public_key.public_bytes_raw()) == verifier.key_hash


@pytest.mark.parametrize("bad", VECTORS["bad_verifier_keys"], ids=lambda bad: str(bad["why"]))
def test_bad_verifier_keys_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(NoteError):
        Verifier.from_key_string(bad["key"])


def test_every_mangling_of_a_verifier_key_is_refused() -> None:
    """Go's TestNewVerifier: every proper substring and every single-byte change."""
    vkey = VECTORS["keys"]["peter"]["verifier_key"]
    mangled = {vkey[i:j] for i in range(len(vkey) + 1) for j in range(i + 1, len(vkey) + 1)} - {vkey}
    mangled |= {vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:] for i in range(len(vkey))}
    for key in mangled:
        with pytest.raises(NoteError):
            Verifier.from_key_string(key)


def test_the_go_signer_key_signs_the_published_note() -> None:
    assert PETER.verifier() == KEYS["peter"]
    for signed in VECTORS["signed"]:
        assert sign_note(signed["text"], [PETER]) == signed["note"]


@pytest.mark.parametrize("case", VECTORS["open"], ids=lambda case: str(case["source"]))
def test_opening_published_notes(case: dict[str, Any]) -> None:
    verifiers = [KEYS[label] for label in case["verifiers"]]
    if "error" in case:
        with pytest.raises(NoteError, match=case["error"].replace("+", r"\+").replace("(", r"\(")):
            open_note(case["note"], verifiers)
        return
    opened = open_note(case["note"], verifiers)
    assert opened.text == case["text"]
    assert opened.verified == tuple(KEYS[label] for label in case["verified"])
    assert "".join(opened.signature_lines) == case["note"][len(case["text"]) + 1:]


def test_generated_keys_sign_and_open_and_keep_unknown_signatures() -> None:
    skey, vkey = generate_signer_key("log.jpr.test/checkpoints")
    assert skey.startswith("PRIVATE+KEY+log.jpr.test/checkpoints+") and vkey.startswith("log.jpr.test/checkpoints+")
    log = Signer.from_key_string(skey)
    other = Signer("other.test", Ed25519PrivateKey.generate())
    note = sign_note("tree head\n", [log, other])
    opened = open_note(note, [Verifier.from_key_string(vkey)])
    assert opened.verified == (log.verifier(),) and len(opened.signature_lines) == 2


def test_a_signer_key_with_the_wrong_hash_is_refused_without_echoing_the_key() -> None:
    skey, _ = generate_signer_key("log.jpr.test")
    name, _, rest = skey[len("PRIVATE+KEY+"):].partition("+")
    secret = rest.partition("+")[2]
    for bad in (f"PRIVATE+KEY+{name}+00000000+{secret}", f"PRIVATE+KEY+{name}+{rest}x", skey.replace("PRIVATE", "PUBLIC")):
        with pytest.raises(NoteError) as refused:
            Signer.from_key_string(bad)
        assert secret not in str(refused.value)


def test_signing_refuses_text_without_final_newline_or_with_control_characters() -> None:
    with pytest.raises(NoteError, match="ends with a newline"):
        sign_note("no newline", [PETER])
    with pytest.raises(NoteError, match="control character"):
        sign_note("tab\there\n", [PETER])


def test_a_line_separator_inside_a_signature_line_is_not_a_line_break() -> None:
    note = sign_note("text\n", [PETER])
    with pytest.raises(NoteError):
        open_note(note[:-1] + "\u2028\n", [PETER.verifier()])


def test_adding_signature_lines_keeps_the_note_and_skips_lines_it_has() -> None:
    other = Signer("witness.test", Ed25519PrivateKey.generate())
    note = sign_note("text\n", [PETER])
    other_line = sign_note("text\n", [other]).split("\n\n", 1)[1]
    added = add_signature_lines(note, [other_line, other_line, note.split("\n\n", 1)[1]])
    assert added == note + other_line
    assert open_note(added, [PETER.verifier(), other.verifier()]).verified == (PETER.verifier(), other.verifier())
    with pytest.raises(NoteError):
        add_signature_lines(note, ["not a signature line\n"])
    many = [sign_note("text\n", [Signer(f"w{i}.test", Ed25519PrivateKey.generate())]).split("\n\n", 1)[1] for i in range(MAX_SIGNATURES)]
    with pytest.raises(NoteError, match="at most 100"):
        add_signature_lines(note, many)


def test_two_different_keys_with_one_name_and_hash_are_ambiguous_only_when_used() -> None:
    impostor = Verifier(PETER.name, Ed25519PrivateKey.generate().public_key())
    impostor.key_hash = PETER.key_hash  # a 32-bit key ID collides easily; the verifier set must say so
    note = sign_note("text\n", [PETER])
    with pytest.raises(NoteError, match="configure only one"):
        open_note(note, [PETER.verifier(), impostor])
    assert open_note(note, [PETER.verifier(), PETER.verifier()]).verified == (PETER.verifier(),)
