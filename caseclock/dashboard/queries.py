"""The dashboard's own read-model queries: work lists, cases waiting, reassignment.

Like ``caseclock.db``'s queries they take a :class:`~caseclock.db.oversight.Scope` (what the
signed-in person may see) before any filter, are bounded, and hand out pydantic views,
never ORM objects. Reassigning an alert moves it between inboxes in one transaction; the
audit log keeps who moved it to whom (codes only), which the case timeline shows.
"""

from collections import defaultdict
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from caseclock.db.views import CaseView, ClockView, case_view, clock_view

UNALLOCATED = "unallocated"
"""The worker filter value meaning "cases with no allocated worker"."""
MAIN_TRACK = "main"
# Where a case waits for transfer to a long-term team (child-protection definition).
TRANSFER_TRACK, AWAITING_TRANSFER = "allocation", "awaiting_transfer"
# Clocks due within this many days, or with a warning already sent, are "due soon".
DUE_SOON_DAYS = 7
# Clocks further off than this are not looked at (the longest warning is 3 months ahead).
HORIZON_DAYS = 100
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
    """A running clock that is due soon, overdue or escalated, with its case."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    team: str
    worker: str | None
    definition: str
    stage: str | None
    clock: ClockView
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
            self.clock.due_at,
        )


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

    async def work(self, scope: Scope, where: WorkFilter, now: datetime) -> list[WorkRow]:
        """Running clocks in scope that are due soon, overdue or escalated, most urgent first."""
        soon = now + timedelta(days=DUE_SOON_DAYS)
        escalated = cast(Clock.levels_fired, String) != "[]"
        # Running clocks, found through ix_clocks_running_team_due (hence the status as a
        # literal and the team on the clocks' own column); due soon or already escalated,
        # decided here rather than after the limit so the limit counts rows shown.
        conditions = [
            clock_status_is(ClockStatus.RUNNING),
            Case.closed_on.is_(None),
            Clock.due_at < now + timedelta(days=HORIZON_DAYS),
            or_(Clock.due_at <= soon, escalated),
        ]
        if where.team is not None:
            conditions.append(Clock.team_code == where.team)
        if where.worker == UNALLOCATED:
            conditions.append(Case.allocated_worker_code.is_(None))
        elif where.worker is not None:
            conditions.append(Case.allocated_worker_code == where.worker)
        if where.stage is not None:
            conditions.append(Case.current_stages[MAIN_TRACK].as_string() == where.stage)
        if where.clock is not None:
            conditions.append(Clock.clock_id == where.clock)
        # Only the case's columns a row shows, not the case entity and its view.
        query = select(
            Clock,
            Case.team_code,
            Case.allocated_worker_code,
            Case.definition_id,
            Case.definition_version,
            Case.current_stages,
        ).join(Case, Clock.case_ref == Case.case_ref)
        query = scope.where_clocks(query, *conditions)
        query = query.order_by(Clock.due_at, Clock.case_ref, Clock.clock_id).limit(MAX_ROWS)
        async with self._sessions() as session:
            found = [
                (clock_view(row), team, worker, f"{definition_id}@{version}", stages)
                for row, team, worker, definition_id, version, stages in await session.execute(
                    query
                )
            ]
            alerts = await _top_alerts(session, {clock.case_ref for clock, *_ in found})
        rows = []
        for clock, team, worker, definition, stages in found:
            top = alerts.get((clock.case_ref, clock.clock_id, clock.occurrence))
            rows.append(
                WorkRow(
                    case_ref=clock.case_ref,
                    team=team,
                    worker=worker,
                    definition=definition,
                    stage=stages.get(MAIN_TRACK),
                    clock=clock,
                    overdue=clock.due_at <= now,
                    level=top[0] if top else None,
                    level_name=top[1] if top else None,
                    acknowledged=top[2] if top else False,
                )
            )
        return sorted(rows, key=lambda row: row.urgency)

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
