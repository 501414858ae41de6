"""The notify activities over AlertDelivery: results, and the errors Temporal retries on.

The activities are called as methods (their behaviour, not Temporal's dispatch, is what is
tested here; tests/test_case_workflow.py runs them in a real worker).
"""

import pytest
from temporalio.exceptions import ApplicationError

from activities.case_activities import (
    DeliveryInProgressError,
    NotifyActivities,
    NotifyAlertsInput,
    NotifyAlertsResult,
    NotifyEscalationInput,
    NotifyEscalationResult,
)
from caseclock.notify.delivery import AlertDelivery
from tests.db_fixtures import Database, database, unique
from tests.test_delivery_batch import World, make_world, notify, open_cases, smtp
from tests.test_notify_email import Mailbox, free_port, mailbox

__all__ = ["database", "mailbox"]  # fixtures


def activities(world: World, port: int) -> NotifyActivities:
    return NotifyActivities(
        world.read_model, world.directory, smtp(port), None, "https://caseclock.example"
    )


def request(world: World, ref: str, team: str | None = None) -> NotifyEscalationInput:
    return NotifyEscalationInput(action=notify(ref), team=team or world.team, allocated_worker=None)


async def test_notify_escalation_delivers_and_counts(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)
    notify_activities = activities(world, port)

    first = await notify_activities.notify_escalation(request(world, ref))
    again = await notify_activities.notify_escalation(request(world, ref))

    assert isinstance(notify_activities.delivery, AlertDelivery)
    assert first == NotifyEscalationResult(sent=4, already_sent=0, failed=0)
    assert again == NotifyEscalationResult(sent=0, already_sent=4, failed=0)
    assert len(handler.envelopes) == 2


async def test_notify_escalation_without_recipients_raises_no_recipients(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    _, port = mailbox
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)
    nowhere = unique("NOWHERE")

    with pytest.raises(ApplicationError, match=f"for team {nowhere}") as raised:
        await activities(world, port).notify_escalation(request(world, ref, team=nowhere))

    assert raised.value.type == "NoRecipients"
    assert not raised.value.non_retryable


async def test_notify_escalation_with_smtp_down_raises_delivery(database: Database) -> None:
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)

    with pytest.raises(ApplicationError, match="some deliveries failed: email to") as raised:
        await activities(world, free_port()).notify_escalation(request(world, ref))

    assert raised.value.type == "Delivery"
    assert not raised.value.non_retryable


async def test_notify_escalation_claimed_elsewhere_raises_in_progress(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    _, port = mailbox
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)
    await world.read_model.record_escalation(notify(ref))
    assert await world.read_model.claim_delivery(notify(ref).key, world.manager, "email")

    with pytest.raises(DeliveryInProgressError, match="claimed elsewhere"):
        await activities(world, port).notify_escalation(request(world, ref))


async def test_notify_alerts_delivers_the_rest_then_raises_for_a_retry(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 4)
    nowhere = unique("NOWHERE")
    batch = [request(world, ref) for ref in refs]
    batch[2] = request(world, refs[2], team=nowhere)
    notify_activities = activities(world, port)

    with pytest.raises(ApplicationError, match="1 of 4 alerts not delivered yet") as raised:
        await notify_activities.notify_alerts(NotifyAlertsInput(alerts=batch))

    assert raised.value.type == "Delivery"
    assert f"{notify(refs[2]).key} no_recipients" in str(raised.value)
    assert len(handler.envelopes) == 6
    healed = [request(world, ref) for ref in refs]
    result = await notify_activities.notify_alerts(NotifyAlertsInput(alerts=healed))
    assert result == NotifyAlertsResult(alerts=4, delivered=4, sent=4, already_sent=12)
    assert len(handler.envelopes) == 8
