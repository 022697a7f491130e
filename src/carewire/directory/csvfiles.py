"""Reading invitation and group CSV files (RFC 4180) and typed e-mail lists (pure: text in).

The file needs a header row naming its columns — ``Email``, ``First Name``,
``Last Name``, ``Department`` — matched case-insensitively and in any order;
other columns are ignored. A row is left out, with its line and the reason,
when an address is malformed or a value is too long; the good rows go on.
A file without a usable header, or beyond the limits, is refused whole.
"""

from __future__ import annotations

import csv
import enum
import io
import re

from carewire.directory.model import (
    CSV_COLUMNS,
    GROUP_NAME_MAX,
    MAX_CSV_CHARS,
    MAX_CSV_ROWS,
    NAME_MAX,
    CsvError,
    CsvProblem,
    CsvRow,
    InvalidEmailError,
)
from carewire.directory.policy import normalize_email

_FIELDS = {
    "email": "email",
    "first name": "first_name",
    "last name": "last_name",
    "department": "department",
}
#: Also accepted in a header, for files exported by other tools.
_ALIASES = {
    "e-mail": "email",
    "email address": "email",
    "first": "first_name",
    "firstname": "first_name",
    "last": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "group": "department",
}
_SEPARATORS = re.compile(r"[\s,;]+")


class CsvKind(enum.Enum):
    """What a file is read for."""

    INVITATIONS = "invitations"  # rows need Email or Department
    GROUPS = "groups"  # rows need Department


def split_emails(text: str) -> list[str]:
    """The addresses of a typed list: separated by spaces, line breaks, commas or semicolons."""
    return [part for part in _SEPARATORS.split(text) if part]


def _header(cells: list[str]) -> dict[int, str]:
    """Column index → field, for the cells naming a known column."""
    found: dict[int, str] = {}
    for i, cell in enumerate(cells):
        key = " ".join(cell.replace("\ufeff", "").strip().lower().split())
        name = _FIELDS.get(key) or _ALIASES.get(key)
        if name is not None and name not in found.values():
            found[i] = name
    return found


def _row_problem(values: dict[str, str], kind: CsvKind) -> str | None:
    for name in ("first_name", "last_name"):
        if len(values[name]) > NAME_MAX:
            label = "First Name" if name == "first_name" else "Last Name"
            return f"{label} is longer than {NAME_MAX} characters."
    if len(values["department"]) > GROUP_NAME_MAX:
        return f"Department is longer than {GROUP_NAME_MAX} characters."
    if any(not v.isprintable() for v in values.values()):
        return "A value holds control characters."
    if kind is CsvKind.GROUPS and not values["department"]:
        return "Department is empty."
    if kind is CsvKind.INVITATIONS and not values["email"] and not values["department"]:
        return "The row has neither Email nor Department."
    return None


def parse_csv(
    text: str, kind: CsvKind = CsvKind.INVITATIONS
) -> tuple[list[CsvRow], list[CsvProblem]]:
    """Read a CSV file's rows.

    Args:
        text: The file, decoded (a UTF-8 byte order mark is ignored).
        kind: Invitations (a row needs Email or Department) or groups (Department).

    Returns:
        The good rows (addresses lower-case, values trimmed) and the problems, in file order.
        Rows with only empty cells are skipped silently.

    Raises:
        CsvError: The file is too big, has no header naming a known column
            (or not the one ``kind`` needs), has more than :data:`MAX_CSV_ROWS`
            rows, or is not CSV at all.
    """
    if len(text) > MAX_CSV_CHARS:
        raise CsvError(f"The CSV file is larger than {MAX_CSV_CHARS // (1024 * 1024)} MB.")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    rows: list[CsvRow] = []
    problems: list[CsvProblem] = []
    columns: dict[int, str] | None = None
    line = 1
    count = 0
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if columns is None:
                columns = _check_header(cells, kind)
                continue
            count += 1
            if count > MAX_CSV_ROWS:
                raise CsvError(f"The CSV file has more than {MAX_CSV_ROWS:,} rows.")
            values = {name: "" for name in _FIELDS.values()}
            for i, name in columns.items():
                if i < len(cells):
                    values[name] = " ".join(cells[i].split())
            problem = _row_problem(values, kind)
            if problem is None and values["email"]:
                try:
                    values["email"] = normalize_email(values["email"])
                except InvalidEmailError:
                    problem = f"Invalid email address: {values['email']}"
            if problem is not None:
                problems.append(CsvProblem(line=start, message=problem))
                continue
            rows.append(CsvRow(line=start, **values))
    except csv.Error as exc:
        raise CsvError(f"The CSV file cannot be read near line {line}: {exc}.") from None
    if columns is None:
        raise CsvError(_needs_header(kind))
    return rows, problems


def _check_header(cells: list[str], kind: CsvKind) -> dict[int, str]:
    columns = _header(cells)
    wanted = "department" if kind is CsvKind.GROUPS else None
    if not columns or (wanted is not None and wanted not in columns.values()):
        raise CsvError(_needs_header(kind))
    if kind is CsvKind.INVITATIONS and not {"email", "department"} & set(columns.values()):
        raise CsvError(_needs_header(kind))
    return columns


def _needs_header(kind: CsvKind) -> str:
    needed = "Department" if kind is CsvKind.GROUPS else "Email (or Department)"
    return (
        f"The CSV file needs a header row naming its columns ({','.join(CSV_COLUMNS)}); "
        f"{needed} is required."
    )
