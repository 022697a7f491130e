"""Reading invitation and group CSV files: header detection, per-line problems, limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.directory.csvfiles import CsvKind, parse_csv, split_emails
from carewire.directory.model import MAX_CSV_ROWS, SAMPLE_CSV, CsvError, CsvProblem, CsvRow


def test_the_sample_file() -> None:
    rows, problems = parse_csv(SAMPLE_CSV)
    assert problems == []
    assert rows == [
        CsvRow(
            line=2,
            email="jdoe@example.org",
            first_name="Jane",
            last_name="Doe",
            department="Cardiology",
        ),
        CsvRow(line=3, email="rroe@example.org", first_name="Richard", last_name="Roe"),
        CsvRow(line=4, department="Physical Therapy"),
    ]


def test_columns_in_any_order_any_case_unknown_ignored_bom_and_quotes() -> None:
    text = (
        "\ufeffdepartment,NOTES,  EMAIL ,last name\n"
        '"Physical Therapy","says ""hi""",JDoe@Example.org,"Doe, Jr."\n'
    )
    rows, problems = parse_csv(text)
    assert problems == []
    assert rows == [
        CsvRow(
            line=2, email="jdoe@example.org", last_name="Doe, Jr.", department="Physical Therapy"
        )
    ]


def test_bad_rows_are_reported_by_line_and_good_rows_kept() -> None:
    text = (
        "Email,First Name,Last Name,Department\n"
        "good@example.org,A,B,\n"
        "not-an-address,C,D,\n"
        "\n"
        ",Only,Names,\n"
        f"long@example.org,{'x' * 65},E,\n"
        f"dept@example.org,,,{'d' * 65}\n"
        '"multi\nline@example.org",F,G,\n'
        "also.good@example.org,,,Ward 3\n"
    )
    rows, problems = parse_csv(text)
    assert [r.email for r in rows] == ["good@example.org", "also.good@example.org"]
    assert [r.line for r in rows] == [2, 10]
    assert problems == [
        CsvProblem(line=3, message="Invalid email address: not-an-address"),
        CsvProblem(line=5, message="The row has neither Email nor Department."),
        CsvProblem(line=6, message="First Name is longer than 64 characters."),
        CsvProblem(line=7, message="Department is longer than 64 characters."),
        CsvProblem(line=8, message="Invalid email address: multi line@example.org"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "jdoe@example.org,Jane,Doe,Cardiology\n",  # no header: the data row is not one
        "Name,Phone\nJane,123\n",
        "First Name,Last Name\nJane,Doe\n",  # neither Email nor Department
    ],
)
def test_files_without_a_usable_header_are_refused(text: str) -> None:
    with pytest.raises(CsvError, match="header row"):
        parse_csv(text)


def test_group_files_need_a_department_column_and_values() -> None:
    with pytest.raises(CsvError, match="Department is required"):
        parse_csv("Email\njdoe@example.org\n", CsvKind.GROUPS)
    rows, problems = parse_csv("Email,Department\njdoe@example.org,\n,ICU\n", CsvKind.GROUPS)
    assert [r.department for r in rows] == ["ICU"]
    assert problems == [CsvProblem(line=2, message="Department is empty.")]


def test_limits() -> None:
    header = "Email\n"
    ok = header + "".join(f"u{i}@example.org\n" for i in range(MAX_CSV_ROWS))
    rows, _ = parse_csv(ok)
    assert len(rows) == MAX_CSV_ROWS
    with pytest.raises(CsvError, match="more than 20,000 rows"):
        parse_csv(ok + "one.more@example.org\n")
    with pytest.raises(CsvError, match="larger than"):
        parse_csv(header + "x" * (8 * 1024 * 1024))


def test_broken_csv_is_refused_with_its_line() -> None:
    with pytest.raises(CsvError, match="line"):
        parse_csv('Email\n"unterminated@example.org\n')


def test_control_characters_are_a_row_problem() -> None:
    _, problems = parse_csv("Email,First Name\na@example.org,Ja\x07ne\n")
    assert problems == [CsvProblem(line=2, message="A value holds control characters.")]


def test_split_emails() -> None:
    assert split_emails(" a@x.org\r\nb@x.org,c@x.org;  d@x.org\t") == [
        "a@x.org",
        "b@x.org",
        "c@x.org",
        "d@x.org",
    ]
    assert split_emails("  \n ") == []


@given(
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=20), max_size=4),
    st.integers(1, 5),
)
def test_arbitrary_text_never_crashes(cells: list[str], rows: int) -> None:
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Email", "First Name", "Last Name", "Department"])
    for _ in range(rows):
        w.writerow(cells)
    try:
        good, problems = parse_csv(out.getvalue())
    except CsvError:
        return
    assert len(good) + len(problems) <= rows
    assert all(r.email == r.email.lower() for r in good)
