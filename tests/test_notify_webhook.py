"""Webhook delivery against a real HTTP server (FastAPI under uvicorn) on loopback."""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.core.deadline import Deadline
from caseclock.notify.message import AlertMessage, render_alert
from caseclock.notify.webhook import IDEMPOTENCY_HEADER, WebhookDeliveryError, WebhookSender
from caseclock.settings import WebhookSettings
from caseclock.units import Counting, Unit

KEY = "CASE-0001/assessment/1/2"
# Real webhook addresses carry a secret in the path; errors must not repeat it.
HOOK_ID = "T0000-B0000-not-a-real-token"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    base_url: str
    requests: list[Received] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/ok/{secret}")
    async def accept(secret: str, request: Request) -> Response:
        receiver.requests.append(
            Received(request.url.path, dict(request.headers), await request.json())
        )
        return Response("ok", media_type="text/plain")

    @app.post("/broken/{secret}")
    async def fail(secret: str) -> Response:
        return Response("invalid_payload", status_code=500, media_type="text/plain")

    @app.post("/moved/{secret}")
    async def moved(secret: str) -> Response:
        return Response(status_code=302, headers={"Location": f"/ok/{secret}"})

    return app


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(base_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        receiver_app(receiver),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.01)
    yield receiver
    server.should_exit = True
    await serving


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    async with httpx.AsyncClient() as client:
        yield WebhookSender(client, WebhookSettings(timeout_seconds=5))


@pytest.fixture(scope="module")
def alert() -> AlertMessage:
    deadline = Deadline(
        rule_id="cfa-45",
        rule_title="Child and family assessment",
        definition_id="cin",
        definition_version="3",
        start_event_type="referral_accepted",
        start_event_id="EV-0001",
        start_date=date(2020, 11, 16),
        amount=45,
        unit=Unit.WORKING_DAYS,
        counting=Counting.DAY_AFTER_IS_DAY_1,
        calendar_id="england-and-wales-2021.1",
        due_date=date(2021, 1, 14),
        due_at=datetime(2021, 1, 14, 23, 59, 59, tzinfo=UTC),
    )
    action = NotifyAction(
        key=KEY,
        case_ref="CASE-0001",
        clock_id="assessment",
        clock_title="Child and family assessment",
        occurrence=1,
        level=2,
        level_name="team manager",
        covers_levels=(2,),
        roles=("social_worker", "team_manager"),
        state=AlertState.OVERDUE,
        fire_at=datetime(2021, 1, 18, 9, tzinfo=UTC),
        deadline=deadline,
        what_to_do="Complete the assessment and record the outcome.",
    )
    return render_alert(action, "Sam Patel", "team_manager", None, "https://caseclock.example")


async def test_posts_the_alert_json_with_the_idempotency_key(
    receiver: Receiver, sender: WebhookSender, alert: AlertMessage
) -> None:
    await sender.post(f"{receiver.base_url}/ok/{HOOK_ID}", alert, KEY)

    received = receiver.requests[-1]
    assert received.path == f"/ok/{HOOK_ID}"
    assert received.headers["idempotency-key"] == KEY
    assert received.headers["content-type"] == "application/json"
    assert received.body == alert.webhook_json
    assert received.body["caseclock"] == {
        "key": KEY,
        "case_ref": "CASE-0001",
        "clock_id": "assessment",
        "level": 2,
        "state": "overdue",
        "due_at": "2021-01-14T23:59:59+00:00",
    }
    assert received.body["text"].startswith("Overdue: Child and family assessment for case")
    assert "https://caseclock.example/escalations/CASE-0001/assessment/1/2" in received.body["text"]


async def test_a_repeat_carries_the_same_key(
    receiver: Receiver, sender: WebhookSender, alert: AlertMessage
) -> None:
    url = f"{receiver.base_url}/ok/{HOOK_ID}"

    await sender.post(url, alert, KEY)
    await sender.post(url, alert, KEY)

    first, second = receiver.requests[-2:]
    assert first.headers[IDEMPOTENCY_HEADER.lower()] == second.headers[IDEMPOTENCY_HEADER.lower()]
    assert first.body == second.body


async def test_server_error_raises_with_the_status_code(
    receiver: Receiver, sender: WebhookSender, alert: AlertMessage
) -> None:
    with pytest.raises(WebhookDeliveryError, match="answered 500") as info:
        await sender.post(f"{receiver.base_url}/broken/{HOOK_ID}", alert, KEY)

    assert info.value.status_code == 500
    assert "invalid_payload" in str(info.value)
    assert HOOK_ID not in str(info.value)


async def test_redirect_is_not_followed(
    receiver: Receiver, sender: WebhookSender, alert: AlertMessage
) -> None:
    before = len(receiver.requests)

    with pytest.raises(WebhookDeliveryError, match="answered 302") as info:
        await sender.post(f"{receiver.base_url}/moved/{HOOK_ID}", alert, KEY)

    assert info.value.status_code == 302
    assert len(receiver.requests) == before


async def test_unreachable_receiver_raises_without_the_secret(
    sender: WebhookSender, alert: AlertMessage
) -> None:
    with pytest.raises(WebhookDeliveryError, match=r"to 127\.0\.0\.1 failed: ConnectError") as info:
        await sender.post(f"http://127.0.0.1:{free_port()}/ok/{HOOK_ID}", alert, KEY)

    assert info.value.status_code is None
    assert HOOK_ID not in str(info.value)
    assert info.value.__cause__ is None
