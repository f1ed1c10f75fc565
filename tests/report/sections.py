"""Reading a report section and its ranking table back, for the section tests."""

from __future__ import annotations

from pathlib import Path


def section(run: Path, title: str) -> str:
    """The body of ``report.md``'s section ``title`` (which must appear once)."""
    text = (run / "report.md").read_text(encoding="utf-8")
    assert text.count(title) == 1
    return text.split(title, 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of the body rows of the Markdown table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
