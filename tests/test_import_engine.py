"""Importing Annex A lists into a real engine: Temporal dev server, worker and read model.

The sample is generated for today (the dev server's clock is real), reduced to about 40
cases in the one team the test directory knows. The read model must show exactly the
alerts the dry run forecast, and a second import must change nothing.
"""

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import local_date
from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition
from caseclock.exports import list_all_clocks, write_clocks_csv, write_escalations_csv
from caseclock.importer import ImportPlan, apply_import, plan_import
from tests.data.annex_a import make_sample
from tests.engine_stack import engine_stack
from tests.helpers import wait_until
from workflows.case_types import workflow_id_for

DEFINITION_FILE = Path(__file__).parents[1] / "definitions" / "child-protection.yaml"

pytestmark = pytest.mark.temporal


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


def forecast_keys(plan: ImportPlan) -> set[str]:
    return {clock.alert_key for case in plan.cases for clock in case.clocks if clock.alert_key}


async def run_ids(client: Client, plan: ImportPlan) -> dict[str, str | None]:
    return {
        case.case_ref: (
            await client.get_workflow_handle(workflow_id_for(case.case_ref)).describe()
        ).run_id
        for case in plan.cases
    }


async def test_an_import_opens_cases_with_the_forecast_alerts_and_a_second_changes_nothing(
    local_env: WorkflowEnvironment, tmp_path: Path, definition: Definition
) -> None:
    now = datetime.now(UTC)
    today = local_date(now)
    files = make_sample.write(tmp_path / "lists", today, limit=50, staff=("T1", "SW-1"))
    plan = plan_import(files, definition, today)
    assert 35 <= len(plan.cases) <= 45
    assert plan.rejected_cases == ["BAD-0001", "BAD-0002", "BAD-0003", "BAD-0004"]
    expected = forecast_keys(plan)
    async with engine_stack(local_env.client, tmp_path) as stack:
        queue = stack.settings.temporal.task_queue
        result = await apply_import(plan, stack.client, queue, now)
        assert (result.opened, result.already_open, result.failed) == (len(plan.cases), 0, 0)

        async def escalation_keys() -> set[str]:
            return {row.key for row in await stack.read_model.list_escalations(open_only=False)}

        async def all_forecast_alerts_recorded() -> bool:
            return await escalation_keys() == expected

        await wait_until(all_forecast_alerts_recorded, timeout=60, message="forecast alerts")
        # Hand-computed in tests/test_import_plan.py for a Friday; here checked by rung
        # names that hold on any day: the 14-month plan's visit is overdue, its first core
        # group (never dated by Annex A) at the director, and nothing about its duration.
        rows = await stack.read_model.list_escalations(open_only=False)
        cp1 = {row.clock_id: row.level_name for row in rows if row.case_ref == "CP-0001"}
        assert cp1["first_core_group"] == "director"
        assert "cp_plan_duration" not in cp1
        assert {row.case_ref for row in rows} <= {case.case_ref for case in plan.cases}
        for case_ref in ("BAD-0001", "BAD-0004", "LA-00008"):  # rejected, or nothing open
            assert await stack.read_model.get_case(case_ref) is None
        for case in plan.cases[:10]:
            view = await wait_until(lambda ref=case.case_ref: stack.read_model.get_case(ref))
            assert view.current_stages["main"] == case.stages["main"]
            running = {
                clock.clock_id
                for clock in await stack.read_model.list_clocks(case.case_ref)
                if clock.status.value == "running"
            }
            assert running == {clock.clock_id for clock in case.clocks}
        # The exports read the same rows back as CSV.
        out = io.StringIO()
        assert write_escalations_csv(rows, out) == len(rows)
        exported = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert {row["key"] for row in exported} == expected
        running = await list_all_clocks(stack.sessions, team="T1", status="running")
        assert len(running) == sum(len(case.clocks) for case in plan.cases)
        out = io.StringIO()
        assert write_clocks_csv(running, out) == len(running)
        assert out.getvalue().splitlines()[0].startswith("case_ref,team,clock_id,occurrence")
        first_runs = await run_ids(stack.client, plan)
        first_count = len(rows)

        again = plan_import(files, definition, today)
        second = await apply_import(again, stack.client, queue, datetime.now(UTC))
        assert (second.opened, second.already_open, second.failed) == (0, len(plan.cases), 0)
        assert await run_ids(stack.client, plan) == first_runs
        assert await escalation_keys() == expected
        assert len(await stack.read_model.list_escalations(open_only=False)) == first_count
