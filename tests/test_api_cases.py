"""The API against a real engine: Temporal dev server, the production worker, SQLite.

A case is started, moved on and read back over real HTTP (uvicorn on loopback); each kind of
bad request gets its problem-details body and changes nothing; an acknowledgement is
shown on the case as management oversight; reads and changes are audited.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.db.models import AuditEntry
from tests.api_helpers import (
    DEFINITION_KEY,
    Api,
    api_client,
    api_settings,
    case_ref,
    load_two_teams,
)
from tests.engine_stack import EngineStack, engine_stack, free_port
from tests.helpers import wait_until

CALENDAR = build_england_and_wales_calendar(2020, 2035)
TODAY = local_date(datetime.now(UTC))
TOKENS = {
    "integration": ("integration", None),
    "admin": ("admin", None),
    "manager_t1": ("manager", "TM-1"),
    "manager_b": ("manager", "TM-B"),
    "worker_1": ("practitioner", "SW-1"),
}


@pytest_asyncio.fixture
async def stack(local_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[EngineStack]:
    async with engine_stack(local_env.client, tmp_path) as running:
        await load_two_teams(running.sessions)
        yield running


@pytest_asyncio.fixture
async def api(stack: EngineStack) -> AsyncIterator[Api]:
    async with api_client(api_settings(stack.settings), stack.client, stack.sessions, TOKENS) as a:
        yield a


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def referral(ref: str, on: date = TODAY, event_id: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "case_ref": ref,
        "team": "T1",
        "worker": "SW-1",
        "definition": DEFINITION_KEY,
        "referral": {
            "event_id": event_id,
            "type": "referral_received",
            "effective_date": on.isoformat(),
            "recorded_by": "SW-1",
            **extra,
        },
    }


def decision(event_id: str = "d1", outcome: str = "assessment", on: date = TODAY) -> dict:
    return {
        "event_id": event_id,
        "type": "referral_decision",
        "effective_date": on.isoformat(),
        "outcome": outcome,
        "recorded_by": "SW-1",
    }


async def audit(stack: EngineStack, ref: str) -> list[tuple[str, str]]:
    async with stack.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.case_ref == ref)
            .order_by(AuditEntry.id)
        )
        return [(actor, action) for actor, action in rows]


async def test_start_record_and_read_a_case_over_real_http_through_the_worker(
    api: Api, stack: EngineStack
) -> None:
    ref = case_ref()
    async with served(api.app) as base, httpx.AsyncClient(base_url=base) as http:
        headers = api.as_("integration")
        started = await http.post("/api/v1/cases", json=referral(ref), headers=headers)
        assert started.status_code == 201, started.text
        assert started.headers["location"] == f"/api/v1/cases/{ref}"
        assert started.json() == {
            "case_ref": ref,
            "started": True,
            "recorded": True,
            "location": f"/api/v1/cases/{ref}",
        }
        again = await http.post("/api/v1/cases", json=referral(ref), headers=headers)
        assert (again.status_code, again.json()["started"]) == (200, False)

        recorded = await http.post(f"/api/v1/cases/{ref}/events", json=decision(), headers=headers)
        assert recorded.status_code == 201, recorded.text
        assert recorded.json()["stages"]["main"] == "assessment"
        resent = await http.post(f"/api/v1/cases/{ref}/events", json=decision(), headers=headers)
        assert (resent.status_code, resent.json()["duplicate"]) == (200, True)

        read = await http.get(f"/api/v1/cases/{ref}", headers=api.as_("worker_1"))
    assert read.status_code == 200
    body = read.json()
    assert body["case"]["current_stages"]["main"] == "assessment"
    assert [e["event_id"] for e in body["events"]] == ["r1", "d1"]
    assert [c["clock_id"] for c in body["met_clocks"]] == ["referral_decision"]
    assert [c["clock_id"] for c in body["open_clocks"]] == ["assessment"]
    assessment = body["open_clocks"][0]
    assert "45 working days" in assessment["explanation"]
    assert assessment["deadline"]["due_date"] == CALENDAR.add_working_days(TODAY, 45).isoformat()
    assert ("main", "assessment") in [(s["track"], s["stage"]) for s in body["stage_history"]]
    token_actor = await wait_until(lambda: audit(stack, ref))
    actions = [action for _, action in token_actor]
    assert actions == ["case.start", "case.event", "case.event", "case.read"]
    assert token_actor[-1][0] == "SW-1"  # a practitioner's token reads as their staff code


async def test_each_kind_of_bad_request_gets_a_problem_naming_the_field_and_changes_nothing(
    api: Api, stack: EngineStack
) -> None:
    http, headers = api.http, api.as_("integration")
    ref = case_ref()
    assert (await http.post("/api/v1/cases", json=referral(ref), headers=headers)).is_success

    async def problem(response: httpx.Response, status: int, kind: str) -> list[dict]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == f"urn:caseclock:problem:{kind}"
        assert {"type", "title", "status", "detail", "errors"} <= set(body)
        return [dict(item) for item in body["errors"]]

    events = f"/api/v1/cases/{ref}/events"
    # Unknown case.
    errors = await problem(
        await http.post("/api/v1/cases/NO-1/events", json=decision(), headers=headers),
        404,
        "unknown-case",
    )
    assert errors[0]["field"] == "case_ref"
    # Not allowed now, with the core's reason.
    icpc = {**decision("x1", "cp_plan"), "type": "icpc_held"}
    errors = await problem(
        await http.post(events, json=icpc, headers=headers), 422, "event-rejected"
    )
    assert errors[0]["field"] == "type"
    assert "not allowed while Child's path is at 'referral'" in errors[0]["reason"]
    # A wrong outcome and a future date: every reason at once.
    bad = decision("x2", "nonsense", TODAY + timedelta(days=3))
    errors = await problem(
        await http.post(events, json=bad, headers=headers), 422, "event-rejected"
    )
    assert {e["field"] for e in errors} == {"outcome", "effective_date"}
    # Malformed date.
    errors = await problem(
        await http.post(
            events, json={**decision(), "effective_date": "2026-02-30"}, headers=headers
        ),
        422,
        "invalid-request",
    )
    assert errors[0]["field"] == "effective_date"
    # A reused id for different facts.
    assert (await http.post(events, json=decision(), headers=headers)).status_code == 201
    errors = await problem(
        await http.post(events, json=decision(outcome="nfa"), headers=headers),
        409,
        "duplicate-event-id",
    )
    assert errors[0]["field"] == "event_id"
    # A second referral for an open case.
    await problem(
        await http.post("/api/v1/cases", json=referral(ref, event_id="r2"), headers=headers),
        409,
        "case-already-open",
    )
    # Unknown definition, unknown field, missing recorder.
    errors = await problem(
        await http.post(
            "/api/v1/cases",
            json={**referral(case_ref()), "definition": "nope@1"},
            headers=headers,
        ),
        422,
        "unknown-definition",
    )
    assert errors[0]["field"] == "definition"
    errors = await problem(
        await http.post(events, json={**decision("x3"), "colour": "red"}, headers=headers),
        422,
        "invalid-request",
    )
    assert errors[0]["field"] == "colour"
    no_recorder = {k: v for k, v in decision("x4").items() if k != "recorded_by"}
    errors = await problem(
        await http.post(events, json=no_recorder, headers=headers), 422, "invalid-request"
    )
    assert errors[0]["field"] == "recorded_by"
    # Unknown escalation.
    errors = await problem(
        await http.post(
            "/api/v1/escalations/NO-1/x/1/1/acknowledge",
            json={"note": "seen"},
            headers=api.as_("admin"),
        ),
        404,
        "unknown-escalation",
    )
    assert errors[0]["field"] == "key"

    # Nothing was half-applied: the case is where the one good event left it.
    body = (await http.get(f"/api/v1/cases/{ref}", headers=headers)).json()
    assert [e["event_id"] for e in body["events"]] == ["r1", "d1"]
    assert body["case"]["current_stages"]["main"] == "assessment"
    # A refused referral starts nothing.
    future = referral(ref2 := case_ref(), TODAY + timedelta(days=1))
    errors = await problem(
        await http.post("/api/v1/cases", json=future, headers=headers), 422, "event-rejected"
    )
    assert errors[0]["field"] == "referral.effective_date"
    assert (await http.get(f"/api/v1/cases/{ref2}", headers=headers)).status_code == 404


async def test_an_acknowledgement_is_shown_on_the_case_as_management_oversight(
    api: Api, stack: EngineStack
) -> None:
    http = api.http
    ref = case_ref()
    late = CALENDAR.add_working_days(TODAY, -12)  # the decision was due 11 working days ago
    started = await http.post(
        "/api/v1/cases", json=referral(ref, late), headers=api.as_("integration")
    )
    assert started.status_code == 201

    async def escalations(who: str) -> list[dict]:
        response = await http.get("/api/v1/escalations?team=T1", headers=api.as_(who))
        return [row for row in response.json() if row["case_ref"] == ref]

    rows = await wait_until(lambda: escalations("manager_t1"))
    key = rows[0]["key"]
    assert key == f"{ref}/referral_decision/1/4"
    assert await escalations("manager_b") == []  # another team's manager sees none
    overdue = await http.get("/api/v1/clocks?overdue=true", headers=api.as_("manager_t1"))
    assert [(c["case_ref"], c["clock_id"]) for c in overdue.json()] == [(ref, "referral_decision")]

    path = f"/api/v1/escalations/{key}/acknowledge"
    refused = await http.post(path, json={"note": "x"}, headers=api.as_("manager_b"))
    assert refused.status_code == 403
    note = "Decision made with the duty manager today; worker supported."
    first = await http.post(path, json={"note": note}, headers=api.as_("manager_t1"))
    assert first.status_code == 200, first.text
    assert (first.json()["acknowledged_by"], first.json()["already_acknowledged"]) == (
        "TM-1",
        False,
    )
    again = await http.post(path, json={"note": "again"}, headers=api.as_("admin"))
    assert again.status_code == 422  # an admin token not tied to staff must name the manager
    again = await http.post(
        path, json={"note": "again", "acknowledged_by": "SM-1"}, headers=api.as_("admin")
    )
    assert again.json()["already_acknowledged"] is True
    assert again.json()["acknowledgement_note"] == note

    case = (await http.get(f"/api/v1/cases/{ref}", headers=api.as_("manager_t1"))).json()
    assert case["management_oversight"] == [
        {
            "key": key,
            "clock_id": "referral_decision",
            "level": 4,
            "level_name": case["escalations"][0]["level_name"],
            "acknowledged_by": "TM-1",
            "acknowledged_at": first.json()["acknowledged_at"],
            "note": note,
        }
    ]
    assert await audit(stack, ref) == [
        ("token:" + api.tokens["integration"].split("_")[1], "case.start"),
        ("TM-B", "escalation.acknowledge.denied"),
        ("TM-1", "escalation.acknowledge"),
        ("token:" + api.tokens["admin"].split("_")[1], "escalation.acknowledge"),
        ("TM-1", "case.read"),
    ]
