"""The configuration tables say what the code reads: every JPR_* variable, its flag and its default.

The variables come from the settings module's own table (`VARIABLES`: each setting's, computed from
its name, and the commands'), with a second net over the string literals of registry/ and clients/
for a variable read anywhere else. The tests' own variables (`TEST_VARIABLES`) are not documented.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path
from typing import Any

import pytest

from registry.cli import server
from registry.cli.main import build_parser
from registry.settings import COMMAND_VARIABLES, SETTING_VARIABLES, TEST_VARIABLES, VARIABLES, Settings
from tests.documents import ROOT, table

README = ROOT / "README.md"
OPERATIONS = ROOT / "docs" / "operations.md"
TABLES = [(README, "Configuration"), (OPERATIONS, "Settings")]  # each document and the section of its table
NAME = re.compile(r"\bJPR_[A-Z][A-Z0-9_]*\b")


def _literal_names(path: Path) -> set[str]:
    """JPR_* names in the string literals of a module (comments are not read)."""
    strings = (node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(node, ast.Constant))
    return {name for value in strings if isinstance(value, str) for name in NAME.findall(value)}


def variables_the_code_reads() -> set[str]:
    generated = {"_pb2.py", "_pb2_grpc.py"}
    modules = [path for top in ("registry", "clients") for path in (ROOT / top).rglob("*.py")
               if not any(path.name.endswith(end) for end in generated)]
    grepped = {name for path in modules for name in _literal_names(path)}
    return (set(VARIABLES) | grepped) - set(TEST_VARIABLES)


def _documented(path: Path, heading: str) -> dict[str, dict[str, str]]:
    """The table's rows by the variable each names; a row names exactly one."""
    rows: dict[str, dict[str, str]] = {}
    for row in table(path, heading):
        names = NAME.findall(row["variable"])
        assert len(names) == 1, f"{path.name}: a row names one variable, not {row['variable']!r}"
        assert names[0] not in rows, f"{path.name}: {names[0]} has two rows"
        rows[names[0]] = row
    return rows


def _difference(documented: set[str], read: set[str]) -> dict[str, list[str]]:
    return {"missing": sorted(read - documented), "stale": sorted(documented - read)}


def test_the_readme_configuration_table_lists_every_variable_the_code_reads_and_no_other() -> None:
    assert _difference(set(_documented(README, "Configuration")), variables_the_code_reads()) == {"missing": [], "stale": []}


def test_the_operations_guide_settings_table_lists_every_setting_and_no_other() -> None:
    assert _difference(set(_documented(OPERATIONS, "Settings")), set(SETTING_VARIABLES)) == {"missing": [], "stale": []}


def test_the_code_reads_no_variable_its_settings_table_does_not_know() -> None:
    """A variable read outside `VARIABLES` would also be warned about as unknown by `jpr serve`."""
    assert variables_the_code_reads() - set(VARIABLES) == set()


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each option's destination and its long flag, in this parser and every subcommand's."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                flags |= _flags(command)
        elif action.option_strings:
            flags[action.dest] = action.option_strings[-1]
    return flags


def _serve_flags() -> dict[str, str]:
    parser = argparse.ArgumentParser()
    server.configure("serve", parser)
    return {dest: flag for dest, flag in _flags(parser).items() if dest in SETTING_VARIABLES.values()}


def _flag(row: dict[str, str]) -> str:
    return row["flag"].replace("`", "").strip()


@pytest.mark.parametrize(("document", "heading"), TABLES)
def test_each_documented_setting_names_the_flag_jpr_serve_has_for_it(document: Path, heading: str) -> None:
    serve_flags = {variable: _serve_flags().get(setting, "") for variable, setting in SETTING_VARIABLES.items()}
    rows = _documented(document, heading)
    assert {name: _flag(row) for name, row in rows.items() if name in SETTING_VARIABLES} == {
        name: flag for name, flag in serve_flags.items() if name in rows
    }


def test_each_command_variable_names_a_flag_the_commands_have() -> None:
    rows = _documented(README, "Configuration")
    every_flag = set(_flags(build_parser()).values())
    flags = {name: _flag(rows[name]) for name in COMMAND_VARIABLES if name in rows}
    assert {name: flag for name, flag in flags.items() if flag not in every_flag} == {}


def stated_default(cell: str) -> str | None:
    """The value a default cell states, or None where it describes one in words.

    A stated default is a number or one `literal`, optionally followed by an explanation in parentheses:
    `4`, `0.2 (how often ...)`, `` `INFO` (or ...) ``. `SQLite file ... in the data directory` states none.
    """
    value = re.sub(r"\s*\(.*\)$", "", cell.strip())
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    literal = re.fullmatch(r"`([^`]+)`", value)
    return literal.group(1) if literal else None


def _as_setting(text: str, default: Any) -> Any:
    return type(default)(text)  # int("4"), float("0.2"), Path("./jpr-data"), str("INFO")


@pytest.mark.parametrize(("document", "heading"), TABLES)
def test_each_documented_default_is_the_settings_default(document: Path, heading: str) -> None:
    defaults = Settings()
    stated = {name: stated_default(row["default"]) for name, row in _documented(document, heading).items()}
    wrong = {
        name: (text, getattr(defaults, SETTING_VARIABLES[name]))
        for name, text in stated.items()
        if text is not None and name in SETTING_VARIABLES
        and _as_setting(text, getattr(defaults, SETTING_VARIABLES[name])) != getattr(defaults, SETTING_VARIABLES[name])
    }
    assert wrong == {}


@pytest.mark.parametrize(("document", "heading"), TABLES)
def test_each_numeric_default_is_stated_as_a_number_so_it_is_compared(document: Path, heading: str) -> None:
    defaults = Settings()
    rows = _documented(document, heading)
    numeric = [name for name, setting in SETTING_VARIABLES.items() if isinstance(getattr(defaults, setting), (int, float))]
    assert [name for name in numeric if name in rows and stated_default(rows[name]["default"]) is None] == []
