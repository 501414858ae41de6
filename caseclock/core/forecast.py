"""Looking ahead: the alerts a case will raise if nothing else happens, and catching up.

A case's alerts are delivered by one durable sweep over the read model rather than by a
timer in each case's workflow (so that thousands of alerts due at one instant cost a few
batched transactions, not thousands of workflow tasks). The workflow hands the sweep its
*plan*: every alert its clocks will raise, computed by the same ``due_alerts`` the workflow
would run had it woken at each ``next_wakeup``. Later, the workflow *catches up* through
the same instants, so its state (which levels have fired) is exactly what it would have
been had it delivered those alerts itself, and the alert keys match.

Pure functions; no I/O, no clock.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from caseclock.core.actions import Action, NotifyAction
from caseclock.core.engine import due_alerts, next_wakeup
from caseclock.core.state import CaseState
from caseclock.definition.schema import Definition

# A plan covers at most this many alerts or this far ahead; the workflow wakes where a
# plan stops to plan the next stretch. Normal cases stop well short of both (a ladder has a
# handful of rungs); the bounds keep one plan small whatever a definition says.
PLAN_MAX_ALERTS = 50
PLAN_MAX_AHEAD = timedelta(days=400)


@dataclass(frozen=True)
class Forecast:
    """The alerts due after ``after`` if no event arrives, and where the plan stops.

    ``through`` is the last instant the plan covers: every alert due by then (and after
    ``after``) is in ``alerts``. ``replan_at`` is None when no alert falls due after
    ``through`` unless an event changes the case; otherwise it is the first instant the
    plan leaves out, when the workflow must raise that alert itself and plan again.
    """

    alerts: tuple[NotifyAction, ...]
    through: datetime
    replan_at: datetime | None


def advance(
    definition: Definition, state: CaseState, until: datetime
) -> tuple[CaseState, list[Action]]:
    """Raise every alert due by ``until``, one wake-up instant at a time.

    Stepping through each instant (rather than asking once at ``until``) is what a workflow
    that woke at every rung would have done, so rungs that fell due at different instants
    stay separate alerts with their own keys.
    """
    actions: list[Action] = []
    while (wake := next_wakeup(state)) is not None and wake <= until:
        outcome = due_alerts(definition, state, wake)
        state = outcome.state
        actions.extend(outcome.actions)
    return state, actions


def forecast(
    definition: Definition,
    state: CaseState,
    after: datetime,
    *,
    max_alerts: int = PLAN_MAX_ALERTS,
    max_ahead: timedelta = PLAN_MAX_AHEAD,
) -> Forecast:
    """The alerts that will fall due after ``after`` if nothing else happens to the case.

    ``state`` must already have raised everything due by ``after`` (see :func:`advance`).
    """
    horizon = after + max_ahead
    alerts: list[NotifyAction] = []
    through = after
    while (wake := next_wakeup(state)) is not None:
        if wake > horizon or len(alerts) >= max_alerts:
            return Forecast(alerts=tuple(alerts), through=through, replan_at=wake)
        outcome = due_alerts(definition, state, wake)
        state = outcome.state
        alerts.extend(action for action in outcome.actions if isinstance(action, NotifyAction))
        through = wake
    return Forecast(alerts=tuple(alerts), through=through, replan_at=None)


def without_alerts(actions: list[Action]) -> list[Action]:
    """The record actions only: alerts that were planned are the sweep's to deliver."""
    return [action for action in actions if not isinstance(action, NotifyAction)]
