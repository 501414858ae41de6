"""The dashboard's own read-model queries: work lists, cases waiting, reassignment.

Like ``caseclock.db``'s queries they take a :class:`~caseclock.db.oversight.Scope` (what the
signed-in person may see) before any filter, are bounded, and hand out pydantic views,
never ORM objects. Reassigning an alert moves it between inboxes in one transaction; the
audit log keeps who moved it to whom (codes only), which the case timeline shows.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Row,
    ScalarSelect,
    Select,
    String,
    Subquery,
    case,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import QueryableAttribute, aliased

from caseclock.core.actions import ClockStatus
from caseclock.db.deliveries import utc_now
from caseclock.db.engine import insert_for
from caseclock.db.models import (
    Absence,
    AuditEntry,
    Case,
    CaseStage,
    Clock,
    Escalation,
    Event,
    InboxItem,
    Service,
    Staff,
    Team,
)
from caseclock.db.oversight import MAX_ROWS, Scope, clock_status_is
from caseclock.db.views import CaseView, case_view
from caseclock.units import Unit

_T = TypeVar("_T")

UNALLOCATED = "unallocated"
"""The worker filter value meaning "cases with no allocated worker"."""
MAIN_TRACK = "main"
# Where a case waits for transfer to a long-term team (child-protection definition).
TRANSFER_TRACK, AWAITING_TRANSFER = "allocation", "awaiting_transfer"
# Clocks due within this many days, or with a warning already sent, are "due soon".
DUE_SOON_DAYS = 7
# Clocks further off than this are not looked at (the longest warning is 3 months ahead).
HORIZON_DAYS = 100
# My work is shown a page at a time; the counts are over every page.
PAGE_SIZE = 100
# Alert levels that warn (the clock is due soon, or overdue) rather than escalate to a manager.
WARNINGS = ("due_soon", "overdue")
REASSIGN_ACTION = "escalation.reassign"
MANAGER_ROLES = ("team_manager", "service_manager", "head_of_service")


class WorkFilter(BaseModel):
    """The My work filters; None means any."""

    model_config = ConfigDict(frozen=True)

    team: str | None = None
    worker: str | None = None
    stage: str | None = None
    clock: str | None = None


class WorkRow(BaseModel):
    """A running clock that is due soon, overdue or escalated, with its case.

    Only what the list shows: not the clock's deadline and its explanation, which the case
    page gives (reading and validating them for every row was most of the list's time).
    """

    model_config = ConfigDict(frozen=True)

    case_ref: str
    team: str
    worker: str | None
    definition: str
    stage: str | None
    clock_id: str
    occurrence: int
    title: str
    due_at: datetime
    in_hours: bool
    overdue: bool
    level: int | None
    level_name: str | None
    acknowledged: bool

    @property
    def urgency(self) -> tuple[int, int, datetime]:
        """Sort key, most urgent first: overdue, highest alert, soonest (longest overdue)."""
        return (
            0 if self.overdue else 1,
            -(self.level if self.level is not None else -1),
            self.due_at,
        )


class WorkPage(BaseModel):
    """One page of My work, most urgent first, and the counts over every page."""

    model_config = ConfigDict(frozen=True)

    rows: tuple[WorkRow, ...]
    page: int
    page_size: int
    total: int
    overdue: int
    escalated: int
    """Rows whose highest alert is an escalation (not a warning) nobody has acknowledged."""

    @property
    def due_soon(self) -> int:
        """Rows not yet overdue (due within the week, or further off with an alert sent)."""
        return self.total - self.overdue

    @property
    def pages(self) -> int:
        """How many pages there are (at least one, even when the list is empty)."""
        return max(1, -(-self.total // self.page_size))

    @property
    def first_row(self) -> int:
        """The position of this page's first row in the whole list, from 1 (0 if empty)."""
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        """The position of this page's last row in the whole list (0 if empty)."""
        return (self.page - 1) * self.page_size + len(self.rows)


class WaitingCase(BaseModel):
    """An open case waiting for something (allocation, transfer) since a day."""

    model_config = ConfigDict(frozen=True)

    case: CaseView
    since: date


class Reassignment(BaseModel):
    """An alert moved from one person's inbox to another's."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    key: str
    from_staff: str
    to_staff: str


class Colleague(BaseModel):
    """A manager an alert may be reassigned to."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    role: str
    covering_for: str | None = None


class DashboardQueries:
    """Queries behind the dashboard's pages.

    Args:
        sessions: Sessions for the read-model database.

    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def work(self, scope: Scope, where: WorkFilter, now: datetime, page: int = 1) -> WorkPage:
        """Running clocks in scope that are due soon, overdue or escalated, most urgent first.

        One page of ``PAGE_SIZE`` rows (a page past the last gives the last), with the
        counts over the whole list. The order is decided in SQL (overdue first, then the
        highest alert, then the due instant), so every page is a slice of one order.
        """
        found = _work_matching(scope, where, now)
        if found is None:
            return WorkPage(rows=(), page=1, page_size=PAGE_SIZE, total=0, overdue=0, escalated=0)
        overdue = found.c.due_at <= now
        ranked = select(
            found.c.case_ref,
            found.c.clock_id,
            found.c.occurrence,
            found.c.due_at,
            func.count().over().label("total"),
            func.count().filter(overdue).over().label("overdue"),
            func.count().filter(found.c.escalated).over().label("escalated"),
        ).order_by(
            case((overdue, 0), else_=1),
            func.coalesce(found.c.level, -1).desc(),
            found.c.due_at,
            found.c.case_ref,
            found.c.clock_id,
            found.c.occurrence,
        )
        async with self._sessions() as session:
            listed, page = await _page_of(session, ranked, found, page)
            details = await _work_details(
                session, [(row.case_ref, row.clock_id, row.occurrence) for row in listed]
            )
            alerts = await _top_alerts(session, {row.case_ref for row in listed})
        first = listed[0] if listed else None
        rows = []
        for row in listed:
            key = (row.case_ref, row.clock_id, row.occurrence)
            title, unit, team, worker, definition, stage = details[key]
            top = alerts.get(key)
            rows.append(
                WorkRow(
                    case_ref=row.case_ref,
                    team=team,
                    worker=worker,
                    definition=definition,
                    stage=stage,
                    clock_id=row.clock_id,
                    occurrence=row.occurrence,
                    title=title,
                    due_at=row.due_at,
                    in_hours=unit == Unit.HOURS.value,
                    overdue=row.due_at <= now,
                    level=top[0] if top else None,
                    level_name=top[1] if top else None,
                    acknowledged=top[2] if top else False,
                )
            )
        return WorkPage(
            rows=tuple(rows),
            page=page,
            page_size=PAGE_SIZE,
            total=first.total if first else 0,
            overdue=first.overdue if first else 0,
            escalated=first.escalated if first else 0,
        )

    async def unallocated(self, scope: Scope, team: str | None) -> list[WaitingCase]:
        """Open cases in scope with no allocated worker, since their first event, oldest first."""
        first_event = (
            select(func.min(Event.effective_date))
            .where(Event.case_ref == Case.case_ref)
            .scalar_subquery()
        )
        since = func.coalesce(first_event, Case.opened_on)
        query = scope.where(select(Case, since)).where(
            Case.allocated_worker_code.is_(None), Case.closed_on.is_(None)
        )
        if team is not None:
            query = query.where(Case.team_code == team)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(since).limit(MAX_ROWS))).all()
            return [WaitingCase(case=case_view(row), since=day) for row, day in rows]

    async def awaiting_transfer(self, scope: Scope, team: str | None) -> list[WaitingCase]:
        """Open cases in scope waiting for transfer to a long-term team, longest first."""
        since = func.max(CaseStage.entered_on)
        query = scope.where(
            select(Case, since)
            .join(CaseStage, CaseStage.case_ref == Case.case_ref)
            .where(
                Case.closed_on.is_(None),
                Case.current_stages[TRANSFER_TRACK].as_string() == AWAITING_TRANSFER,
                CaseStage.track == TRANSFER_TRACK,
                CaseStage.stage == AWAITING_TRANSFER,
            )
            .group_by(Case.case_ref)
        )
        if team is not None:
            query = query.where(Case.team_code == team)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(since).limit(MAX_ROWS))).all()
            return [WaitingCase(case=case_view(case), since=day) for case, day in rows]

    async def colleagues(self, team: str, on: date) -> list[Colleague]:
        """The managers of a team's line on a day, and whoever covers those who are away."""
        async with self._sessions() as session:
            found = await session.get(Team, team)
            if found is None:
                return []
            service = await session.get(Service, found.service_code)
            posts = [found.manager_code]
            if service is not None:
                posts += [service.service_manager_code, service.head_of_service_code]
            codes = [code for code in posts if code]
            covers = await session.execute(
                select(Absence.cover_code, Absence.staff_code).where(
                    Absence.staff_code.in_(codes),
                    Absence.starts_on <= on,
                    Absence.ends_on >= on,
                    Absence.cover_code.is_not(None),
                )
            )
            covering = {cover: absent for cover, absent in covers.all() if cover}
            people = await session.scalars(
                select(Staff).where(Staff.code.in_([*codes, *covering]), Staff.active.is_(True))
            )
            result = [
                Colleague(
                    code=person.code,
                    name=person.display_name,
                    role=person.role,
                    covering_for=covering.get(person.code),
                )
                for person in people
            ]
        order = {code: index for index, code in enumerate([*codes, *covering])}
        return sorted(result, key=lambda colleague: order[colleague.code])

    async def reassign(self, key: str, from_staff: str, to_staff: str) -> None:
        """Put an alert in ``to_staff``'s inbox and take it out of ``from_staff``'s."""
        async with self._sessions.begin() as session:
            await session.execute(
                insert_for(session, InboxItem)
                .values(staff_code=to_staff, escalation_key=key, created_at=utc_now())
                .on_conflict_do_nothing(index_elements=["staff_code", "escalation_key"])
            )
            await session.execute(
                delete(InboxItem).where(
                    InboxItem.staff_code == from_staff, InboxItem.escalation_key == key
                )
            )

    async def reassignments(self, case_ref: str) -> list[Reassignment]:
        """The case's alerts moved between inboxes, oldest first (from the audit log)."""
        query = (
            select(AuditEntry)
            .where(AuditEntry.case_ref == case_ref, AuditEntry.action == REASSIGN_ACTION)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        async with self._sessions() as session:
            return [
                Reassignment(
                    at=row.at,
                    actor=row.actor,
                    key=str(row.detail.get("key", "")),
                    from_staff=str(row.detail.get("from_staff", "")),
                    to_staff=str(row.detail.get("to_staff", "")),
                )
                for row in await session.scalars(query)
            ]

    async def staff_names(self) -> dict[str, str]:
        """Every member of staff's display name by code (staff data, never a child's)."""
        async with self._sessions() as session:
            rows = await session.execute(select(Staff.code, Staff.display_name))
            return {str(row.code): str(row.display_name) for row in rows}


def _work_matching(scope: Scope, where: WorkFilter, now: datetime) -> Subquery | None:
    """The clocks My work lists, with their highest alert level and whether it is open.

    One query per part of the scope (``Scope.clock_parts``) put together with UNION ALL,
    so that each reads its own index: a team's running clocks from the covering
    ``ix_clocks_running_team_due_cover`` alone (hence the status as a literal and the team
    on the clocks' own column), a worker's through their cases. Only the columns needed to
    count and order the list: the rest is read for one page only (``_work_details``). None
    if nothing is in scope.
    """
    soon = now + timedelta(days=DUE_SOON_DAYS)
    conditions = [
        clock_status_is(ClockStatus.RUNNING),
        Clock.due_at < now + timedelta(days=HORIZON_DAYS),
        or_(Clock.due_at <= soon, cast(Clock.levels_fired, String) != "[]"),
        # The case's columns are looked up clock by clock (a subquery, not a join): with a
        # join PostgreSQL hashes the whole cases table, most of it for nothing.
        _of_case(Case.closed_on).is_(None),
    ]
    if where.team is not None:
        conditions.append(Clock.team_code == where.team)
    if where.clock is not None:
        conditions.append(Clock.clock_id == where.clock)
    if where.worker == UNALLOCATED:
        conditions.append(_of_case(Case.allocated_worker_code).is_(None))
    elif where.worker is not None:
        conditions.append(_of_case(Case.allocated_worker_code) == where.worker)
    if where.stage is not None:
        conditions.append(_of_case(Case.current_stages[MAIN_TRACK].as_string()) == where.stage)
    top_level = _top_level()
    parts = [
        select(
            Clock.case_ref.label("case_ref"),
            Clock.clock_id.label("clock_id"),
            Clock.occurrence.label("occurrence"),
            Clock.due_at.label("due_at"),
            top_level.label("level"),
            _escalated_unacknowledged(top_level).label("escalated"),
        ).where(part, *conditions)
        for part in scope.clock_parts()
    ]
    if not parts:
        return None
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("work")


async def _page_of(
    session: AsyncSession, ranked: Select[Any], found: Subquery, page: int
) -> tuple[Sequence[Row[Any]], int]:
    """One page of the ranked list, and its number: the last page if ``page`` is past it."""
    page = max(page, 1)
    listed = (await session.execute(ranked.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))).all()
    if listed or page == 1:
        return listed, page
    total = (await session.execute(select(func.count()).select_from(found))).scalar_one()
    page = max(1, -(-total // PAGE_SIZE))
    listed = (await session.execute(ranked.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))).all()
    return listed, page


async def _work_details(
    session: AsyncSession, keys: list[tuple[str, str, int]]
) -> dict[tuple[str, str, int], tuple[str, str | None, str, str | None, str, str | None]]:
    """What a page of My work shows of each clock and its case, by the clock's key."""
    if not keys:
        return {}
    refs = sorted({ref for ref, _, _ in keys})
    query = (
        select(
            Clock.case_ref,
            Clock.clock_id,
            Clock.occurrence,
            Clock.title,
            Clock.deadline["unit"].as_string(),
            Case.team_code,
            Case.allocated_worker_code,
            Case.definition_id,
            Case.definition_version,
            Case.current_stages[MAIN_TRACK].as_string(),
        )
        .join(Case, Clock.case_ref == Case.case_ref)
        # By case on both tables (each by its index: PostgreSQL would otherwise hash the
        # whole cases table for the join); a tuple IN list of the clocks' keys would be a
        # full scan on SQLite. The cases' other clocks are left out below.
        .where(Clock.case_ref.in_(refs), Case.case_ref.in_(refs))
    )
    wanted = set(keys)
    return {
        (ref, clock_id, occurrence): (title, unit, team, worker, f"{definition}@{version}", stage)
        for ref, clock_id, occurrence, title, unit, team, worker, definition, version, stage in (
            await session.execute(query)
        )
        if (ref, clock_id, occurrence) in wanted
    }


def _of_case(column: QueryableAttribute[_T] | ColumnElement[_T]) -> ScalarSelect[_T]:
    """A column of the case of the clock of the enclosing query."""
    return select(column).where(Case.case_ref == Clock.case_ref).correlate(Clock).scalar_subquery()


def _top_level() -> ScalarSelect[int | None]:
    """The highest alert level raised for the clock occurrence of the enclosing query."""
    raised = aliased(Escalation)
    return (
        select(func.max(raised.level))
        .where(
            raised.case_ref == Clock.case_ref,
            raised.clock_id == Clock.clock_id,
            raised.occurrence == Clock.occurrence,
        )
        .correlate(Clock)
        .scalar_subquery()
    )


def _escalated_unacknowledged(top_level: ScalarSelect[int | None]) -> ColumnElement[bool]:
    """The clock's highest alert is an escalation (not a warning) nobody has acknowledged."""
    return exists(
        select(Escalation.key)
        .where(
            Escalation.case_ref == Clock.case_ref,
            Escalation.clock_id == Clock.clock_id,
            Escalation.occurrence == Clock.occurrence,
            Escalation.level == top_level,
            Escalation.level_name.not_in(WARNINGS),
            Escalation.acknowledged_at.is_(None),
        )
        .correlate(Clock)
    )


async def _top_alerts(
    session: AsyncSession, case_refs: set[str]
) -> dict[tuple[str, str, int], tuple[int, str, bool]]:
    """The highest alert of each clock occurrence of these cases: level, name, acknowledged."""
    if not case_refs:
        return {}
    query = select(
        Escalation.case_ref,
        Escalation.clock_id,
        Escalation.occurrence,
        Escalation.level,
        Escalation.level_name,
        Escalation.acknowledged_at,
    ).where(Escalation.case_ref.in_(sorted(case_refs)))
    top: dict[tuple[str, str, int], tuple[int, str, bool]] = {}
    by_clock = defaultdict(list)
    for ref, clock, occurrence, level, name, acknowledged in (await session.execute(query)).all():
        by_clock[(ref, clock, occurrence)].append((level, name, acknowledged is not None))
    for key, alerts in by_clock.items():
        top[key] = max(alerts, key=lambda alert: alert[0])
    return top
