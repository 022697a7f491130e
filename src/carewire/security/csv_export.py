"""CSV exports that a spreadsheet opens as data, never as formulas (CSV injection).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is read by spreadsheet programs as a formula (or as the start of one),
which can run commands or send the sheet's contents elsewhere when an
administrator opens an export. Such a cell gets a leading apostrophe, the
spreadsheet's "this is text" marker, so it is shown as written. Numbers are
left alone: a negative number is a number, not a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

#: The first characters that make a spreadsheet cell a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """``value`` made safe for a CSV cell: text starting like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeDictWriter:
    """:class:`csv.DictWriter` whose every text cell goes through :func:`neutralise`."""

    def __init__(self, out: TextIO, columns: Sequence[str], **kwargs: Any) -> None:
        """Write rows with ``columns`` to ``out`` (``kwargs`` as for :class:`csv.DictWriter`)."""
        self._writer = csv.DictWriter(out, columns, **kwargs)

    def writeheader(self) -> None:
        """The header row."""
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, object]) -> None:
        """One row."""
        self._writer.writerow({key: neutralise(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, object]]) -> None:
        """Several rows."""
        for row in rows:
            self.writerow(row)
