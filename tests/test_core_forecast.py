"""The plan a case hands the sweep is exactly what its workflow would have raised itself.

A workflow that wakes at every ``next_wakeup`` and asks ``due_alerts`` raises a sequence of
alerts (see ``test_core_ladders``). ``forecast`` must plan the same alerts, with the same
keys, levels, roles and instants; ``advance`` must bring the state to where that workflow
would be; and catching up part-way then planning the rest must give the same alerts again.
"""

from datetime import datetime, timedelta

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.core.engine import next_wakeup
from caseclock.core.forecast import advance, forecast
from caseclock.db.alert_plan import DueAlert, collapse
from tests import test_core_ladders as ladders
from tests.test_core_ladders import CASE_REF, Case, d, utc

# The ladder tests' fixtures: the real definition and calendar, and a case on them.
calendar, case, definition = ladders.calendar, ladders.case, ladders.definition


def rungs(alerts: list[NotifyAction] | tuple[NotifyAction, ...]) -> list[tuple[str, datetime]]:
    return [(a.key, a.fire_at) for a in alerts]


def drifting_icpc(case: Case) -> None:
    case.record("referral_received", d("2020-12-18"))
    case.record("significant_harm_concern", d("2020-12-18"))
    case.record("strategy_discussion_held", d("2020-12-21"), "s47")


def test_the_plan_is_the_ladder_the_workflow_would_have_climbed(case: Case) -> None:
    drifting_icpc(case)
    start = case.state
    plan = forecast(case.definition, start, utc("2020-12-21T16:00"))
    # The same five rungs, keys and instants as test_an_icpc_left_to_drift_escalates...
    key = f"{CASE_REF}/icpc/1"
    assert rungs(plan.alerts) == [
        (f"{key}/0", utc("2021-01-13T00:00")),
        (f"{key}/1", utc("2021-01-15T00:00")),
        (f"{key}/2", utc("2021-01-19T00:00")),
        (f"{key}/3", utc("2021-01-22T00:00")),
        (f"{key}/4", utc("2021-01-29T00:00")),
    ]
    assert plan.through == utc("2021-01-29T00:00")
    assert plan.replan_at is None
    # And exactly what stepping the workflow produces, field for field.
    stepped = case.drift("icpc")
    assert list(plan.alerts) == stepped
    # Forecasting does not change the state it was given.
    assert case.state != start
    assert next_wakeup(start) == utc("2021-01-13T00:00")


def test_catching_up_then_planning_again_gives_the_same_alerts(case: Case) -> None:
    drifting_icpc(case)
    whole = forecast(case.definition, case.state, utc("2020-12-21T16:00"))
    # The case wakes (an event) on Mon 2021-01-18: two rungs were the sweep's already.
    now = utc("2021-01-18T10:00")
    caught_up, actions = advance(case.definition, case.state, now)
    raised = [a for a in actions if isinstance(a, NotifyAction)]
    rest = forecast(case.definition, caught_up, now)
    assert rungs(raised) + rungs(rest.alerts) == rungs(whole.alerts)
    assert [a.level for a in raised] == [0, 1]
    # Caught up one rung at a time, never collapsed: each keeps its own level.
    assert [a.covers_levels for a in raised] == [(0,), (1,)]
    assert caught_up.clocks["icpc"].levels_fired == (0, 1)


def test_a_plan_stops_at_its_bounds_and_says_when_to_plan_again(case: Case) -> None:
    drifting_icpc(case)
    now = utc("2020-12-21T16:00")
    short = forecast(case.definition, case.state, now, max_alerts=2)
    assert [a.level for a in short.alerts] == [0, 1]
    assert short.through == utc("2021-01-15T00:00")
    # The first rung left out: the workflow raises it itself, then plans again.
    assert short.replan_at == utc("2021-01-19T00:00")
    near = forecast(case.definition, case.state, now, max_ahead=timedelta(days=7))
    assert near.alerts == ()
    assert near.through == now
    assert near.replan_at == utc("2021-01-13T00:00")


def test_meeting_the_clock_leaves_nothing_to_plan(case: Case) -> None:
    drifting_icpc(case)
    case.record("icpc_held", d("2021-01-12"), "cp_plan")
    plan = forecast(case.definition, case.state, utc("2021-01-12T16:00"))
    assert all(alert.clock_id != "icpc" for alert in plan.alerts)


def due(action: NotifyAction) -> DueAlert:
    return DueAlert(action=action, team="T1", allocated_worker=None)


def test_rungs_due_together_at_the_sweep_go_as_one_alert_at_the_highest(case: Case) -> None:
    # After an outage the sweep finds rungs 0 and 1 of the ICPC due at once: one alert at
    # level 1 to the union of their roles, as the core's due_alerts would send.
    drifting_icpc(case)
    plan = forecast(case.definition, case.state, utc("2020-12-21T16:00"))
    first, second = plan.alerts[0], plan.alerts[1]
    [merged] = collapse([due(first), due(second)])
    assert merged.action.key == second.key
    assert merged.action.level == 1
    assert merged.action.state is AlertState.OVERDUE
    assert merged.action.covers_levels == (0, 1)
    assert merged.action.roles == ("social_worker", "team_manager")
    assert merged.supersedes == (first.key,)
    # Different clocks or cases are never merged.
    other = second.model_copy(update={"key": "CP-9/icpc/1/1", "case_ref": "CP-9"})
    assert len(collapse([due(first), due(other)])) == 2
