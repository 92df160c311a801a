"""The README says what the code does: its tables are made from the code."""

from __future__ import annotations

from pathlib import Path

from zonal_dask.stats import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def _between(text: str, marker: str) -> str:
    start = text.index(f"<!-- {marker} -->\n") + len(f"<!-- {marker} -->\n")
    return text[start : text.index(f"<!-- /{marker} -->")].strip()


def test_the_statistics_table_is_the_registry():
    assert _between(README.read_text(), "statistics") == markdown_table()
