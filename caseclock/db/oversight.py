"""Read-model queries behind the API: a case's history, and clocks and escalations by scope.

A :class:`Scope` says which cases a caller may see: all of them, or those of some teams, or
those allocated to some workers. :func:`scope_of_staff` works out a person's from the
directory: the teams they manage as team manager, service manager or head of service, and,
while they cover an absent colleague, that colleague's teams and cases too.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVarTuple

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    false,
    literal_column,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.core.actions import AlertState, ClockStatus
from caseclock.db.models import Absence, Case, CaseStage, Clock, Escalation, Event, Service, Team
from caseclock.db.views import ClockView, EscalationView, clock_view, escalation_view

_Row = TypeVarTuple("_Row")

# Lists are bounded: a caller pages with due_after/due_before rather than taking everything.
MAX_ROWS = 1000


@dataclass(frozen=True)
class Scope:
    """The cases a caller may see: everything, or these teams' cases and these workers'."""

    everything: bool = False
    teams: frozenset[str] = field(default_factory=frozenset)
    workers: frozenset[str] = field(default_factory=frozenset)

    def allows(self, team: str, allocated_worker: str | None) -> bool:
        """Whether a case of this team and allocation is in scope."""
        return (
            self.everything
            or team in self.teams
            or (allocated_worker is not None and allocated_worker in self.workers)
        )

    def where(self, query: Select[*_Row]) -> Select[*_Row]:
        """Narrow a query that joins ``Case`` to the cases in scope."""
        if self.everything:
            return query
        return query.where(
            or_(
                Case.team_code.in_(sorted(self.teams)),
                Case.allocated_worker_code.in_(sorted(self.workers)),
            )
        )

    def where_clocks(self, query: Select[*_Row], *conditions: ColumnElement[bool]) -> Select[*_Row]:
        """Narrow a query on ``Clock`` to the clocks in scope that meet ``conditions``.

        Teams are matched on the clocks' own copy of their case's team
        (``ReadModel._copy_team_to_clocks`` keeps it equal to ``cases.team_code``), so the
        indexes on ``clocks.team_code`` serve it; a worker's own cases are found by their
        allocation, through ``cases``. A scope with both (a manager's: their teams and the
        cases allocated to them) is the union of the two, each with the conditions, picked
        by ``clocks.id``: an OR of the two would leave no index usable and both backends
        would read the whole table. Give the query's filters as ``conditions`` (not with a
        later ``where``) so that each branch of the union can use its index.
        """
        if self.everything:
            return query.where(*conditions)
        terms: list[ColumnElement[bool]] = []
        if self.teams:
            terms.append(Clock.team_code.in_(sorted(self.teams)))
        if self.workers:
            own = select(Case.case_ref).where(Case.allocated_worker_code.in_(sorted(self.workers)))
            terms.append(Clock.case_ref.in_(own))
        if not terms:
            return query.where(false())
        if len(terms) == 1:
            return query.where(terms[0], *conditions)
        branches = [query.with_only_columns(Clock.id).where(term, *conditions) for term in terms]
        return query.where(Clock.id.in_(union(*branches)))

    def clock_parts(self) -> list[ColumnElement[bool]]:
        """Conditions on clocks, one per part of the scope, that no clock meets twice.

        Their union is the scope: one condition (always true) for everything, none for an
        empty scope. Each part has its own index (teams: the team-led indexes on clocks;
        own cases: cases by allocation, then clocks by case), so one query per part, put
        together with UNION ALL, reads only what is in scope and each clock once, with no
        second look-up by ``clocks.id`` as :meth:`where_clocks` needs to remove duplicates:
        the own-cases part leaves out the cases of the scope's teams, which the teams part
        has. Like :meth:`where_clocks`, teams are matched on the clocks' own copy.
        """
        if self.everything:
            return [true()]
        parts: list[ColumnElement[bool]] = []
        teams = sorted(self.teams)
        if teams:
            parts.append(Clock.team_code.in_(teams))
        if self.workers:
            own = select(Case.case_ref).where(Case.allocated_worker_code.in_(sorted(self.workers)))
            mine = Clock.case_ref.in_(own)
            parts.append(and_(mine, Clock.team_code.not_in(teams)) if teams else mine)
        return parts


def clock_status_is(status: ClockStatus) -> ColumnElement[bool]:
    """``clocks.status = '<status>'`` with the value written into the SQL, not bound.

    A partial index (``ix_clocks_running_team_due_cover``: ``WHERE status = 'running'``) is used
    only when the query's own WHERE implies the index's, which neither SQLite nor
    PostgreSQL (with a generic plan for a prepared statement) can prove from a parameter.
    The values are the enum's own, never the caller's text.
    """
    return Clock.status == literal_column(f"'{ClockStatus(status).value}'", String)


class EventView(BaseModel):
    """An accepted event as recorded (codes only: free-text fields are never stored)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str
    effective_date: date
    effective_at: datetime | None
    recorded_at: datetime
    recorded_by: str
    outcome: str | None


class StageEntryView(BaseModel):
    """A track of the case entering a stage, and the event that moved it."""

    model_config = ConfigDict(frozen=True)

    track: str
    stage: str
    entered_on: date
    event_id: str


@dataclass(frozen=True)
class ClockFilter:
    """Which clock occurrences to list; None means any."""

    team: str | None = None
    status: ClockStatus | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


@dataclass(frozen=True)
class EscalationFilter:
    """Which escalations to list; None means any."""

    team: str | None = None
    level: int | None = None
    min_level: int | None = None
    state: AlertState | None = None
    acknowledged: bool | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


class Oversight:
    """Queries for the API: case history, scoped lists, and a person's scope.

    Args:
        session_factory: Sessions for the read-model database.

    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def events(self, case_ref: str) -> list[EventView]:
        """A case's accepted events in the order they happened."""
        query = (
            select(Event)
            .where(Event.case_ref == case_ref)
            .order_by(Event.effective_date, Event.effective_at, Event.id)
        )
        async with self._sessions() as session:
            return [
                EventView(
                    event_id=row.event_id,
                    type=row.event_type,
                    effective_date=row.effective_date,
                    effective_at=row.effective_at,
                    recorded_at=row.recorded_at,
                    recorded_by=row.recorded_by,
                    outcome=row.outcome,
                )
                for row in await session.scalars(query)
            ]

    async def event_ids(self, case_ref: str, event_ids: list[str]) -> dict[str, str]:
        """Of these event ids, those recorded on the case, with the type recorded."""
        query = select(Event.event_id, Event.event_type).where(
            Event.case_ref == case_ref, Event.event_id.in_(event_ids)
        )
        async with self._sessions() as session:
            return dict((await session.execute(query)).all())

    async def stage_history(self, case_ref: str) -> list[StageEntryView]:
        """Every stage each track of the case has entered, oldest first."""
        query = (
            select(CaseStage)
            .where(CaseStage.case_ref == case_ref)
            .order_by(CaseStage.entered_on, CaseStage.id)
        )
        async with self._sessions() as session:
            return [
                StageEntryView(
                    track=row.track,
                    stage=row.stage,
                    entered_on=row.entered_on,
                    event_id=row.event_id,
                )
                for row in await session.scalars(query)
            ]

    async def case_escalations(self, case_ref: str) -> list[EscalationView]:
        """A case's alerts, oldest first, with their acknowledgements."""
        query = (
            select(Escalation, Case.team_code)
            .join(Case)
            .where(Escalation.case_ref == case_ref)
            .order_by(Escalation.fire_at, Escalation.key)
        )
        async with self._sessions() as session:
            return [escalation_view(row, team) for row, team in await session.execute(query)]

    async def escalation(self, key: str) -> EscalationView | None:
        """One escalation by its key, or None."""
        query = select(Escalation, Case.team_code).join(Case).where(Escalation.key == key)
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        return None if found is None else escalation_view(*found)

    async def clocks(self, scope: Scope, where: ClockFilter, now: datetime) -> list[ClockView]:
        """Clock occurrences in scope matching the filter, soonest due first."""
        conditions: list[ColumnElement[bool]] = []
        if where.team is not None:
            conditions.append(Clock.team_code == where.team)
        if where.status is not None:
            conditions.append(clock_status_is(where.status))
        if where.overdue is not None:
            overdue = clock_status_is(ClockStatus.RUNNING) & (Clock.due_at < now)
            conditions.append(overdue if where.overdue else ~overdue)
        if where.due_before is not None:
            conditions.append(Clock.due_at < where.due_before)
        if where.due_after is not None:
            conditions.append(Clock.due_at >= where.due_after)
        query = scope.where_clocks(select(Clock), *conditions)
        query = query.order_by(Clock.due_at, Clock.case_ref, Clock.clock_id, Clock.occurrence)
        async with self._sessions() as session:
            rows = await session.scalars(query.limit(MAX_ROWS))
            return [clock_view(row) for row in rows]

    async def escalations(self, scope: Scope, where: EscalationFilter) -> list[EscalationView]:
        """Escalations in scope matching the filter, highest level first, then soonest due."""
        query = scope.where(select(Escalation, Case.team_code).join(Case))
        if where.team is not None:
            query = query.where(Case.team_code == where.team)
        if where.level is not None:
            query = query.where(Escalation.level == where.level)
        if where.min_level is not None:
            query = query.where(Escalation.level >= where.min_level)
        if where.state is not None:
            query = query.where(Escalation.state == where.state.value)
        if where.acknowledged is not None:
            acknowledged = Escalation.acknowledged_at.is_not(None)
            query = query.where(acknowledged if where.acknowledged else ~acknowledged)
        if where.due_before is not None:
            query = query.where(Escalation.due_at < where.due_before)
        if where.due_after is not None:
            query = query.where(Escalation.due_at >= where.due_after)
        query = query.order_by(Escalation.level.desc(), Escalation.due_at, Escalation.key)
        async with self._sessions() as session:
            rows = await session.execute(query.limit(MAX_ROWS))
            return [escalation_view(row, team) for row, team in rows]

    async def scope_of_staff(self, staff_code: str, managers: bool, on: date) -> Scope:
        """The cases a member of staff may see on a day.

        Args:
            staff_code: Their code in the directory.
            managers: True for a manager (their teams' cases), False for a practitioner
                (the cases allocated to them).
            on: The day, for cover of absent colleagues.

        Returns:
            A scope of teams (managers) or workers (practitioners), including those of
            colleagues they cover that day.

        """
        async with self._sessions() as session:
            covered = await session.scalars(
                select(Absence.staff_code).where(
                    Absence.cover_code == staff_code,
                    Absence.starts_on <= on,
                    Absence.ends_on >= on,
                )
            )
            codes = sorted({staff_code, *covered})
            if not managers:
                return Scope(workers=frozenset(codes))
            services = select(Service.code).where(
                or_(
                    Service.service_manager_code.in_(codes),
                    Service.head_of_service_code.in_(codes),
                )
            )
            teams = await session.scalars(
                select(Team.code).where(
                    or_(Team.manager_code.in_(codes), Team.service_code.in_(services))
                )
            )
            return Scope(teams=frozenset(teams))
