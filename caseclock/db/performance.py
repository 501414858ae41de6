"""Performance information for leaders: the national timeliness measures, by team and month.

Each measure says what it counts, in words, next to the national figure it matches (from
``../shared/domain/TIMESCALES.md``) where there is one. Rows are computed from the read
model's clock occurrences and escalations; nothing here writes.
"""

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.calendar import add_months, local_date, start_of_day
from caseclock.db.models import Case, Clock, ClosedClockMonth, Escalation

MET = "met"
MET_LATE = "met_late"


class Measure(BaseModel):
    """What a measure counts, and the national figure it can be compared with."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    definition: str
    unit: str  # "percent", "count" or "hours"
    national: str | None = None
    # Counted at each month end (plans open), not over the month: a period's figure is the
    # last month's, never a sum across months.
    at_month_end: bool = False


class MeasureRow(NamedTuple):
    """One measure for one team in one month (``YYYY-MM``).

    A named tuple rather than a pydantic view: it never leaves the process (the dashboard
    draws it, ``to_csv`` writes it), and a leader's year over every team is thousands of
    rows, whose validation was a third of the report's time.
    """

    measure: str
    team: str
    month: str
    numerator: int
    denominator: int
    value: float | None


class CaseloadRow(BaseModel):
    """Open cases held by one worker (``None``: unallocated) in one team."""

    model_config = ConfigDict(frozen=True)

    team: str
    worker: str | None
    open_cases: int


_ON_TIME = {
    "icpc_within_15_wd": ("icpc",),
    "assessments_within_45_wd": ("assessment",),
    "cp_visits_on_time": ("cp_visits",),
    "review_conferences_on_time": (
        "first_review_conference",
        "first_review_conference_unborn",
        "review_conferences",
    ),
}

MEASURES: tuple[Measure, ...] = (
    Measure(
        id="icpc_within_15_wd",
        title="Initial conferences within 15 working days",
        definition="Initial child protection conferences held in the month, and the share "
        "held within 15 working days of the strategy discussion that started the section 47 "
        "enquiry.",
        unit="percent",
        national="England 2024-25: 81.4% (DfE Children in need 2025, table C4)",
    ),
    Measure(
        id="assessments_within_45_wd",
        title="Assessments within 45 working days",
        definition="Assessments completed in the month, and the share completed within 45 "
        "working days of the referral.",
        unit="percent",
        national="England 2024-25: 85.7% (DfE Children in need 2025, table C2)",
    ),
    Measure(
        id="cp_visits_on_time",
        title="Visits to children on protection plans on time",
        definition="Statutory visits to children on a child protection plan made in the "
        "month, and the share made by their due date (local frequency: see the definition).",
        unit="percent",
    ),
    Measure(
        id="review_conferences_on_time",
        title="Review conferences on time",
        definition="Review child protection conferences held in the month, and the share held "
        "by their due date (3 months after the initial conference, then every 6 months).",
        unit="percent",
    ),
    Measure(
        id="cp_plans_over_18_months",
        title="Protection plans open over 18 months",
        definition="Child protection plans open at the end of the month, and the share that "
        "had lasted more than 18 months.",
        unit="percent",
        at_month_end=True,
    ),
    Measure(
        id="cp_plans_over_24_months",
        title="Protection plans open 2 years or more",
        definition="Child protection plans open at the end of the month, and the share that "
        "had lasted 2 years or more.",
        unit="percent",
        national="England, 31 March 2025: 2.3% (DfE Children in need 2025, table D5)",
        at_month_end=True,
    ),
    Measure(
        id="repeat_cp_plans",
        title="Second or later protection plans",
        definition="Child protection plans starting in the month, and the share that are the "
        "child's second or later plan (counted within this engine's record of the case).",
        unit="percent",
        national="England 2024-25: 24.5% (DfE Children in need 2025, table D3)",
    ),
    Measure(
        id="plo_decided_within_16_weeks",
        title="PLO pre-proceedings decided within 16 weeks",
        definition="Pre-proceedings ended in the month (by issuing or stepping down), and the "
        "share decided within 16 weeks of the letter before proceedings, extensions ignored.",
        unit="percent",
    ),
    Measure(
        id="proceedings_within_26_weeks",
        title="Care proceedings within 26 weeks",
        definition="Care proceedings concluded in the month, and the share concluded within 26 "
        "weeks beginning with the day of issue, extensions ignored (as the national figure).",
        unit="percent",
        national="Apr-Jun 2025: 36% (MoJ Family Court Statistics)",
    ),
    Measure(
        id="escalations_acknowledged",
        title="Escalations acknowledged",
        definition="Escalations raised in the month, and how many a manager has acknowledged.",
        unit="percent",
    ),
    Measure(
        id="hours_to_acknowledge",
        title="Median hours to acknowledge an escalation",
        definition="For escalations raised in the month and acknowledged, the median time from "
        "the alert to its acknowledgement, in hours.",
        unit="hours",
    ),
)
_DURATIONS = {
    "plo_decided_within_16_weeks": ("pre_proceedings_decision", timedelta(weeks=16)),
    # "26 weeks beginning with the day of issue": the issue day is day 1.
    "proceedings_within_26_weeks": ("care_proceedings", timedelta(weeks=26, days=-1)),
}


def months_between(first: date, last: date) -> list[date]:
    """The first day of every month from ``first``'s month to ``last``'s."""
    month = first.replace(day=1)
    months = []
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


def _month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# tuple.__new__ skips the named tuple's own __new__, a Python function: a leader's page
# builds thousands of rows.
_new_row = tuple.__new__


# round() to a decimal place costs more than the rest of a row, and a leader's thousands of
# rows hold few distinct pairs of counts (a team's month is a few tens of occurrences): each
# pair is worked out once. Bounded, as the API process runs for weeks.
@lru_cache(maxsize=4096)
def _percent(numerator: int, denominator: int) -> float | None:
    return round(100 * numerator / denominator, 1) if denominator else None


def _row(measure: str, team: str, month: str, numerator: int, denominator: int) -> MeasureRow:
    value = _percent(numerator, denominator)
    return _new_row(MeasureRow, (measure, team, month, numerator, denominator, value))


# A MeasureRow's measure, team and month: its sort key, field by field (see ``report``).
_BY_FIELD = (itemgetter(2), itemgetter(1), itemgetter(0))


class Performance:
    """Computes the measures over a period, optionally for some teams only."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def report(
        self, first: date, last: date, teams: Sequence[str] | None = None
    ) -> list[MeasureRow]:
        """Every measure, for every team with something to count, month by month."""
        start, end = first.replace(day=1), add_months(last.replace(day=1), 1)
        async with self._sessions() as session:
            rows = await self._on_time(session, start, end, teams)
            rows += await self._durations(session, start, end, teams)
            rows += await self._plans(session, start, end, teams)
            rows += await self._escalations(session, start, end, teams)
        # By measure, team and month (a MeasureRow's first fields, unique to it), in Python's
        # string order whatever the database's collation: the order of ``sorted(rows)``.
        # Three stable sorts, month first and measure last, give that order in half the time
        # on a leader's thousands of rows: one string per key compares in C, where the named
        # tuples compare field by field through the generic object comparison. (An ORDER BY
        # in the database cost more still: it doubled the fetch of a leader's year on
        # PostgreSQL, and would need a per-dialect COLLATE to give this order.)
        for field in _BY_FIELD:
            rows.sort(key=field)
        return rows

    async def caseload(self, teams: Sequence[str] | None = None) -> list[CaseloadRow]:
        """Open cases per worker, largest first."""
        query = (
            select(Case.team_code, Case.allocated_worker_code, func.count())
            .where(Case.closed_on.is_(None))
            .group_by(Case.team_code, Case.allocated_worker_code)
        )
        if teams is not None:
            query = query.where(Case.team_code.in_(teams))
        async with self._sessions() as session:
            result = await session.execute(query)
        rows = [CaseloadRow(team=t, worker=w, open_cases=n) for t, w, n in result.all()]
        return sorted(rows, key=lambda row: (-row.open_cases, row.team, row.worker or ""))

    async def _on_time(
        self, session: AsyncSession, start: date, end: date, teams: Sequence[str] | None
    ) -> list[MeasureRow]:
        # From the monthly counts the clocks' triggers keep (``closed_clock_months``), not
        # from every clock closed in the period: a leader's year over a million clocks is
        # a few thousand rows instead of about a hundred and fifty thousand.
        measure_of = {clock: measure for measure, clocks in _ON_TIME.items() for clock in clocks}
        # The table's own columns (a Core query): thousands of plain rows, no ORM loading.
        months = ClosedClockMonth.__table__.c
        counted = months.met + months.met_late
        query = select(months.clock_id, months.team_code, months.month, months.met, counted).where(
            months.clock_id.in_(sorted(measure_of)),
            months.month >= _month_label(start),
            months.month < _month_label(end),
            counted > 0,
        )
        if teams is not None:
            query = query.where(months.team_code.in_(teams))
        # Summed by measure here where a measure counts several clocks: cheaper than SQL's
        # GROUP BY over an expression, which sorts every row first.
        alone = {
            clock: measure for clock, measure in measure_of.items() if len(_ON_TIME[measure]) == 1
        }
        rows: list[MeasureRow] = []
        tallies: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for clock_id, team, month, on_time, total in (await session.execute(query)).all():
            measure = alone.get(clock_id)
            if measure is not None:
                rows.append(_row(measure, team, month, on_time, total))
            else:
                measure = measure_of[clock_id]
                tally = tallies[(measure, team, month)]
                tally[0] += on_time
                tally[1] += total
        rows += [_row(m, t, month, n, d) for (m, t, month), (n, d) in tallies.items()]
        return rows

    async def _durations(
        self, session: AsyncSession, start: date, end: date, teams: Sequence[str] | None
    ) -> list[MeasureRow]:
        measure_of = {clock_id: measure for measure, (clock_id, _) in _DURATIONS.items()}
        query = select(Clock.clock_id, Clock.team_code, Clock.start_date, Clock.closed_on).where(
            Clock.clock_id.in_(sorted(measure_of)),
            Clock.status.in_((MET, MET_LATE)),
            Clock.closed_on >= start,
            Clock.closed_on < end,
        )
        if teams is not None:
            query = query.where(Clock.team_code.in_(teams))
        counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for clock_id, team, started, closed in (await session.execute(query)).all():
            if closed is None:  # excluded by the query; here for the type checker
                continue
            measure = measure_of[clock_id]
            tally = counts[(measure, team, _month_label(closed))]
            tally[0] += int(closed - started <= _DURATIONS[measure][1])
            tally[1] += 1
        return [_row(m, t, month, n, d) for (m, t, month), (n, d) in counts.items()]

    async def _plans(
        self, session: AsyncSession, start: date, end: date, teams: Sequence[str] | None
    ) -> list[MeasureRow]:
        query = select(Clock.team_code, Clock.occurrence, Clock.start_date, Clock.closed_on).where(
            Clock.clock_id == "cp_plan_duration",
            Clock.start_date < end,
            or_(Clock.closed_on.is_(None), Clock.closed_on >= start),
        )
        if teams is not None:
            query = query.where(Clock.team_code.in_(teams))
        plans = (await session.execute(query)).all()
        rows = []
        for month in months_between(start, end - timedelta(days=1)):
            month_end = add_months(month, 1) - timedelta(days=1)
            label = _month_label(month)
            by_team: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
            for team, occurrence, started, closed in plans:
                tally = by_team[team]
                if month <= started <= month_end:
                    tally[3] += 1
                    tally[4] += int(occurrence >= 2)
                if started <= month_end and (closed is None or closed > month_end):
                    tally[0] += 1
                    tally[1] += int(add_months(started, 18) < month_end)
                    tally[2] += int(add_months(started, 24) <= month_end)
            for team, (open_, over_18, over_24, started_n, repeats) in by_team.items():
                rows.append(_row("cp_plans_over_18_months", team, label, over_18, open_))
                rows.append(_row("cp_plans_over_24_months", team, label, over_24, open_))
                rows.append(_row("repeat_cp_plans", team, label, repeats, started_n))
        return [row for row in rows if row.denominator]

    async def _escalations(
        self, session: AsyncSession, start: date, end: date, teams: Sequence[str] | None
    ) -> list[MeasureRow]:
        query = (
            select(Case.team_code, Escalation.created_at, Escalation.acknowledged_at)
            .join(Case, Case.case_ref == Escalation.case_ref)
            # Months are London months: an alert at 00:30 BST on 1 April is April's.
            .where(Escalation.created_at >= start_of_day(start))
            .where(Escalation.created_at < start_of_day(end))
        )
        if teams is not None:
            query = query.where(Case.team_code.in_(teams))
        raised: dict[tuple[str, str], list[datetime | None]] = defaultdict(list)
        hours: dict[tuple[str, str], list[float]] = defaultdict(list)
        for team, created, acknowledged in (await session.execute(query)).all():
            key = (team, _month_label(local_date(created)))
            raised[key].append(acknowledged)
            if acknowledged is not None:
                hours[key].append((acknowledged - created).total_seconds() / 3600)
        rows = []
        for (team, month), acks in raised.items():
            done = sum(ack is not None for ack in acks)
            rows.append(_row("escalations_acknowledged", team, month, done, len(acks)))
            if hours[(team, month)]:
                median = round(statistics.median(hours[(team, month)]), 1)
                rows.append(
                    MeasureRow(
                        measure="hours_to_acknowledge",
                        team=team,
                        month=month,
                        numerator=done,
                        denominator=done,
                        value=median,
                    )
                )
        return rows


def to_csv(rows: Iterable[MeasureRow]) -> str:
    """The rows as CSV, with a header, for leaders to take into a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["measure", "team", "month", "numerator", "denominator", "value"])
    for row in rows:
        value = "" if row.value is None else f"{row.value:g}"
        writer.writerow([row.measure, row.team, row.month, row.numerator, row.denominator, value])
    return out.getvalue()
