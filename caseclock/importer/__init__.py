"""Import an existing caseload from Ofsted ILACS Annex A lists 3 to 9 (CSV).

Two steps, so that a person (or an upload endpoint) sees what will happen first:

``plan_import(files, definition, today) -> ImportPlan``
    Pure dry run: reads only the columns it needs, groups rows into cases, builds each
    case's opening events and runs them through the core to show stages, clocks, due dates
    and the alerts that would go out at once. Every issue carries its file and line.

``await apply_import(plan, client, task_queue, now) -> ImportResult``
    Opens the planned cases through ``caseclock.cases.open_case``; a case already known to
    Temporal is left unchanged, so importing the same files twice changes nothing.

``docs/IMPORT.md`` lists the columns accepted and how each list maps to events and clocks.
"""

from caseclock.importer.apply import apply_import
from caseclock.importer.columns import LISTS, AnnexList, parse_list_number
from caseclock.importer.models import (
    CaseOutcome,
    CasePlan,
    ClockForecast,
    ImportPlan,
    ImportResult,
    ImportSummary,
    RowIssue,
    Severity,
)
from caseclock.importer.plan import UnsuitableDefinitionError, plan_import
from caseclock.importer.reader import SourceFile
from caseclock.importer.report import plan_report, result_report

__all__ = [
    "LISTS",
    "AnnexList",
    "CaseOutcome",
    "CasePlan",
    "ClockForecast",
    "ImportPlan",
    "ImportResult",
    "ImportSummary",
    "RowIssue",
    "Severity",
    "SourceFile",
    "UnsuitableDefinitionError",
    "apply_import",
    "parse_list_number",
    "plan_import",
    "plan_report",
    "result_report",
]
