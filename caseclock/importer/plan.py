"""The dry run: read the files, translate each case, and run it through the pure core.

``plan_import`` does no I/O beyond reading the files it is given and no Temporal call: it
computes, with the same core the workflow runs, each case's stages, running clocks, due
dates, and which alerts would go out at once when the case is opened today.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from pathlib import Path

from caseclock.calendar import LONDON, WorkingCalendar
from caseclock.cases import calendar_for
from caseclock.core.actions import AlertState, NotifyAction
from caseclock.core.engine import apply_event, due_alerts, start_case
from caseclock.core.events import EventRejectedError
from caseclock.core.state import CaseState
from caseclock.definition.schema import Definition
from caseclock.importer.chain import Chain, RejectedCaseError
from caseclock.importer.columns import LISTS, AnnexList
from caseclock.importer.models import (
    CasePlan,
    ClockForecast,
    FileSummary,
    ImportPlan,
    Row,
    RowIssue,
    Severity,
    SkippedCase,
    Standing,
)
from caseclock.importer.reader import SourceFile, read_source
from caseclock.importer.stage import Latest, Skip
from caseclock.importer.translate import translate
from caseclock.importer.values import CaseStatus
from workflows.case_types import Allocation

# Events whose happening the lists show, by a date or by what followed. A running clock met
# only by other events (core groups, CIN plan reviews) cannot be shown as met by the lists.
EVIDENCED_BY_LISTS = frozenset(
    {
        "referral_received",
        "referral_decision",
        "significant_harm_concern",
        "strategy_discussion_held",
        "s47_concluded",
        "icpc_held",
        "assessment_completed",
        "cp_visit",
        "rcpc_held",
        "cp_plan_ended",
        "cin_plan_started",
    }
)

# The events and outcomes the translation produces: the definition must have them all.
REQUIRED_EVENTS: dict[str, tuple[str, ...]] = {
    "referral_received": (),
    "referral_decision": ("assessment", "strategy_discussion"),
    "significant_harm_concern": (),
    "strategy_discussion_held": ("s47",),
    "s47_concluded": ("not_substantiated",),
    "icpc_held": ("cp_plan", "no_plan"),
    "assessment_completed": (),
    "cp_visit": (),
    "rcpc_held": ("continue", "end_step_down_cin"),
    "cp_plan_ended": ("step_down_cin",),
    "cin_plan_started": (),
}

Progress = Callable[[int, int], None]


class UnsuitableDefinitionError(ValueError):
    """The definition lacks events or outcomes the importer produces."""


def as_at(today: date) -> datetime:
    """The instant a dry run is computed for: midday in London on ``today``.

    Every rung of a ladder counted in days fires at the end of a day, so any instant of
    ``today`` gives the same alerts.
    """
    return datetime.combine(today, time(12), tzinfo=LONDON)


def plan_import(
    files: Iterable[SourceFile | Path],
    definition: Definition,
    today: date,
    progress: Progress | None = None,
) -> ImportPlan:
    """The dry run of importing these Annex A files with this definition on ``today``.

    Args:
        files: CSV files (paths, or :class:`SourceFile` for uploads) of lists 3 to 9.
        definition: The definition the cases will run (child-protection or a local copy).
        today: The import date: dates after it are refused; clocks stand as at its midday.
        progress: Called with (cases done, cases in all) as each case is planned.

    Returns:
        Every case that would be opened, with its events, stages and clocks; the cases
        skipped (nothing open) and rejected; every issue with its file and line.

    Raises:
        UnsuitableDefinitionError: The definition lacks an event or outcome the import needs.

    """
    check_definition(definition)
    instant = as_at(today)
    issues: list[RowIssue] = []
    summaries: list[FileSummary] = []
    rows: list[Row] = []
    for item in files:
        source = _load(item, issues)
        if source is None:
            summaries.append(FileSummary.unread(str(item)))
            continue
        result = read_source(source, today)
        summaries.append(result.summary)
        rows += result.rows
        issues += result.issues
    planner = _Planner(definition, today, instant, issues)
    by_case: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_case[row.case_ref].append(row)
    refs = sorted(by_case)
    for done, case_ref in enumerate(refs, start=1):
        planner.plan_case(case_ref, by_case[case_ref])
        if progress is not None:
            progress(done, len(refs))
    return ImportPlan(
        definition=definition,
        today=today,
        as_at=instant,
        files=summaries,
        cases=planner.cases,
        skipped=planner.skipped,
        rejected_cases=sorted(
            {
                issue.case_ref
                for issue in issues
                if issue.severity is Severity.REJECTED and issue.case_ref is not None
            }
        ),
        issues=issues,
    )


def check_definition(definition: Definition) -> None:
    """Raise UnsuitableDefinitionError unless the definition has every event the import makes."""
    missing = []
    for event_type, outcomes in REQUIRED_EVENTS.items():
        spec = definition.events.get(event_type)
        if spec is None:
            missing.append(event_type)
            continue
        missing += [f"{event_type}:{o}" for o in outcomes if o not in spec.outcomes]
    if missing:
        raise UnsuitableDefinitionError(
            f"definition {definition.id} {definition.version} lacks what the Annex A import "
            f"produces: {', '.join(missing)}"
        )


def _load(item: SourceFile | Path, issues: list[RowIssue]) -> SourceFile | None:
    if isinstance(item, SourceFile):
        return item
    try:
        return SourceFile.from_path(item)
    except (OSError, UnicodeDecodeError) as error:
        reason = (
            "not UTF-8 text; save the list as 'CSV UTF-8'"
            if isinstance(error, UnicodeDecodeError)
            else f"cannot be read ({error.strerror or error})"
        )
        issues.append(
            RowIssue(
                severity=Severity.REJECTED,
                source=str(item),
                line=None,
                case_ref=None,
                reason=reason,
            )
        )
        return None


class _Planner:
    """Plans cases one by one, collecting plans, skips, rejections and issues."""

    def __init__(
        self, definition: Definition, today: date, instant: datetime, issues: list[RowIssue]
    ) -> None:
        self.definition = definition
        self.today = today
        self.instant = instant
        self.issues = issues
        self.cases: list[CasePlan] = []
        self.skipped: list[SkippedCase] = []
        self._calendars: dict[int, WorkingCalendar] = {}
        self._failed_rows = {
            issue.case_ref: issue
            for issue in issues
            if issue.severity is Severity.REJECTED and issue.case_ref is not None
        }
        self._label = f"{definition.id} {definition.version}"

    def _issue(self, severity: Severity, row: Row, reason: str) -> None:
        self.issues.append(
            RowIssue(
                severity=severity,
                source=row.source,
                line=row.line,
                case_ref=row.case_ref,
                reason=reason,
            )
        )

    def plan_case(self, case_ref: str, rows: list[Row]) -> None:
        failed = self._failed_rows.get(case_ref)
        if failed is not None:
            self._reject(rows, f"another row of this case was rejected ({failed})")
            return
        supported = [row for row in rows if self._supported(row)]
        if not supported:
            return
        latest = self._latest(supported)
        chain = Chain(case_ref, self.instant)
        try:
            _target, target_row = translate(latest, chain)
            state = self._run_core(case_ref, chain)
        except Skip as skip:
            self.skipped.append(
                SkippedCase(case_ref=case_ref, reason=str(skip), rows=[r.where for r in supported])
            )
            return
        except RejectedCaseError as error:
            self._issue(Severity.REJECTED, error.row, error.reason)
            others = [row for row in supported if row is not error.row]
            self._reject(others, f"the row at {error.row.where} was rejected")
            return
        if not state.running():
            self.skipped.append(
                SkippedCase(
                    case_ref=case_ref,
                    reason="no clock would run once its events are applied",
                    rows=[r.where for r in supported],
                )
            )
            return
        self.cases.append(
            CasePlan(
                case_ref=case_ref,
                allocation=Allocation(team=target_row.team, worker=target_row.worker),
                events=[planned.event for planned in chain.ordered()],
                stages={track: value.stage for track, value in state.tracks.items()},
                clocks=self._forecast(state),
                notes=chain.notes,
                rows=[row.where for row in supported],
            )
        )

    def _reject(self, rows: list[Row], why: str) -> None:
        for row in rows:
            self._issue(Severity.NOTE, row, f"not imported: {why}")

    def _supported(self, row: Row) -> bool:
        spec = LISTS[row.list_number]
        if not spec.supported:
            self._issue(
                Severity.UNSUPPORTED,
                row,
                f"{spec.title}: not supported by definition {self._label} yet; nothing "
                "imported from this row",
            )
            return False
        if row.text("case_status") == CaseStatus.LOOKED_AFTER:
            self._issue(
                Severity.UNSUPPORTED,
                row,
                f"Case Status 'Looked after child': not supported by definition {self._label} "
                "yet; nothing imported from this row",
            )
            return False
        return True

    def _latest(self, rows: list[Row]) -> Latest:
        chosen: dict[AnnexList, Row] = {}
        for row in sorted(rows, key=lambda r: (r.list_number, _key_date(r), r.line)):
            earlier = chosen.get(row.list_number)
            if earlier is not None:
                self._issue(
                    Severity.NOTE,
                    earlier,
                    f"superseded by the later row of {LISTS[row.list_number].title} at "
                    f"{row.where}; not imported",
                )
            chosen[row.list_number] = row
        return Latest(
            referral=chosen.get(AnnexList.REFERRALS),
            assessment=chosen.get(AnnexList.ASSESSMENTS),
            s47=chosen.get(AnnexList.SECTION_47),
            cin=chosen.get(AnnexList.CHILDREN_IN_NEED),
            plan=chosen.get(AnnexList.CHILD_PROTECTION),
        )

    def _calendar(self, earliest: date) -> WorkingCalendar:
        year = min(earliest.year, self.today.year)
        if year not in self._calendars:
            self._calendars[year] = calendar_for(earliest, self.today)
        return self._calendars[year]

    def _run_core(self, case_ref: str, chain: Chain) -> CaseState:
        planned = chain.ordered()
        calendar = self._calendar(min(p.event.effective_date for p in planned))
        state = start_case(self.definition, case_ref)
        for item in planned:
            try:
                state = apply_event(
                    self.definition, state, item.event, calendar, self.instant
                ).state
            except EventRejectedError as error:
                raise RejectedCaseError(
                    item.source.row,
                    f"definition {self._label} refuses {item.event.type} dated from "
                    f"{item.source.describe()}: "
                    + "; ".join(str(rejection) for rejection in error.rejections),
                ) from error
        return state

    def _forecast(self, state: CaseState) -> list[ClockForecast]:
        alerts = {
            (action.clock_id, action.occurrence): action
            for action in due_alerts(self.definition, state, self.instant).actions
            if isinstance(action, NotifyAction)
        }
        forecasts = []
        for occurrence in state.running():
            alert = alerts.get((occurrence.clock_id, occurrence.number))
            spec = self.definition.clocks[occurrence.clock_id]
            forecasts.append(
                ClockForecast(
                    clock_id=occurrence.clock_id,
                    occurrence=occurrence.number,
                    start_date=occurrence.start_date,
                    due_date=occurrence.deadline.due_date,
                    standing=self._standing(spec.ladder, alert),
                    level_name=alert.level_name if alert else None,
                    alert_key=alert.key if alert else None,
                    undated_by_lists=bool(spec.met_by)
                    and not any(m.event in EVIDENCED_BY_LISTS for m in spec.met_by),
                )
            )
        return forecasts

    def _standing(self, ladder: str, alert: NotifyAction | None) -> Standing:
        if alert is None:
            return "running"
        if alert.state is AlertState.DUE_SOON:
            return "due_soon"
        steps = self.definition.ladders[ladder].steps
        first_overdue = next(i for i, step in enumerate(steps) if step.offset.amount >= 0)
        return "escalated" if alert.level > first_overdue else "overdue"


def _key_date(row: Row) -> date:
    return row.date(LISTS[row.list_number].key_field) or date.min
