"""CSV exports: cells that a spreadsheet would read as formulas are written as text."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.security.csv_export import FORMULA_STARTS, SafeDictWriter, neutralise


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_formula_starts_get_an_apostrophe(start: str) -> None:
    assert neutralise(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"


@pytest.mark.parametrize("value", ["Bed 4", "", "a=b", "O'Neil", 42, -5, 1.5, None, True])
def test_other_values_are_unchanged(value: object) -> None:
    assert neutralise(value) == value


@given(st.text())
def test_no_written_cell_starts_like_a_formula(text: str) -> None:
    out = io.StringIO()
    writer = SafeDictWriter(out, ["a", "b"])
    writer.writeheader()
    writer.writerows([{"a": text, "b": "x"}])
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert not row["a"].startswith(FORMULA_STARTS)
    assert row["a"] in (text, "'" + text)
