"""Read Annex A CSV files into rows of the few cells the importer needs.

Each file is recognised by its header (the heading only its list has). The header row may
follow a few title rows, as in spreadsheets saved to CSV. Cells of columns the importer does
not read are never kept: a row becomes a :class:`Row` holding only the listed columns.
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from caseclock.importer.columns import (
    LISTS,
    AnnexList,
    Column,
    ListSpec,
    normalise_heading,
    recognise,
)
from caseclock.importer.models import Cell, FileSummary, Row, RowIssue, Severity
from caseclock.importer.values import CellError, read_cell

# How many rows above the header a spreadsheet export may have (titles, notes).
MAX_TITLE_ROWS = 10


@dataclass(frozen=True)
class SourceFile:
    """A CSV file's name (for reports) and text; ``list_number`` overrides recognition."""

    name: str
    text: str
    list_number: AnnexList | None = None

    @classmethod
    def from_path(cls, path: Path, list_number: AnnexList | None = None) -> "SourceFile":
        """Read a file saved as CSV UTF-8 (with or without a byte-order mark).

        Raises:
            UnicodeDecodeError: If the file is not UTF-8.

        """
        return cls(str(path), path.read_text(encoding="utf-8-sig"), list_number)

    @classmethod
    def from_bytes(
        cls, name: str, data: bytes, list_number: AnnexList | None = None
    ) -> "SourceFile":
        """An uploaded file; undecodable bytes become a file-level issue when read."""
        return cls(name, data.decode("utf-8-sig", errors="replace"), list_number)


@dataclass
class ReadResult:
    """The rows read from one file, and its issues."""

    summary: FileSummary
    rows: list[Row] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)


def read_source(source: SourceFile, today: date) -> ReadResult:
    """Read one file: recognise its list, then check and reduce every row."""
    records = list(csv.reader(io.StringIO(source.text)))
    found = _find_header(source, records)
    if isinstance(found, RowIssue):
        return ReadResult(FileSummary.unread(source.name), issues=[found])
    header_index, number = found
    spec = LISTS[number]
    header = records[header_index]
    positions, missing = _positions(spec, header)
    summary = FileSummary(
        source=source.name,
        list_number=number,
        rows=0,
        columns_read=len(positions),
        columns_total=len(header),
    )
    if missing:
        names = ", ".join(repr(column.heading) for column in missing)
        issue = RowIssue(
            severity=Severity.REJECTED,
            source=source.name,
            line=_line_of(records, header_index),
            case_ref=None,
            reason=f"{spec.title}: missing column(s) {names}; "
            f"`caseclock import template {number.value}` prints the accepted header",
        )
        return ReadResult(summary, issues=[issue])
    result = ReadResult(summary)
    line, previous = _line_of(records, header_index), header
    for record in records[header_index + 1 :]:
        line += 1 + sum(cell.count("\n") for cell in previous)
        previous = record
        if not any(cell.strip() for cell in record):
            continue
        result.summary = result.summary.model_copy(update={"rows": result.summary.rows + 1})
        row_or_issue = _read_row(source.name, line, spec, positions, record, today)
        if isinstance(row_or_issue, Row):
            result.rows.append(row_or_issue)
        else:
            result.issues.append(row_or_issue)
    return result


def _line_of(records: list[list[str]], index: int) -> int:
    """The physical line (1-based) of a record, counting line breaks inside quoted cells."""
    return index + 1 + sum(cell.count("\n") for record in records[:index] for cell in record)


def _find_header(source: SourceFile, records: list[list[str]]) -> tuple[int, AnnexList] | RowIssue:
    for index, record in enumerate(records[:MAX_TITLE_ROWS]):
        lists = recognise(record)
        if source.list_number is not None and source.list_number in lists:
            return index, source.list_number
        if len(lists) == 1 and source.list_number is None:
            return index, lists[0]
    expected = "; ".join(
        f"list {number.value}: {spec.column(spec.key_field).heading!r}"
        for number, spec in LISTS.items()
    )
    what = (
        f"no header of Annex A list {source.list_number.value}"
        if source.list_number is not None
        else "cannot tell which Annex A list this is"
    )
    return RowIssue(
        severity=Severity.REJECTED,
        source=source.name,
        line=None,
        case_ref=None,
        reason=f"{what} (looked for a header in the first {MAX_TITLE_ROWS} rows with one of "
        f"{expected})",
    )


def _positions(spec: ListSpec, header: list[str]) -> tuple[dict[str, int], list[Column]]:
    """Where each column the list needs sits in the header, and the required ones missing."""
    normalised = [normalise_heading(heading) for heading in header]
    positions: dict[str, int] = {}
    missing: list[Column] = []
    for column in spec.columns:
        names = set(column.names())
        index = next((i for i, name in enumerate(normalised) if name in names), None)
        if index is not None:
            positions[column.field] = index
        elif column.required:
            missing.append(column)
    return positions, missing


def _read_row(
    source: str,
    line: int,
    spec: ListSpec,
    positions: dict[str, int],
    record: list[str],
    today: date,
) -> Row | RowIssue:
    cells: dict[str, Cell] = {}
    problems: list[str] = []
    for column in spec.columns:
        index = positions.get(column.field)
        raw = record[index] if index is not None and index < len(record) else ""
        try:
            cells[column.field] = read_cell(column, raw, today)
        except CellError as error:
            problems.append(str(error))
    case_ref = cells.get("case_ref")
    known_ref = case_ref if isinstance(case_ref, str) else None
    problems += _row_sequence_problems(spec, cells)
    if problems:
        return RowIssue(
            severity=Severity.REJECTED,
            source=source,
            line=line,
            case_ref=known_ref,
            reason="; ".join(problems),
        )
    team, worker = cells.pop("team"), cells.pop("worker")
    assert isinstance(known_ref, str)  # noqa: S101 (no problems means it was read)
    assert isinstance(team, str)  # noqa: S101
    return Row(
        source=source,
        line=line,
        list_number=spec.number,
        case_ref=known_ref,
        team=team,
        worker=worker if isinstance(worker, str) else None,
        cells={key: value for key, value in cells.items() if key != "case_ref"},
    )


# Dates within one row that must not run backwards: (earlier field, later field).
_ROW_ORDER: dict[AnnexList, tuple[tuple[str, str], ...]] = {
    AnnexList.ASSESSMENTS: (("assessment_start", "assessment_authorised"),),
    AnnexList.SECTION_47: (("s47_start", "icpc_date"),),
    AnnexList.CHILDREN_IN_NEED: (
        ("cin_start", "cin_closure"),
        ("cin_start", "cin_plan_start"),
        ("cin_plan_start", "cin_closure"),
    ),
    AnnexList.CHILD_PROTECTION: (
        ("cpp_start", "last_visit"),
        ("cpp_start", "latest_review"),
        ("cpp_start", "cpp_end"),
        ("last_visit", "cpp_end"),
        ("latest_review", "cpp_end"),
    ),
}


def _row_sequence_problems(spec: ListSpec, cells: dict[str, Cell]) -> list[str]:
    problems = []
    for earlier, later in _ROW_ORDER.get(spec.number, ()):
        first, then = cells.get(earlier), cells.get(later)
        if isinstance(first, date) and isinstance(then, date) and then < first:
            problems.append(
                f"impossible sequence: {spec.column(later).heading} {then.isoformat()} is "
                f"before {spec.column(earlier).heading} {first.isoformat()}"
            )
    if (
        spec.number is AnnexList.SECTION_47
        and cells.get("icpc_not_required") is True
        and isinstance(cells.get("icpc_date"), date)
    ):
        problems.append(
            "impossible sequence: a conference is dated although it was deemed unnecessary"
        )
    return problems
