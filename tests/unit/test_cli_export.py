"""The export's cells and its progress line (the export itself runs against a real registry in tests/integration/test_cli.py)."""

from __future__ import annotations

import pytest

from registry.cli.export import _joined
from registry.cli.output import Progress


def test_a_multi_valued_csv_cell_escapes_the_separator_and_the_escape_inside_items() -> None:
    assert _joined(["sold fakes; twice", "path\\to", "", "张*明"]) == "sold fakes\\; twice;path\\\\to;;张*明"
    assert _joined([]) == ""


def test_progress_redraws_one_stderr_line_when_shown_and_is_silent_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    shown = Progress("listings exported", shown=True)
    shown.add(500)
    shown.add(1000)
    shown.close()
    assert capsys.readouterr() == ("", "\rlistings exported: 500\rlistings exported: 1,500\n")
    silent = Progress("listings exported", shown=False)
    silent.add(3)
    silent.close()
    assert silent.count == 3 and capsys.readouterr() == ("", "")
