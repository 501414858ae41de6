"""What the importer reads, plans and reports: rows, issues, cases and clocks.

Everything here carries case references, codes, dates and column headings only; no cell
of a column the importer does not read is ever copied into these models.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from caseclock.core.events import CaseEvent
from caseclock.definition.schema import Definition
from caseclock.importer.columns import AnnexList
from workflows.case_types import Allocation

Cell = date | bool | str | None


class Row(BaseModel):
    """One row of an Annex A list, reduced to the cells the importer reads (already checked)."""

    model_config = ConfigDict(frozen=True)

    source: str
    line: int
    list_number: AnnexList
    case_ref: str
    team: str
    worker: str | None
    cells: dict[str, Cell]

    @property
    def where(self) -> str:
        """``file:line`` of the row."""
        return f"{self.source}:{self.line}"

    def date(self, field: str) -> date | None:
        """A date cell (None when blank or not read)."""
        value = self.cells.get(field)
        return value if isinstance(value, date) else None

    def flag(self, field: str) -> bool | None:
        """A yes/no cell (None when blank or unknown)."""
        value = self.cells.get(field)
        return value if isinstance(value, bool) else None

    def text(self, field: str) -> str | None:
        """A coded text cell."""
        value = self.cells.get(field)
        return value if isinstance(value, str) else None


class Severity(StrEnum):
    """How much an issue matters: rejected rows make the import exit 1."""

    REJECTED = "rejected"
    UNSUPPORTED = "unsupported"
    NOTE = "note"


class RowIssue(BaseModel):
    """A problem or remark about a file, a row or a case, with where it came from."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    source: str
    line: int | None
    case_ref: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        case = f" [{self.case_ref}]" if self.case_ref else ""
        return f"{where}{case}: {self.reason}"


class FileSummary(BaseModel):
    """One file read: which list it is and how much of it was used."""

    model_config = ConfigDict(frozen=True)

    source: str
    list_number: AnnexList | None
    rows: int
    columns_read: int
    columns_total: int

    @classmethod
    def unread(cls, source: str) -> "FileSummary":
        """A file that could not be read or recognised."""
        return cls(source=source, list_number=None, rows=0, columns_read=0, columns_total=0)


Standing = Literal["running", "due_soon", "overdue", "escalated"]


class ClockForecast(BaseModel):
    """A clock the case will have running once opened, and where it stands at the import."""

    model_config = ConfigDict(frozen=True)

    clock_id: str
    occurrence: int
    start_date: date
    due_date: date
    standing: Standing
    level_name: str | None
    alert_key: str | None
    # The lists have no column for the event that meets this clock (e.g. core groups), so
    # it runs from its start: check the case and record that event after the import.
    undated_by_lists: bool


class CasePlan(BaseModel):
    """A case the import will open: its allocation, opening events, stages and clocks."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    allocation: Allocation
    events: list[CaseEvent]
    stages: dict[str, str]
    clocks: list[ClockForecast]
    notes: list[str]
    rows: list[str]


class SkippedCase(BaseModel):
    """A case with nothing to keep (closed, or no clock would run): not opened, not an error."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    reason: str
    rows: list[str]


class ImportSummary(BaseModel):
    """The counts a person reads first."""

    model_config = ConfigDict(frozen=True)

    rows_read: int
    cases: int
    cases_by_stage: dict[str, int]
    cases_skipped: int
    cases_rejected: int
    clocks_running: int
    clocks_due_soon: int
    clocks_overdue: int
    clocks_escalated: int
    clocks_undated_overdue: int
    rows_rejected: int
    rows_unsupported: int


class ImportPlan(BaseModel):
    """The dry run: what an import of these files would open, and every issue found."""

    definition: Definition
    today: date
    as_at: datetime
    files: list[FileSummary]
    cases: list[CasePlan]
    skipped: list[SkippedCase]
    rejected_cases: list[str]
    issues: list[RowIssue]

    @property
    def rejected_rows(self) -> list[RowIssue]:
        """Issues that make the import exit 1."""
        return [issue for issue in self.issues if issue.severity is Severity.REJECTED]

    def summary(self) -> ImportSummary:
        """Counts of cases, stages, clocks and issues."""
        by_stage: dict[str, int] = {}
        for case in self.cases:
            stage = case.stages.get("main", "?")
            by_stage[stage] = by_stage.get(stage, 0) + 1
        clocks = [clock for case in self.cases for clock in case.clocks]
        late = [clock for clock in clocks if clock.standing in {"overdue", "escalated"}]
        return ImportSummary(
            rows_read=sum(file.rows for file in self.files),
            cases=len(self.cases),
            cases_by_stage=dict(sorted(by_stage.items())),
            cases_skipped=len(self.skipped),
            cases_rejected=len(self.rejected_cases),
            clocks_running=len(clocks),
            clocks_due_soon=sum(clock.standing == "due_soon" for clock in clocks),
            clocks_overdue=len(late),
            clocks_escalated=sum(clock.standing == "escalated" for clock in clocks),
            clocks_undated_overdue=sum(clock.undated_by_lists for clock in late),
            rows_rejected=len(self.rejected_rows),
            rows_unsupported=sum(issue.severity is Severity.UNSUPPORTED for issue in self.issues),
        )


class CaseOutcome(StrEnum):
    """What applying the plan did to one case."""

    OPENED = "opened"
    ALREADY_OPEN = "already_open"
    ALREADY_CLOSED = "already_closed"
    FAILED = "failed"


class AppliedCase(BaseModel):
    """One case of an applied import."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    outcome: CaseOutcome
    reason: str | None = None


class ImportResult(BaseModel):
    """What an import did: cases opened now, found already open (unchanged), or failed."""

    model_config = ConfigDict(frozen=True)

    cases: list[AppliedCase]

    def count(self, outcome: CaseOutcome) -> int:
        """How many cases had this outcome."""
        return sum(case.outcome is outcome for case in self.cases)

    @property
    def opened(self) -> int:
        """Cases opened by this import."""
        return self.count(CaseOutcome.OPENED)

    @property
    def already_open(self) -> int:
        """Cases that were already open and were left as they were."""
        return self.count(CaseOutcome.ALREADY_OPEN)

    @property
    def failed(self) -> int:
        """Cases that could not be opened (see their reason)."""
        return self.count(CaseOutcome.FAILED)
