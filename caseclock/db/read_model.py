"""Writing and reading the read model: idempotent upserts in, pydantic views out.

Every write is an ``INSERT ... ON CONFLICT`` or a conditional ``UPDATE`` keyed on the
natural key of the row, so an activity that runs twice (a retry, a replayed workflow, a
worker killed mid-burst) leaves the same rows as one that ran once.

Deliveries and the inbox live in ``caseclock.db.deliveries``; :class:`ReadModel` has
their methods too, so callers need one object.

Writes start with a write statement, which takes SQLite's write lock at once; reading first
and writing later would risk a ``SQLITE_BUSY`` that the busy timeout cannot retry.
"""

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from caseclock.core.actions import (
    NotifyAction,
    RecordClockAction,
    RecordEventAction,
    RecordStageAction,
)
from caseclock.db import ReadModelError, UnknownCaseError, UnknownEscalationError
from caseclock.db.deliveries import (
    DEFAULT_CLAIM_LEASE,
    NO_UPDATE,
    Claim,
    ClaimState,
    DeliveryKey,
    DeliveryLedger,
    DeliveryStatus,
    chunked,
    utc_now,
)
from caseclock.db.engine import Insert, insert_for
from caseclock.db.models import AuditEntry, Case, Clock, Escalation
from caseclock.db.step_sql import params, statements
from caseclock.db.step_writer import CallAsync, SessionWriter, StepWriter
from caseclock.db.views import (
    CaseView,
    ClockView,
    EscalationView,
    case_view,
    clock_view,
    escalation_view,
)

__all__ = [
    "AlertClaims",
    "CaseOpening",
    "Claim",
    "ClaimState",
    "DeliveryKey",
    "DeliveryStatus",
    "ReadModel",
    "ReadModelError",
    "UnknownCaseError",
    "UnknownEscalationError",
]


# Columns an upsert of an escalation leaves alone: its identity, and a manager's answer.
_ESCALATION_KEPT = frozenset(
    {"key", "created_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note"}
)


@dataclass(frozen=True)
class AlertClaims:
    """What :meth:`ReadModel.record_alerts_and_claim` did.

    Attributes:
        claims: Each delivery's claim.
        unknown_cases: Case references not in the read model, whose alerts were left out.

    """

    claims: dict[DeliveryKey, Claim]
    unknown_cases: frozenset[str]


def _escalation_row(action: NotifyAction, now: datetime) -> dict[str, Any]:
    return {
        "key": action.key,
        "case_ref": action.case_ref,
        "clock_id": action.clock_id,
        "clock_title": action.clock_title,
        "occurrence": action.occurrence,
        "level": action.level,
        "level_name": action.level_name,
        "covers_levels": list(action.covers_levels),
        "state": action.state.value,
        "roles": list(action.roles),
        "fire_at": action.fire_at,
        "due_at": action.deadline.due_at,
        "what_to_do": action.what_to_do,
        "created_at": now,
    }


def _escalation_upsert(stmt: Insert) -> Any:
    set_ = {c.name: c for c in stmt.excluded if c.name not in _ESCALATION_KEPT}
    return stmt.on_conflict_do_update(index_elements=["key"], set_=set_)


def _by_key(action: NotifyAction) -> str:
    return action.key


@dataclass(frozen=True)
class CaseOpening:
    """What the case row holds when a case opens (or reopens)."""

    definition_id: str
    definition_version: str
    team: str
    allocated_worker: str | None
    opened_on: date


class ReadModel(DeliveryLedger):
    """The read model's writes (idempotent) and reads (pydantic views).

    Constructed like :class:`DeliveryLedger`, whose delivery and inbox methods it has, plus
    the writer of case steps (:mod:`caseclock.db.step_writer`; the worker gives SQLite one
    with a thread of its own). Without one, steps go through the sessions.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        claim_lease: timedelta = DEFAULT_CLAIM_LEASE,
        now: Callable[[], datetime] = utc_now,
        step_writer: StepWriter | None = None,
    ) -> None:
        super().__init__(session_factory, claim_lease=claim_lease, now=now)
        self._steps = step_writer or SessionWriter(session_factory)

    @asynccontextmanager
    async def _case_write(self, case_ref: str) -> AsyncIterator[AsyncSession]:
        """A write transaction about one case; a missing case becomes UnknownCaseError."""
        async with self._unknown_case_is_an_error(case_ref), self._sessions.begin() as session:
            yield session

    @asynccontextmanager
    async def _unknown_case_is_an_error(self, case_ref: str) -> AsyncIterator[None]:
        # A row about a case that is not there fails its foreign key.
        try:
            yield
        except IntegrityError as exc:
            if await self.get_case(case_ref) is None:
                raise UnknownCaseError(case_ref) from exc
            raise

    # Cases -----------------------------------------------------------------------------

    async def upsert_case(
        self,
        case_ref: str,
        definition_id: str,
        definition_version: str,
        team: str,
        allocated_worker: str | None,
        opened_on: date,
    ) -> None:
        """Create or update a case; its recorded stages are kept."""
        opening = CaseOpening(definition_id, definition_version, team, allocated_worker, opened_on)
        async with self._sessions.begin() as session:
            await session.run_sync(self._upsert_case_in, case_ref, opening)

    def _upsert_case_in(self, session: Session, case_ref: str, opening: CaseOpening) -> None:
        connection = session.connection()
        connection.execute(
            statements(session).case_upsert,
            params(
                case_ref=case_ref,
                definition_id=opening.definition_id,
                definition_version=opening.definition_version,
                team_code=opening.team,
                allocated_worker_code=opening.allocated_worker,
                opened_on=opening.opened_on,
                closed_on=None,
                current_stages={},
                updated_at=self._now(),
            ),
        )
        self._copy_team_to_clocks(session, case_ref, opening.team)

    async def set_allocation(self, case_ref: str, team: str, allocated_worker: str | None) -> None:
        """Move a case to a team and worker (None: unallocated).

        Raises:
            UnknownCaseError: If the case has not been recorded.

        """
        async with self._sessions.begin() as session:
            stmt = (
                update(Case)
                .where(Case.case_ref == case_ref)
                .values(
                    team_code=team, allocated_worker_code=allocated_worker, updated_at=self._now()
                )
                .returning(Case.case_ref)
                .execution_options(**NO_UPDATE)
            )
            if (await session.execute(stmt)).first() is None:
                raise UnknownCaseError(case_ref)
            await session.run_sync(self._copy_team_to_clocks, case_ref, team)

    async def close_case(self, case_ref: str, closed_on: date) -> None:
        """Record that a case closed on a date.

        Raises:
            UnknownCaseError: If the case has not been recorded.

        """
        async with self._sessions.begin() as session:
            stmt = (
                update(Case)
                .where(Case.case_ref == case_ref)
                .values(closed_on=closed_on, updated_at=self._now())
                .returning(Case.case_ref)
                .execution_options(**NO_UPDATE)
            )
            if (await session.execute(stmt)).first() is None:
                raise UnknownCaseError(case_ref)

    async def record_step(
        self,
        case_ref: str,
        *,
        opening: CaseOpening | None = None,
        actions: Sequence[RecordEventAction | RecordStageAction | RecordClockAction] = (),
        also: Callable[[Session, CallAsync], None] | None = None,
    ) -> None:
        """Everything one step of a case changed, in one transaction, in order.

        The case row when it opens, its events, stage moves and clock occurrences, and
        ``also`` (the case's alert plan) last: all or none. ``also`` runs in the step's
        transaction as synchronous code (see :mod:`caseclock.db.step_writer`).

        Raises:
            UnknownCaseError: If the case has not been recorded (and is not opening).

        """

        def step(session: Session, call_async: CallAsync) -> None:
            if opening is not None:
                self._upsert_case_in(session, case_ref, opening)
            for action in actions:
                match action:
                    case RecordEventAction():
                        self._record_event_in(session, action)
                    case RecordStageAction():
                        self._record_stage_in(session, action)
                    case RecordClockAction():
                        self._record_clock_in(session, action)
            if also is not None:
                also(session, call_async)

        async with self._unknown_case_is_an_error(case_ref):
            await self._steps.write(step)

    @staticmethod
    def _copy_team_to_clocks(session: Session, case_ref: str, team: str) -> None:
        # Clocks carry the case's team so that a manager's dashboard is one indexed query.
        session.connection().execute(
            statements(session).team_to_clocks, params(case_ref=case_ref, team=team)
        )

    async def get_case(self, case_ref: str) -> CaseView | None:
        """The case, or None if it has not been recorded."""
        async with self._sessions() as session:
            row = await session.get(Case, case_ref)
            return None if row is None else case_view(row)

    # Events, stages, clocks ------------------------------------------------------------

    async def record_event(self, action: RecordEventAction) -> None:
        """Record an accepted event (one row per case and event id).

        Raises:
            UnknownCaseError: If the case has not been recorded.

        """
        async with self._case_write(action.case_ref) as session:
            await session.run_sync(self._record_event_in, action)

    @staticmethod
    def _record_event_in(session: Session, action: RecordEventAction) -> None:
        session.connection().execute(
            statements(session).event_upsert,
            params(
                case_ref=action.case_ref,
                event_id=action.event_id,
                event_type=action.event_type,
                effective_date=action.effective_date,
                effective_at=action.effective_at,
                recorded_at=action.recorded_at,
                recorded_by=action.recorded_by,
                outcome=action.outcome,
            ),
        )

    async def record_stage(self, action: RecordStageAction) -> None:
        """Record a stage change in the history and refresh the case's current stages.

        The current stage of each track is worked out from the whole history (latest
        ``entered_on``, then the order recorded), so a late or repeated write cannot roll a
        track back.

        Raises:
            UnknownCaseError: If the case has not been recorded.

        """
        async with self._case_write(action.case_ref) as session:
            await session.run_sync(self._record_stage_in, action)

    def _record_stage_in(self, session: Session, action: RecordStageAction) -> None:
        sql, connection = statements(session), session.connection()
        connection.execute(
            sql.stage_insert,
            params(
                case_ref=action.case_ref,
                track=action.track,
                stage=action.stage,
                entered_on=action.entered_on,
                event_id=action.event_id,
            ),
        )
        if connection.dialect.name == "postgresql":
            # FOR NO KEY UPDATE: serialises stage writes per case on PostgreSQL without
            # conflicting with the key-share lock the insert above took on the case row.
            # (SQLite's writers are serial already: there it would be one more statement.)
            connection.execute(sql.stage_lock, params(case_ref=action.case_ref))
        history = connection.execute(sql.stage_history, params(case_ref=action.case_ref))
        current = {row.track: row.stage for row in history}
        connection.execute(
            sql.case_stages,
            params(case_ref=action.case_ref, current_stages=current, updated_at=self._now()),
        )

    async def record_clock(self, action: RecordClockAction) -> None:
        """Create or update one occurrence of a clock, with its deadline explained.

        Raises:
            UnknownCaseError: If the case has not been recorded.

        """
        async with self._case_write(action.case_ref) as session:
            await session.run_sync(self._record_clock_in, action)

    def _record_clock_in(self, session: Session, action: RecordClockAction) -> None:
        snap, deadline = action.clock, action.clock.deadline
        session.connection().execute(
            statements(session).clock_upsert,
            params(
                case_ref=action.case_ref,
                clock_id=snap.clock_id,
                occurrence=snap.occurrence,
                title=snap.clock_title,
                status=snap.status.value,
                start_date=deadline.start_date,
                due_date=deadline.due_date,
                due_at=deadline.due_at,
                deadline=deadline.model_dump(mode="json"),
                explanation=deadline.explain(),
                levels_fired=list(snap.levels_fired),
                closed_by_event_id=snap.closed_by_event_id,
                closed_on=snap.closed_on,
                updated_at=self._now(),
            ),
        )

    async def list_clocks(self, case_ref: str) -> list[ClockView]:
        """The case's clock occurrences, soonest due first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Clock)
                .where(Clock.case_ref == case_ref)
                .order_by(Clock.due_at, Clock.clock_id, Clock.occurrence)
            )
            return [clock_view(row) for row in rows]

    # Escalations -----------------------------------------------------------------------

    async def record_escalation(self, action: NotifyAction) -> EscalationView:
        """Record an alert (one row per key); an acknowledgement already given is kept.

        Raises:
            UnknownCaseError: If the case has not been recorded.

        """
        async with self._case_write(action.case_ref) as session:
            stmt = insert_for(session, Escalation).values(_escalation_row(action, self._now()))
            await session.execute(_escalation_upsert(stmt))
            view = await self._escalation(session, action.key)
        if view is None:  # pragma: no cover - the row was written in this transaction
            raise UnknownEscalationError(action.key)
        return view

    async def record_alerts_and_claim(
        self, actions: Sequence[NotifyAction], wanted: Collection[DeliveryKey]
    ) -> AlertClaims:
        """Record many alerts and claim their deliveries, in one write transaction.

        Each escalation is upserted as :meth:`record_escalation` does, then its deliveries
        are claimed (see :class:`ClaimState`): inbox deliveries are delivered and marked sent
        at once, the others are claimed under lease for the caller to send and then mark
        with :meth:`mark_batch`. Alerts whose case is not in the read model are left out and
        named in the answer; every other alert is still recorded.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: If the database fails.

        """
        try:
            return await self._record_and_claim(actions, wanted, frozenset())
        except IntegrityError:
            refs = {action.case_ref for action in actions}
            unknown = frozenset(refs - await self._known_cases(refs))
            if not unknown:
                raise
        keep = [action for action in actions if action.case_ref not in unknown]
        keys = {action.key for action in keep}
        rest = [want for want in wanted if want.escalation_key in keys]
        return await self._record_and_claim(keep, rest, unknown)

    async def _record_and_claim(
        self,
        actions: Sequence[NotifyAction],
        wanted: Collection[DeliveryKey],
        unknown: frozenset[str],
    ) -> AlertClaims:
        now = self._now()
        # Sorted by key, so that two senders of overlapping batches lock rows in one order.
        rows = [_escalation_row(action, now) for action in sorted(actions, key=_by_key)]
        if not rows:
            return AlertClaims(claims={}, unknown_cases=unknown)
        async with self._sessions.begin() as session:
            # The write comes first: it takes SQLite's write lock before anything is read.
            await session.execute(_escalation_upsert(insert_for(session, Escalation)), rows)
            claims = await self._claim_deliveries(session, wanted, now)
        return AlertClaims(claims=claims, unknown_cases=unknown)

    async def _known_cases(self, refs: Collection[str]) -> set[str]:
        known: set[str] = set()
        async with self._sessions() as session:
            for chunk in chunked(sorted(refs)):
                query = select(Case.case_ref).where(Case.case_ref.in_(chunk))
                known.update(await session.scalars(query))
        return known

    async def acknowledge(self, key: str, staff_code: str, note: str) -> EscalationView:
        """Record that a member of staff has seen an alert and acted, with their note.

        The first acknowledgement stands: a later one changes nothing and comes back with
        ``already_acknowledged=True`` and the first one's who, when and note.

        Raises:
            UnknownEscalationError: If no escalation has this key.

        """
        async with self._sessions.begin() as session:
            stmt = (
                update(Escalation)
                .where(Escalation.key == key, Escalation.acknowledged_at.is_(None))
                .values(
                    acknowledged_at=self._now(),
                    acknowledged_by=staff_code,
                    acknowledgement_note=note,
                )
                .returning(Escalation.key)
                .execution_options(**NO_UPDATE)
            )
            first = (await session.execute(stmt)).first() is not None
            view = await self._escalation(session, key)
        if view is None:
            raise UnknownEscalationError(key)
        if not first:
            self._log.info(
                "escalation_already_acknowledged",
                key=key,
                staff_code=staff_code,
                acknowledged_by=view.acknowledged_by,
            )
        return view.model_copy(update={"already_acknowledged": not first})

    async def list_escalations(
        self,
        team: str | None = None,
        open_only: bool = True,
        level_at_least: int | None = None,
    ) -> list[EscalationView]:
        """Alerts, oldest first, optionally for one team, open ones, from a level up."""
        query = select(Escalation, Case.team_code).join(Case)
        if team is not None:
            query = query.where(Case.team_code == team)
        if open_only:
            query = query.where(Escalation.acknowledged_at.is_(None))
        if level_at_least is not None:
            query = query.where(Escalation.level >= level_at_least)
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(Escalation.fire_at, Escalation.key))
            return [escalation_view(row, team_code) for row, team_code in rows]

    @staticmethod
    async def _escalation(session: AsyncSession, key: str) -> EscalationView | None:
        query = select(Escalation, Case.team_code).join(Case).where(Escalation.key == key)
        found = (await session.execute(query)).first()
        return None if found is None else escalation_view(*found)

    # Deliveries and inbox --------------------------------------------------------------

    # Audit -----------------------------------------------------------------------------

    async def write_audit(
        self, actor: str, action: str, case_ref: str | None, detail: Mapping[str, Any]
    ) -> None:
        """Append an audit entry; ``detail`` holds codes and references, never personal data."""
        async with self._sessions.begin() as session:
            session.add(
                AuditEntry(
                    at=self._now(),
                    actor=actor,
                    action=action,
                    case_ref=case_ref,
                    detail=dict(detail),
                )
            )
