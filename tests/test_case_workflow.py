"""The case workflow on a real Temporal server, with the real worker, read model and channels.

Updates run against the local dev server; long timers against the time-skipping server.
"""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import LONDON, local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.cases import case_summary, open_case, record_event
from caseclock.core.events import CaseEvent, EventRejectedError
from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition
from caseclock.search_attributes import STAGES_ATTRIBUTE
from tests.engine_stack import engine_stack
from tests.helpers import register_search_attributes, wait_until
from workflows.case import CaseWorkflow
from workflows.case_types import Allocation, CaseWorkflowInput, workflow_id_for

DEFINITION_FILE = Path(__file__).parents[1] / "definitions" / "child-protection.yaml"
CALENDAR = build_england_and_wales_calendar(2020, 2035)
ALLOCATION = Allocation(team="T1", worker="SW-1")


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


def event(
    event_id: str, kind: str, on: date, outcome: str | None = None, recorded: datetime | None = None
) -> CaseEvent:
    return CaseEvent(
        event_id=event_id,
        type=kind,
        effective_date=on,
        recorded_at=recorded or datetime.now(UTC),
        recorded_by="SW-1",
        outcome=outcome,
    )


async def test_late_recorded_referral_escalates_at_once_to_every_channel(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    today = local_date(datetime.now(UTC))
    received = CALENDAR.add_working_days(today, -12)  # decision was due 11 working days ago
    async with engine_stack(local_env.client, tmp_path) as stack:
        await stack.open_referral(definition, "LA-1001", received)
        rows = await wait_until(lambda: stack.read_model.list_escalations(team="T1"))
        # One alert, at the highest rung already due, covering all the rungs below it
        # (a one-day clock has no "due soon": that rung would fall before it started).
        assert [(row.key, row.covers_levels) for row in rows] == [
            ("LA-1001/referral_decision/1/4", (1, 2, 3, 4))
        ]
        everyone = {
            "sw1@example.org",
            "tm1@example.org",
            "sm1@example.org",
            "hos1@example.org",
            "dir1@example.org",
        }
        await wait_until(lambda: len(stack.mailbox.messages) == len(everyone), timeout=15)
        assert {message["To"] for message in stack.mailbox.messages} == everyone
        message = stack.mailbox.messages[0]
        assert "LA-1001" in message["Subject"]
        text = message.get_body(preferencelist=("plain",)).get_content()
        # What is overdue, why (the deadline's explanation), and what to do.
        assert "Decision on a referral" in text
        assert "1 working day from referral_received" in text
        assert "Decide the type of response" in text
        await wait_until(lambda: len(stack.webhooks.posts) == 1)
        assert stack.webhooks.posts[0]["caseclock"]["key"] == "LA-1001/referral_decision/1/4"
        inbox = await stack.read_model.inbox("TM-1")
        assert [item.escalation.key for item in inbox] == ["LA-1001/referral_decision/1/4"]


async def test_invalid_event_is_rejected_with_its_reason_and_changes_nothing(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    today = local_date(datetime.now(UTC))
    async with engine_stack(local_env.client, tmp_path) as stack:
        await stack.open_referral(definition, "LA-1002", today)

        async def stage() -> str | None:
            case = await stack.read_model.get_case("LA-1002")
            return case.current_stages.get("main") if case else None

        assert await wait_until(stage) == "referral"
        # Searchable by stage from the start (codes only), before any update.
        description = await stack.client.get_workflow_handle(workflow_id_for("LA-1002")).describe()
        stages = description.typed_search_attributes.get(STAGES_ATTRIBUTE)
        assert stages is not None
        assert "main:referral" in stages
        before = await case_summary(stack.client, "LA-1002")
        with pytest.raises(
            EventRejectedError, match="not allowed while Child's path is at 'referral'"
        ):
            await record_event(stack.client, "LA-1002", event("x1", "icpc_held", today, "cp_plan"))
        assert await case_summary(stack.client, "LA-1002") == before
        assert await stage() == "referral"
        clocks = await stack.read_model.list_clocks("LA-1002")
        assert [(clock.clock_id, clock.status.value) for clock in clocks] == [
            ("referral_decision", "running")
        ]


async def test_repeated_event_id_is_applied_once(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    today = local_date(datetime.now(UTC))
    async with engine_stack(local_env.client, tmp_path) as stack:
        await stack.open_referral(definition, "LA-1003", today)
        decision = event("d1", "referral_decision", today, "assessment")
        first = await record_event(stack.client, "LA-1003", decision)
        again = await record_event(stack.client, "LA-1003", decision)
        assert (first.duplicate, again.duplicate) == (False, True)
        summary = await case_summary(stack.client, "LA-1003")
        assert summary.stages["main"] == "assessment"
        clocks = {clock.clock_id: clock.status.value for clock in summary.clocks}
        assert clocks == {"referral_decision": "met", "assessment": "running"}


async def test_an_event_is_one_workflow_task_with_its_step_as_a_local_activity(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    today = local_date(datetime.now(UTC))
    async with engine_stack(local_env.client, tmp_path) as stack:
        await stack.open_referral(definition, "LA-1007", today)
        await record_event(
            stack.client, "LA-1007", event("d1", "referral_decision", today, "assessment")
        )
        # The update returns once its facts are written, whichever way the step ran.
        case = await stack.read_model.get_case("LA-1007")
        assert case is not None
        assert case.current_stages["main"] == "assessment"
        handle = stack.client.get_workflow_handle(workflow_id_for("LA-1007"))
        events = (await handle.fetch_history()).events
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        markers = [
            e.marker_recorded_event_attributes.marker_name
            for e in events
            if e.HasField("marker_recorded_event_attributes")
        ]
        assert "record_step" not in scheduled
        assert "core_local_activity" in markers
        # Accepted and completed in the same workflow task: no task in between.
        kinds = [e.WhichOneof("attributes") for e in events]
        accepted = kinds.index("workflow_execution_update_accepted_event_attributes")
        completed = kinds.index("workflow_execution_update_completed_event_attributes")
        assert "workflow_task_scheduled_event_attributes" not in kinds[accepted:completed]


async def test_drifting_referral_climbs_the_ladder_rung_by_rung(
    time_skipping_env_factory,
    tmp_path: Path,
    definition: Definition,
) -> None:
    env: WorkflowEnvironment = await time_skipping_env_factory(None)
    await register_search_attributes(env.client)
    start = await env.get_current_time()
    received = local_date(start)
    async with engine_stack(env.client, tmp_path) as stack:
        await open_case(
            stack.client,
            stack.settings.temporal.task_queue,
            definition,
            "LA-1004",
            ALLOCATION,
            [event("r1", "referral_received", received, recorded=start)],
            start,
        )
        await env.sleep(timedelta(days=25))
        rows = await stack.read_model.list_escalations(team="T1")
        levels = sorted((row.level, row.covers_levels) for row in rows)
        # The sweep woke at every rung, so each was sent on its own.
        assert levels == [(1, (1,)), (2, (2,)), (3, (3,)), (4, (4,))]
        # The sweep delivered them, and recorded each level on the case's clock.
        clocks = await stack.read_model.list_clocks("LA-1004")
        occurrence = next(c for c in clocks if c.clock_id == "referral_decision")
        assert occurrence.levels_fired == (1, 2, 3, 4)
        due = occurrence.deadline.due_date
        assert due == CALENDAR.add_working_days(received, 1)
        fired = {row.level: row.fire_at for row in rows}
        assert fired[1] == datetime.combine(due + timedelta(days=1), time(0), tzinfo=LONDON)


async def test_two_year_plan_keeps_history_bounded_by_continuing_as_new(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    today = local_date(datetime.now(UTC))
    # A calendar that ends within three years: continuing as new rebuilds it.
    short_calendar = build_england_and_wales_calendar(2020, today.year + 2)
    icpc = CALENDAR.add_working_days(today - timedelta(days=2 * 365), 0)
    opening = [
        event("r1", "referral_received", icpc - timedelta(days=20)),
        event("r2", "referral_decision", icpc - timedelta(days=20), "strategy_discussion"),
        event("r3", "strategy_discussion_held", icpc - timedelta(days=20), "s47"),
        event("r4", "icpc_held", icpc, "cp_plan"),
    ]
    async with engine_stack(local_env.client, tmp_path) as stack:
        client: Client = stack.client
        handle = await client.start_workflow(
            CaseWorkflow.run,
            CaseWorkflowInput(
                case_ref="LA-1005",
                allocation=ALLOCATION,
                definition=definition,
                calendar=short_calendar,
                initial_events=opening,
                history_limit=200,
            ),
            id=workflow_id_for("LA-1005"),
            task_queue=stack.settings.temporal.task_queue,
        )
        day, visits = icpc, 0
        while True:
            day = CALENDAR.add_working_days(day, 10)
            if day > today:
                break
            visits += 1
            await record_event(client, "LA-1005", event(f"v{visits}", "cp_visit", day))
            if visits % 2 == 0:
                await record_event(client, "LA-1005", event(f"c{visits}", "core_group_held", day))
        summary = await case_summary(client, "LA-1005")
        assert summary.runs > 1  # it continued as new
        assert summary.calendar_id != short_calendar.calendar_id
        assert summary.calendar_id.startswith(f"england-and-wales:2020-{today.year + 8}:")
        visits_clock = next(c for c in summary.clocks if c.clock_id == "cp_visits")
        assert visits_clock.occurrence == visits + 1  # numbering carried across runs
        description = await handle.describe()
        assert description.raw_description.workflow_execution_info.history_length < 260


async def test_a_closed_case_reopened_by_a_new_referral_carries_on_its_history(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    today = local_date(datetime.now(UTC))
    first = CALENDAR.add_working_days(today, -30)
    async with engine_stack(local_env.client, tmp_path) as stack:
        await stack.open_referral(definition, "LA-1006", first)
        await record_event(
            stack.client, "LA-1006", event("d1", "referral_decision", first, "no_further_action")
        )
        handle = stack.client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for("LA-1006"))
        closed = await handle.result()  # closing the case completes its workflow
        assert closed.state.tracks["main"].stage == "closed"

        async def closed_in_read_model() -> bool:
            case = await stack.read_model.get_case("LA-1006")
            return case is not None and case.closed_on is not None

        await wait_until(closed_in_read_model)
        # A new referral for the same child reopens the case from where it closed.
        again = event("r2", "referral_received", today)
        await open_case(
            stack.client,
            stack.settings.temporal.task_queue,
            definition,
            "LA-1006",
            ALLOCATION,
            [again],
            datetime.now(UTC),
        )
        summary = await case_summary(stack.client, "LA-1006")
        decision = next(c for c in summary.clocks if c.clock_id == "referral_decision")
        assert (decision.occurrence, decision.status.value) == (2, "running")

        async def both_episodes() -> list[tuple[int, str]]:
            clocks = await stack.read_model.list_clocks("LA-1006")
            return [(c.occurrence, c.status.value) for c in clocks]

        assert await wait_until(lambda: _equals(both_episodes, [(1, "met"), (2, "running")]))
        case = await stack.read_model.get_case("LA-1006")
        assert case is not None
        assert case.closed_on is None
        # The first episode's event ids still count: resending it changes nothing.
        resent = await record_event(
            stack.client, "LA-1006", event("d1", "referral_decision", first, "no_further_action")
        )
        assert resent.duplicate


async def _equals(read, expected) -> bool:
    return await read() == expected
