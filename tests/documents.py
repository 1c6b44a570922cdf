"""The parts of the Markdown documents that tests check: tables under a heading, fenced code blocks.

Parsed with markdown-it-py (CommonMark, with GitHub's tables), so a table or a block is found as
GitHub renders it, not by a pattern that a reworded line would slip past.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its info string's first word (`sh`), its text, the line it starts on."""

    language: str
    text: str
    line: int


def _tokens(path: Path) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced code block of the document, in order."""
    return [
        Block(token.info.split()[0] if token.info.strip() else "", token.content, (token.map or [0])[0] + 1)
        for token in _tokens(path)
        if token.type == "fence"
    ]


def _section(tokens: list[Token], heading: str) -> list[Token]:
    """The tokens after the heading whose text is `heading`, up to the next heading of its level or above."""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and tokens[index + 1].content == heading:
            level = token.tag
            rest = tokens[index + 3:]
            end = next((i for i, t in enumerate(rest) if t.type == "heading_open" and t.tag <= level), len(rest))
            return rest[:end]
    raise AssertionError(f"no heading {heading!r}")


def _rows(tokens: list[Token]) -> list[list[str]]:
    """The cells of each row of the first table among `tokens`, header first, as Markdown source."""
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(token.content.strip())
        elif token.type == "table_close":
            return rows
    raise AssertionError("no table")


def table(path: Path, heading: str) -> list[dict[str, str]]:
    """The first table in the section `heading` of the document, one dict per row keyed by its header."""
    header, *rows = _rows(_section(_tokens(path), heading))
    return [dict(zip(header, row, strict=True)) for row in rows]
