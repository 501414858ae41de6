"""Reading Annex A CSV files: recognition, the columns read, and bad rows with file:line."""

from datetime import date
from pathlib import Path

import pytest

from caseclock.importer import LISTS, AnnexList, SourceFile, parse_list_number
from caseclock.importer.models import Severity
from caseclock.importer.reader import ReadResult, read_source

TODAY = date(2026, 11, 20)


def csv_text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def read(name: str, *lines: str, list_number: AnnexList | None = None) -> ReadResult:
    return read_source(SourceFile(name, csv_text(*lines), list_number), TODAY)


def test_a_list_is_recognised_by_its_header_and_only_needed_cells_are_kept() -> None:
    result = read(
        "l7.csv",
        "Child Unique ID,Child Name,Date of Birth,Child Protection Plan Start Date,"
        "Date of the Last Statutory Visit,Date of latest review conference,"
        "Child Protection Plan End Date,Allocated Team,Allocated Worker",
        "LA-1,Zephyrina Quillfeather,01/02/2015,20/09/2025,04/11/2026,,,CPN,SW-1",
    )
    assert result.summary.list_number is AnnexList.CHILD_PROTECTION
    assert (result.summary.columns_read, result.summary.columns_total) == (7, 9)
    assert result.issues == []
    [row] = result.rows
    assert row.case_ref == "LA-1"
    assert (row.team, row.worker, row.line, row.where) == ("CPN", "SW-1", 2, "l7.csv:2")
    assert row.cells == {
        "cpp_start": date(2025, 9, 20),
        "last_visit": date(2026, 11, 4),
        "latest_review": None,
        "cpp_end": None,
    }
    assert "Zephyrina" not in row.model_dump_json()
    assert "2015" not in row.model_dump_json()


def test_census_item_names_and_camel_case_headings_are_accepted() -> None:
    result = read(
        "cp.csv",
        "ChildUniqueID,CPPstartDate,DateOfLastStatutoryVisit,DateOfLatestReviewConf,"
        "AllocatedTeam,AllocatedWorker",
        "LA-2,2026-01-05,2026-11-02,2026-04-01,CPS,Unallocated",
    )
    [row] = result.rows
    assert row.date("latest_review") == date(2026, 4, 1)
    assert row.worker is None


def test_title_rows_above_the_header_are_skipped_and_lines_stay_physical() -> None:
    result = read(
        "refs.csv",
        "Annex A List 3: referrals",
        "",
        "Child Unique ID,Date of referral,Referral NFA?,Allocated Team,Allocated Worker",
        "LA-3,03/11/2026,No,AE,SW-AE-1",
        "",
        "LA-4,05/11/2026,a) Yes,AE,",
    )
    assert [(row.case_ref, row.line, row.flag("referral_nfa")) for row in result.rows] == [
        ("LA-3", 4, False),
        ("LA-4", 6, True),
    ]


def test_each_bad_row_is_reported_with_its_line_and_reason() -> None:
    result = read(
        "list3.csv",
        "Child Unique ID,Child Name,Date of referral,Referral NFA?,Allocated Team,Allocated Worker",
        "LA-10,Ambry Quillon,31/02/2026,No,AE,SW-1",
        "LA-11,Ambry Quillon,02/11/2026,No,Team A (North),SW-1",
        "JaneSmith,Jane Smith,02/11/2026,No,AE,SW-1",
        "LA-12,Ambry Quillon,Jane Smith,No,AE,SW-1",
        "LA-13,Ambry Quillon,2027-01-04,No,AE,SW-1",
        "LA-14,Ambry Quillon,02/11/2026,Perhaps,AE,Sam Worker",
        "LA-15,Ambry Quillon,02/11/2026,No,AE,SW-1",
    )
    assert [row.case_ref for row in result.rows] == ["LA-15"]
    assert [(issue.line, issue.case_ref, issue.reason) for issue in result.issues] == [
        (
            2,
            "LA-10",
            "Date of referral: no such date '31/02/2026' (day is out of range for month)",
        ),
        (
            3,
            "LA-11",
            "Allocated Team: not a team code (letters, digits, '.', '_' or '-', at most 64, "
            "no spaces); map team names to codes before importing",
        ),
        (
            4,
            None,
            "Child Unique ID: not a case reference (letters, digits, '-', '_' or '/', with at "
            "least one digit, at most 64); it may be a name, so it is not shown and the row "
            "is not imported",
        ),
        (5, "LA-12", "Date of referral: not a date; use YYYY-MM-DD or DD/MM/YYYY"),
        (
            6,
            "LA-13",
            "Date of referral: 2027-01-04 is after the import date 2026-11-20; only past "
            "events can be imported",
        ),
        (
            7,
            "LA-14",
            "Referral NFA?: must be Yes, No or blank; Allocated Worker: not a staff code "
            "(letters, digits, '.', '_' or '-', at most 64, no spaces); map worker names to "
            "staff codes before importing",
        ),
    ]
    assert all(issue.severity is Severity.REJECTED for issue in result.issues)
    text = " ".join(str(issue) for issue in result.issues)
    assert "Jane" not in text
    assert "Ambry" not in text
    assert str(result.issues[0]).startswith("list3.csv:2 [LA-10]: ")


def test_dates_that_run_backwards_within_a_row_are_impossible_sequences() -> None:
    result = read(
        "l5.csv",
        "Child Unique ID,Strategy discussion initiating Section 47 Enquiry Start Date,"
        "Was an Initial Child Protection Conference deemed unnecessary?,"
        "Date of Initial Child Protection Conference,Allocated Team,Allocated Worker",
        "LA-20,10/11/2026,,03/11/2026,AW,SW-1",
        "LA-21,10/11/2026,Yes,12/11/2026,AW,SW-1",
    )
    assert [issue.reason for issue in result.issues] == [
        "impossible sequence: Date of Initial Child Protection Conference 2026-11-03 is "
        "before Strategy discussion initiating Section 47 Enquiry Start Date 2026-11-10",
        "impossible sequence: a conference is dated although it was deemed unnecessary",
    ]


def test_a_file_missing_a_required_column_is_refused_whole() -> None:
    result = read(
        "l7.csv",
        "Child Unique ID,Child Protection Plan Start Date,Allocated Team",
        "LA-1,20/09/2025,CPN",
    )
    assert result.rows == []
    [issue] = result.issues
    assert (issue.line, issue.severity) == (1, Severity.REJECTED)
    assert issue.reason == (
        "List 7: child protection: missing column(s) 'Allocated Worker'; "
        "`caseclock import template 7` prints the accepted header"
    )


def test_an_unrecognised_file_says_which_headings_it_looked_for() -> None:
    result = read("people.csv", "Name,Address", "Jane Smith,1 High Street")
    [issue] = result.issues
    assert issue.line is None
    assert issue.reason.startswith("cannot tell which Annex A list this is")
    assert "list 7: 'Child Protection Plan Start Date'" in issue.reason
    assert "Jane" not in issue.reason


def test_an_explicit_list_number_must_match_the_header() -> None:
    header = "Child Unique ID,Date of referral,Allocated Team,Allocated Worker"
    result = read("x.csv", header, list_number=AnnexList.CHILD_PROTECTION)
    assert result.issues[0].reason.startswith("no header of Annex A list 7")


def test_templates_name_every_list_and_parse_list_numbers() -> None:
    assert LISTS[AnnexList.REFERRALS].header() == [
        "Child Unique ID",
        "Date of referral",
        "Referral NFA?",
        "Allocated Team",
        "Allocated Worker",
    ]
    assert parse_list_number("List 7") is AnnexList.CHILD_PROTECTION
    assert parse_list_number("9") is AnnexList.CARE_LEAVERS
    with pytest.raises(ValueError, match="unknown Annex A list '2'"):
        parse_list_number("2")


def test_a_byte_order_mark_from_excel_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "l3.csv"
    path.write_bytes(
        b"\xef\xbb\xbfChild Unique ID,Date of referral,Allocated Team,Allocated Worker\r\n"
        b"LA-5,2026-11-02,AE,SW-1\r\n"
    )
    result = read_source(SourceFile.from_path(path), TODAY)
    assert [row.case_ref for row in result.rows] == ["LA-5"]
