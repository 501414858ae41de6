"""Whole paths through the real workflow: the durable shell keeps the core's timeline.

The full-path scenarios (one that keeps to time, ones that drift at each stage) are moved
in time, by whole weeks, to start today on the time-skipping server; each event is
recorded through an update at 09:00 on its day, with time skipped in between. The alerts
the workflow delivers (read back from the read model) must be exactly those, at the same
instants, that the pure core gives for the same events; the scenario files themselves pin
the core's dates to hand-computed ones.
"""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import LONDON, WorkingCalendar, local_date
from caseclock.cases import calendar_for, case_summary, open_case, record_event
from caseclock.core.actions import NotifyAction
from caseclock.core.engine import apply_event, due_alerts, next_wakeup, start_case
from caseclock.core.events import CaseEvent
from caseclock.core.state import CaseState
from caseclock.definition.loader import load_definition
from caseclock.scenarios import ScenarioEvent, load_scenario
from tests.engine_stack import engine_stack
from tests.helpers import register_search_attributes
from workflows.case_types import Allocation

ROOT = Path(__file__).parents[1]
DEFINITION = load_definition(ROOT / "definitions" / "child-protection.yaml")
PATHS = ["on-time-full-path", "icpc-late-christmas-2020", "plo-decision-late", "cp-visits-late"]


def _events(scenario_events: tuple[ScenarioEvent, ...], shift: timedelta) -> list[CaseEvent]:
    """The scenario's accepted events, moved by ``shift``, recorded at 09:00 on their day."""
    events = []
    for number, item in enumerate(scenario_events, start=1):
        if item.expect_rejected or item.on is None or item.recorded_at or item.at:
            continue
        on = item.on + shift
        recorded_on = (item.recorded_on or item.on) + shift
        events.append(
            CaseEvent(
                event_id=item.id or f"e{number}",
                type=item.type,
                effective_date=on,
                recorded_at=datetime.combine(recorded_on, time(9), tzinfo=LONDON),
                recorded_by="SW-1",
                outcome=item.outcome,
                data=item.data,
            )
        )
    return events


def _calendar(events: list[CaseEvent]) -> WorkingCalendar:
    """The calendar open_case gives a case opened with the first event, when recorded."""
    return calendar_for(events[0].effective_date, local_date(events[0].recorded_at))


def _core_timeline(case_ref: str, events: list[CaseEvent], until: datetime) -> set[tuple]:
    """Alerts the pure core gives, stepping time exactly as the workflow does."""
    calendar = _calendar(events)
    state = start_case(DEFINITION, case_ref)
    sent: list[NotifyAction] = []

    def advance(now: datetime) -> None:
        nonlocal state
        while (wake := next_wakeup(state)) is not None and wake <= now:
            outcome = due_alerts(DEFINITION, state, wake)
            state = outcome.state
            sent.extend(a for a in outcome.actions if isinstance(a, NotifyAction))

    for index, event in enumerate(events):
        advance(event.recorded_at)
        state = apply_event(DEFINITION, state, event, calendar, event.recorded_at).state
        if index == 0:
            continue
        outcome = due_alerts(DEFINITION, state, event.recorded_at)
        state = outcome.state
        sent.extend(a for a in outcome.actions if isinstance(a, NotifyAction))
    advance(until)
    return {(a.key, a.covers_levels, a.fire_at) for a in sent}


@pytest.mark.parametrize("name", PATHS)
async def test_workflow_delivers_exactly_the_cores_alerts_along_a_whole_path(
    name: str,
    time_skipping_env_factory,
    tmp_path: Path,
) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "child-protection" / f"{name}.yaml")
    env: WorkflowEnvironment = await time_skipping_env_factory(None)
    await register_search_attributes(env.client)
    now = await env.get_current_time()
    first = next(e.on for e in scenario.events if e.on is not None)
    # Whole weeks keep every weekday; the first event lands in the coming week, and time
    # is skipped to each recording instant, so every event is recorded when planned.
    weeks = (now.astimezone(LONDON).date() - first).days // 7 + 1
    shift = timedelta(weeks=weeks)
    events = _events(scenario.events, shift)
    until = datetime.combine(scenario.expect.until + shift, time(23, 0), tzinfo=LONDON)
    case_ref = f"PATH-{PATHS.index(name) + 1:03d}"
    async with engine_stack(env.client, tmp_path) as stack:
        opening = events[0]
        await env.sleep(opening.recorded_at - now)
        await open_case(
            stack.client,
            stack.settings.temporal.task_queue,
            DEFINITION,
            case_ref,
            Allocation(team="T1", worker="SW-1"),
            [opening],
            opening.recorded_at,
        )
        for event in events[1:]:
            wait = event.recorded_at - await env.get_current_time()
            if wait > timedelta(0):
                await env.sleep(wait)
            await record_event(stack.client, case_ref, event)
        await env.sleep(until - await env.get_current_time())
        delivered = {
            (row.key, row.covers_levels, row.fire_at.astimezone(UTC))
            for row in await stack.read_model.list_escalations(open_only=False)
        }
        summary = await case_summary(stack.client, case_ref)
    assert summary.calendar_id == _calendar(events).calendar_id
    expected = _core_timeline(case_ref, events, until)
    assert delivered == {(k, c, f.astimezone(UTC)) for k, c, f in expected}
    if name == "on-time-full-path":
        assert delivered == set()
    else:
        assert delivered  # a drifting path does alert
    assert summary.stages == {
        track: stage.stage for track, stage in _final_state(case_ref, events).tracks.items()
    }


def _final_state(case_ref: str, events: list[CaseEvent]) -> CaseState:
    calendar = _calendar(events)
    state = start_case(DEFINITION, case_ref)
    for event in events:
        state = apply_event(DEFINITION, state, event, calendar, event.recorded_at).state
    return state
