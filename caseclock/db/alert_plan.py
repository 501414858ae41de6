"""Planned alerts: each case's plan, and what the escalation sweep reads and settles.

A case's workflow writes the alerts its clocks will raise (``replace_plan``); the sweep
takes those that have fallen due (``due``), delivers them through the ledger, and records
the outcome (``settle``), then says when it must look again (``schedule_next_wake``). One
row in ``alert_sweep`` holds that instant, so that a plan due sooner wakes the sweep and a
plan due later does not (10,000 cases planned for the same Monday wake it once).

Exactly-once delivery stays with the delivery ledger; these rows only say what is due.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from caseclock.core.actions import NotifyAction
from caseclock.db.deliveries import utc_now
from caseclock.db.engine import insert_for
from caseclock.db.models import AlertSweepState, Case, Clock, PlannedAlert
from caseclock.db.step_sql import SWEEP_ROW, params, statements

# A sweep whose next wake is this far past is presumed not to be looking.
SWEEP_OVERDUE = timedelta(minutes=5)
MAX_ERROR_LENGTH = 2000
# Keys per IN list: well under the 32,766 bound variables SQLite allows in a statement.
IN_LIST_CHUNK = 500
# Bulk statements here never touch objects loaded in the session.
NO_SYNC = {"synchronize_session": False}
_Item = TypeVar("_Item")


class PlanStatus(StrEnum):
    """Where a planned alert stands."""

    PLANNED = "planned"
    DELIVERED = "delivered"
    # Fell due together with a higher rung of the same clock and was sent as part of it.
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class DueAlert:
    """A planned alert that has fallen due, with the case's allocation now.

    ``supersedes`` lists lower rungs of the same clock that fell due with it (after an
    outage): they are sent as this one alert, to the union of their roles.
    """

    action: NotifyAction
    team: str
    allocated_worker: str | None
    supersedes: tuple[str, ...] = ()


def collapse(alerts: Sequence[DueAlert]) -> list[DueAlert]:
    """Rungs of one clock occurrence due at once become one alert at the highest rung.

    The same rule as the core's ``due_alerts``: nobody is told "due soon" about something
    already overdue, and everyone the lower rungs would have told is told.
    """
    groups: dict[str, list[DueAlert]] = {}
    for alert in alerts:
        groups.setdefault(alert.action.key.rpartition("/")[0], []).append(alert)
    collapsed: list[DueAlert] = []
    for group in groups.values():
        top = max(group, key=lambda due: due.action.level)
        if len(group) == 1:
            collapsed.append(top)
            continue
        actions = [due.action for due in group]
        roles = tuple(dict.fromkeys(role for action in actions for role in action.roles))
        levels = tuple(sorted({level for action in actions for level in action.covers_levels}))
        merged = top.action.model_copy(update={"roles": roles, "covers_levels": levels})
        lower = tuple(due.action.key for due in group if due is not top)
        collapsed.append(
            DueAlert(merged, top.team, top.allocated_worker, supersedes=lower + top.supersedes)
        )
    return collapsed


@dataclass(frozen=True)
class Settlement:
    """What became of one due alert: delivered, or to be tried again with this error."""

    alert: DueAlert
    delivered: bool
    error: str | None = None


class AlertPlan:
    """The planned-alerts tables.

    Args:
        session_factory: Sessions for the read-model database.
        now: The clock for ``updated_at`` stamps, replaceable in tests.

    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory
        self._now = now

    async def replace_plan(
        self,
        case_ref: str,
        version: int,
        after: datetime,
        alerts: Sequence[NotifyAction],
        wake_sweep: Callable[[datetime], Awaitable[None]],
    ) -> bool:
        """Replace the case's alerts planned after ``after`` with ``alerts``.

        Alerts already due (at or before ``after``) stay for the sweep, so nothing that
        fell due before the case changed is withdrawn. A write with an older ``version``
        than the last one changes nothing (a stale retry of an earlier plan); the same
        version may be written again. If the plan falls due before the sweep will next
        look, ``wake_sweep`` is called inside the transaction, so a failure to wake it
        rolls the plan back and the caller's retry tries both again.

        Returns:
            False if the write was stale and ignored.

        """

        def wake(due: datetime) -> None:
            await_only(wake_sweep(due))

        async with self._sessions.begin() as session:
            return await session.run_sync(
                self.replace_plan_in, case_ref, version, after, alerts, wake
            )

    def replace_plan_in(
        self,
        session: Session,
        case_ref: str,
        version: int,
        after: datetime,
        alerts: Sequence[NotifyAction],
        wake_sweep: Callable[[datetime], None],
    ) -> bool:
        """:meth:`replace_plan` inside the caller's (synchronous) transaction.

        Used for a case's step, with the step's facts; ``wake_sweep`` blocks until the
        sweep has been woken, or raises.
        """
        sql, connection = statements(session), session.connection()
        claimed = connection.execute(sql.plan_claim, params(case_ref=case_ref, version=version))
        if claimed.first() is None:
            return False  # a later plan is recorded already: this one is stale
        connection.execute(
            sql.plan_delete_future,
            params(case_ref=case_ref, status=PlanStatus.PLANNED.value, after=after),
        )
        if not alerts:
            return True
        stamp = self._now()
        rows = [
            params(
                key=alert.key,
                case_ref=case_ref,
                status=PlanStatus.PLANNED.value,
                fire_at=alert.fire_at,
                due_at=alert.fire_at,
                action=alert.model_dump(mode="json"),
                attempts=0,
                last_error=None,
                updated_at=stamp,
            )
            for alert in alerts
        ]
        connection.execute(sql.plan_insert, rows)
        earliest = min(alert.fire_at for alert in alerts)
        # The sweep's next look comes forward to the plan's first alert if that is sooner,
        # or if the next look is long past (the sweep is stopped or stuck): then it is
        # woken, which also restarts it. The row comes back only if it changed.
        lowered = connection.execute(
            sql.sweep_lower, params(earliest=earliest, overdue_before=after - SWEEP_OVERDUE)
        )
        if lowered.first() is not None:
            wake_sweep(earliest)
        return True

    async def due(self, now: datetime, limit: int) -> list[DueAlert]:
        """Planned alerts due by ``now``, oldest first, with each case's allocation."""
        query = (
            select(PlannedAlert.action, Case.team_code, Case.allocated_worker_code)
            .join(Case, Case.case_ref == PlannedAlert.case_ref)
            .where(PlannedAlert.status == PlanStatus.PLANNED.value, PlannedAlert.due_at <= now)
            .order_by(PlannedAlert.due_at, PlannedAlert.key)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return collapse(
            [
                DueAlert(NotifyAction.model_validate(action), team, worker)
                for action, team, worker in rows
            ]
        )

    async def settle(
        self, settlements: Sequence[Settlement], now: datetime, retry_after: timedelta
    ) -> None:
        """Mark delivered alerts (and the rungs they covered), and put the rest back later.

        A delivered alert's levels are added to its clock occurrence's ``levels_fired``
        in the read model, as the workflow records them when it raises an alert itself.
        A few set-based statements per batch, whatever its size.
        """
        stamp = self._now()
        delivered = [settled.alert for settled in settlements if settled.delivered]
        failed: dict[str, list[str]] = {}
        for settled in settlements:
            if not settled.delivered:
                error = (settled.error or "")[:MAX_ERROR_LENGTH]
                failed.setdefault(error, []).extend(
                    [settled.alert.action.key, *settled.alert.supersedes]
                )
        async with self._sessions.begin() as session:
            await self._set_status(
                session, [a.action.key for a in delivered], PlanStatus.DELIVERED, stamp
            )
            await self._set_status(
                session,
                [key for a in delivered for key in a.supersedes],
                PlanStatus.SUPERSEDED,
                stamp,
            )
            for error, keys in failed.items():
                for chunk in _chunks(keys):
                    await session.execute(
                        update(PlannedAlert)
                        .where(PlannedAlert.key.in_(chunk))
                        .values(
                            attempts=PlannedAlert.attempts + 1,
                            due_at=now + retry_after,
                            last_error=error,
                            updated_at=stamp,
                        ),
                        execution_options=NO_SYNC,
                    )
            await self._record_levels_fired(session, delivered)

    async def schedule_next_wake(self, now: datetime, max_idle: timedelta) -> datetime:
        """Record and return when the sweep must look again: the next due alert, or later.

        Written in one transaction with the read of the next due instant, so that a plan
        written meanwhile either is seen here or sees this wake time and wakes the sweep.
        """
        async with self._sessions.begin() as session:
            await self._lock_sweep_row(session)
            next_due = (
                await session.execute(
                    select(func.min(PlannedAlert.due_at)).where(
                        PlannedAlert.status == PlanStatus.PLANNED.value
                    )
                )
            ).scalar_one_or_none()
            wake = now + max_idle if next_due is None else min(max(next_due, now), now + max_idle)
            await self._set_next_wake(session, wake)
        return wake

    # ---------------------------------------------------------------------------------

    @staticmethod
    async def _lock_sweep_row(session: AsyncSession) -> AlertSweepState:
        """The sweep's row, created if missing, locked for this transaction (PostgreSQL).

        SQLite has one writer at a time, so its write transactions are serial anyway.
        """
        create = (
            insert_for(session, AlertSweepState)
            .values(id=SWEEP_ROW, next_wake_at=None)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        await session.execute(create)
        return (
            await session.execute(
                select(AlertSweepState).where(AlertSweepState.id == SWEEP_ROW).with_for_update()
            )
        ).scalar_one()

    @staticmethod
    async def _set_next_wake(session: AsyncSession, wake: datetime) -> None:
        await session.execute(
            update(AlertSweepState)
            .where(AlertSweepState.id == SWEEP_ROW)
            .values(next_wake_at=wake),
            execution_options=NO_SYNC,
        )

    @staticmethod
    async def _set_status(
        session: AsyncSession, keys: list[str], status: PlanStatus, stamp: datetime
    ) -> None:
        for chunk in _chunks(keys):
            await session.execute(
                update(PlannedAlert)
                .where(PlannedAlert.key.in_(chunk))
                .values(status=status.value, last_error=None, updated_at=stamp),
                execution_options=NO_SYNC,
            )

    @staticmethod
    async def _record_levels_fired(session: AsyncSession, alerts: Sequence[DueAlert]) -> None:
        """Add each alert's levels to its clock occurrence: one read, one batched write."""
        fired: dict[tuple[str, str, int], set[int]] = {}
        for alert in alerts:
            action = alert.action
            where = (action.case_ref, action.clock_id, action.occurrence)
            fired.setdefault(where, set()).update(action.covers_levels)
        updates: list[dict[str, Any]] = []
        for chunk in _chunks(sorted({case_ref for case_ref, _, _ in fired})):
            rows = await session.execute(
                select(
                    Clock.id, Clock.case_ref, Clock.clock_id, Clock.occurrence, Clock.levels_fired
                ).where(Clock.case_ref.in_(chunk))
            )
            for row in rows:
                levels = fired.get((row.case_ref, row.clock_id, row.occurrence))
                if levels is not None and not levels <= set(row.levels_fired):
                    updates.append(
                        {"id": row.id, "levels_fired": sorted({*row.levels_fired, *levels})}
                    )
        if updates:
            # ORM bulk UPDATE by primary key: one executemany.
            await session.execute(update(Clock), updates)


def _chunks(items: Sequence[_Item]) -> list[Sequence[_Item]]:
    """Slices small enough for one statement's bound variables on every backend."""
    return [items[start : start + IN_LIST_CHUNK] for start in range(0, len(items), IN_LIST_CHUNK)]
