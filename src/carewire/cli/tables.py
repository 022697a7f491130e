"""Tables for the terminal: columns under a header, fitted to the terminal's width.

The width is ``COLUMNS`` when set, else the terminal's when standard output is
one (:func:`shutil.get_terminal_size`); output to a pipe or a file is not cut,
so scripts get every character. When the natural widths do not fit, the widest
columns give way first, down to :data:`MIN_WIDTH`; a cut cell ends with ``…``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

#: Between two columns.
GAP = "  "
#: The narrowest a column is cut to (a header may be cut too).
MIN_WIDTH = 6
#: The mark a cut cell ends with.
MARK = "…"


def terminal_width() -> int | None:
    """The width to fit tables to, or None (not a terminal and no ``COLUMNS``: do not cut)."""
    if os.environ.get("COLUMNS", "").strip().isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, ending with ``…`` when cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + MARK


def fit(natural: Sequence[int], width: int) -> list[int]:
    """Column widths summing (with the gaps) to at most ``width``: the widest give way first.

    Columns never go below :data:`MIN_WIDTH` (or their natural width, when smaller),
    so a table of many columns may still be wider than ``width``.
    """
    widths = list(natural)
    room = width - len(GAP) * (len(widths) - 1)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= MIN_WIDTH:
            break
        second = max((w for i, w in enumerate(widths) if i != widest), default=0)
        step = min(sum(widths) - room, max(widths[widest] - second, 1), widths[widest] - MIN_WIDTH)
        widths[widest] -= step
    return widths


def render(rows: Sequence[Sequence[object]], header: Sequence[str], width: int | None) -> list[str]:
    """The lines of a table; ``width`` None: natural widths (the last column not padded)."""
    cells = [list(header), *[["" if c is None else str(c) for c in r] for r in rows]]
    cells = [[" ".join(c.split()) if "\n" in c else c for c in r] for r in cells]
    natural = [max(len(r[i]) for r in cells) for i in range(len(header))]
    widths = natural if width is None else fit(natural, width)
    lines = []
    for r in cells:
        shown = [cut(c, w) for c, w in zip(r, widths, strict=True)]
        padded = [c.ljust(w) for c, w in zip(shown[:-1], widths, strict=False)]
        lines.append(GAP.join([*padded, shown[-1]]).rstrip())
    return lines


def print_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    """Print ``rows`` under ``header``, fitted to the terminal (see :func:`terminal_width`)."""
    for line in render(rows, header, terminal_width()):
        print(line)
