"""Reading one cell: dates, yes/no, case status, codes. Errors never echo a personal value.

A cell in the wrong column may hold a name, so an error quotes a value only when it looks
like a date (digits and separators), and never quotes an identifier that is not a code.
"""

import re
from datetime import date

from pydantic import TypeAdapter, ValidationError

from caseclock.importer.columns import Column, ColumnKind
from caseclock.importer.models import Cell
from workflows.case_types import CaseRef, Code

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00)?)?$")
_UK = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?: 00:00(?::00)?)?$")
_DATE_LIKE = re.compile(r"^[\d/.: -]{1,20}$")
_CASE_REF = TypeAdapter(CaseRef)
_CODE = TypeAdapter(Code)
_UNALLOCATED = {"", "unallocated", "none", "n/a", "na", "-"}
_YES = {"yes", "y", "a) yes", "true", "1"}
_NO = {"no", "n", "b) no", "false", "0"}
_UNKNOWN = {"", "unknown", "c) unknown", "not known"}


class CellError(ValueError):
    """A cell cannot be read; the message names the column, not the personal value."""


class CaseStatus:
    """Annex A list 6 "Case Status" codes."""

    LOOKED_AFTER = "looked_after"
    CP_PLAN = "cp_plan"
    CIN_PLAN = "cin_plan"
    OPEN_ASSESSMENT = "open_assessment"
    CLOSED = "closed"


_STATUSES = (
    (re.compile(r"^(a\)\s*)?looked after"), CaseStatus.LOOKED_AFTER),
    (re.compile(r"^(b\)\s*)?child protection"), CaseStatus.CP_PLAN),
    (re.compile(r"^(c\)\s*)?child in need"), CaseStatus.CIN_PLAN),
    (re.compile(r"^(d\)\s*)?open assessment"), CaseStatus.OPEN_ASSESSMENT),
    (re.compile(r"^(e\)\s*)?closed"), CaseStatus.CLOSED),
)


def read_cell(column: Column, raw: str, today: date) -> Cell:
    """The typed value of a cell, or raise CellError naming the column and the problem."""
    text = raw.strip()
    match column.kind:
        case ColumnKind.CASE_REF:
            return read_case_ref(column, text)
        case ColumnKind.TEAM:
            return read_team(column, text)
        case ColumnKind.WORKER:
            return read_worker(column, text)
        case ColumnKind.DATE:
            return read_date(column, text, today)
        case ColumnKind.YES_NO:
            return read_yes_no(column, text)
        case ColumnKind.CASE_STATUS:
            return read_case_status(column, text)


def read_case_ref(column: Column, text: str) -> str:
    """A case reference: a code with a digit, never a name (the value is not echoed)."""
    if not text:
        raise CellError(f"{column.heading}: is blank; every row needs the child's identifier")
    try:
        return _CASE_REF.validate_python(text)
    except ValidationError:
        raise CellError(
            f"{column.heading}: not a case reference (letters, digits, '-', '_' or '/', with "
            "at least one digit, at most 64); it may be a name, so it is not shown and the "
            "row is not imported"
        ) from None


def read_team(column: Column, text: str) -> str:
    """A team code."""
    if not text:
        raise CellError(f"{column.heading}: is blank; every case needs a team code")
    try:
        return _CODE.validate_python(text)
    except ValidationError:
        raise CellError(
            f"{column.heading}: not a team code (letters, digits, '.', '_' or '-', at most "
            "64, no spaces); map team names to codes before importing"
        ) from None


def read_worker(column: Column, text: str) -> str | None:
    """A staff code, or None when the case is unallocated."""
    if text.lower() in _UNALLOCATED:
        return None
    try:
        return _CODE.validate_python(text)
    except ValidationError:
        raise CellError(
            f"{column.heading}: not a staff code (letters, digits, '.', '_' or '-', at most "
            "64, no spaces); map worker names to staff codes before importing"
        ) from None


def read_date(column: Column, text: str, today: date) -> date | None:
    """A date as ``YYYY-MM-DD`` or ``DD/MM/YYYY`` (UK order); None when blank."""
    if not text:
        if column.required:
            raise CellError(f"{column.heading}: is blank; this list needs it on every row")
        return None
    iso, uk = _ISO.match(text), _UK.match(text)
    shown = f" {text!r}" if _DATE_LIKE.match(text) else ""
    try:
        if iso:
            value = date(int(iso[1]), int(iso[2]), int(iso[3]))
        elif uk:
            value = date(int(uk[3]), int(uk[2]), int(uk[1]))
        else:
            raise CellError(f"{column.heading}: not a date{shown}; use YYYY-MM-DD or DD/MM/YYYY")
    except ValueError as error:
        if isinstance(error, CellError):
            raise
        raise CellError(f"{column.heading}: no such date{shown} ({error})") from None
    if value > today:
        raise CellError(
            f"{column.heading}: {value.isoformat()} is after the import date "
            f"{today.isoformat()}; only past events can be imported"
        )
    return value


def read_yes_no(column: Column, text: str) -> bool | None:
    """Yes, No, or None for blank/unknown."""
    lowered = text.lower()
    if lowered in _YES:
        return True
    if lowered in _NO:
        return False
    if lowered in _UNKNOWN:
        return None
    raise CellError(f"{column.heading}: must be Yes, No or blank")


def read_case_status(column: Column, text: str) -> str:
    """One of the Annex A list 6 case statuses."""
    lowered = " ".join(text.lower().split())
    for pattern, status in _STATUSES:
        if pattern.match(lowered):
            return status
    raise CellError(
        f"{column.heading}: must be one of a) Looked after child, b) Child Protection plan, "
        "c) Child in need plan, d) Open assessment, e) Closed episode"
    )
