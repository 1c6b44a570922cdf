"""Every kept fuzz input, crashes (fuzz/regressions) and seeds (fuzz/seeds), still ends in a value or a documented error."""

from __future__ import annotations

from pathlib import Path

import pytest

import fuzz.targets
from fuzz.targets import TARGETS, PropertyViolated
from jpr_client import Identifier, IdentifierType
from jpr_client.crypto import dsse

FUZZ = Path(fuzz.targets.__file__).parent
KEPT = ("regressions", "seeds")


def kept_inputs() -> list[tuple[str, Path]]:
    """(target, file) for every file in fuzz/<kept>/<target>/, dotfiles aside."""
    return [
        (folder.name, path)
        for kept in KEPT
        for folder in sorted((FUZZ / kept).iterdir())
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]


@pytest.mark.parametrize(
    ("target", "path"),
    [pytest.param(target, path, id=f"{path.parent.parent.name}/{target}/{path.name}") for target, path in kept_inputs()],
)
def test_a_kept_fuzz_input_ends_in_a_value_or_a_documented_error(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


def test_every_folder_of_kept_inputs_names_a_target() -> None:
    folders = {folder.name for kept in KEPT for folder in (FUZZ / kept).iterdir() if folder.is_dir()}
    assert folders <= TARGETS.keys(), f"no target named {sorted(folders - TARGETS.keys())}"


def test_every_target_has_a_seed() -> None:
    assert {folder.name for folder in (FUZZ / "seeds").iterdir() if folder.is_dir() and any(folder.iterdir())} == TARGETS.keys()


def test_there_is_a_target_for_every_identifier_type() -> None:
    assert {f"normalize_{kind.value}" for kind in IdentifierType} <= TARGETS.keys()


def test_a_normalizer_raising_an_undocumented_error_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(kind: IdentifierType, text: str) -> Identifier:
        raise ValueError("a defect")

    monkeypatch.setattr(fuzz.targets, "normalize", broken)
    with pytest.raises(ValueError, match="a defect"):
        TARGETS["normalize_phone"](b"+8613800138000")


def test_a_normalizer_that_changes_its_own_output_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def drifting(kind: IdentifierType, text: str) -> Identifier:
        return Identifier(kind, text + "0")

    monkeypatch.setattr(fuzz.targets, "normalize", drifting)
    with pytest.raises(PropertyViolated, match="normalizing the normalized value changed it"):
        TARGETS["normalize_cn_ric"](b"110101200001011232")


def test_a_decoder_raising_an_undocumented_error_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: bytes) -> dsse.Envelope:
        raise UnicodeEncodeError("utf-8", "\udc00", 0, 1, "a defect")

    monkeypatch.setattr(dsse, "parse_envelope", broken)
    with pytest.raises(UnicodeEncodeError):
        TARGETS["envelope"](b"{}")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_documented_errors_pass_every_check(target: str) -> None:
    TARGETS[target](b"\xff not an identifier, an envelope or a payload \x00")
