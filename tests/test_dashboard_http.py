"""The dashboard over plain HTTP (no JavaScript), against a real engine and read model.

Every page is read as a browser without JavaScript would: the whole content is in the HTML.
Signing in, scoping, auditing, CSRF, acknowledging and reassigning are driven with forms.
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from caseclock.api import create_app
from caseclock.db.models import AuditEntry
from caseclock.settings import EncryptionSettings, Environment
from tests.api_helpers import ISSUER, api_settings, oidc_issuer
from tests.dashboard_helpers import (
    DEFINITIONS,
    DashboardWorld,
    csrf_of,
    dashboard_world,
    dev_sign_in,
)
from tests.helpers import wait_until


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DashboardWorld]:
    async with dashboard_world(local_env.client, tmp_path_factory.mktemp("dashboard")) as built:
        yield built


async def audit_actions(world: DashboardWorld, case_ref: str) -> list[tuple[str, str]]:
    async with world.stack.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.case_ref == case_ref)
            .order_by(AuditEntry.id)
        )
        return [(actor, action) for actor, action in rows]


# Signing in ------------------------------------------------------------------------------


async def test_pages_need_a_session_and_say_where_to_sign_in(world: DashboardWorld) -> None:
    async with world.client() as http:
        for path in ("/", "/inbox", f"/cases/{world.ref('1001')}", "/performance", "/no-such-page"):
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/sign-in?next=/")
        # The inbox script gets a plain 401 and stops polling.
        assert (await http.get("/inbox/items")).status_code == 401
        # The API is untouched: bearer credentials, problem details.
        api = await http.get(f"/api/v1/cases/{world.ref('1001')}")
        assert api.status_code == 401
        assert api.headers["content-type"] == "application/problem+json"
        assert (await http.get("/api/v1/health")).status_code == 200


async def test_development_sign_in_sets_a_signed_http_only_lax_cookie(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        page = await http.get("/sign-in?next=/inbox")
        assert "Tara Manager (TM-1)" in page.text
        assert "Development sign-in" in page.text
        # Nobody chosen: the error summary links to the field, and nobody is signed in.
        token = page.text.split('name="form_token" value="')[1].split('"')[0]
        refused = await http.post("/sign-in/dev", data={"form_token": token, "next": "/"})
        assert refused.status_code == 422
        assert "There is a problem" in refused.text
        assert 'href="#staff_code"' in refused.text
        assert refused.text.count("<title>Error: ") == 1
        # A form not from this browser's sign-in page is refused.
        stranger = await http.post("/sign-in/dev", data={"form_token": "x", "staff_code": "TM-1"})
        assert stranger.status_code == 403
        signed_in = await dev_sign_in(http, "TM-1")
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith("caseclock_session=")
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()  # development serves plain http on loopback
        home = await http.get("/")
        assert home.status_code == 200
        assert "Tara Manager" in home.text
        # A tampered cookie is no session.
        value = http.cookies["caseclock_session"]
        flipped = "A" if value[-2] != "A" else "B"
        http.cookies.set("caseclock_session", value[:-2] + flipped + value[-1])
        assert (await http.get("/")).status_code == 303


async def test_signing_out_needs_the_session_token_and_ends_the_session(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        home = await http.get("/")
        assert (await http.post("/sign-out", data={"csrf_token": "forged"})).status_code == 403
        assert (await http.get("/")).status_code == 200
        out = await http.post("/sign-out", data={"csrf_token": csrf_of(home.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/sign-in")
        page = await http.get("/sign-in")
        assert "You have signed out." in page.text
        assert (await http.get("/")).status_code == 303


async def test_outside_development_the_cookie_is_secure_and_dev_sign_in_is_gone(
    world: DashboardWorld,
) -> None:
    async with oidc_issuer() as issuer:
        oidc = api_settings(world.stack.settings, issuer.jwks_url).auth
        settings = world.stack.settings.model_copy(
            update={
                "environment": Environment.TEST,
                "auth": oidc.model_copy(
                    update={"session_secret": SecretStr("s" * 40), "dev_sign_in": False}
                ),
                "encryption": EncryptionSettings(keys=[SecretStr("k1:" + "A" * 43 + "=")]),
            }
        )
        app = create_app(settings, world.stack.client, world.stack.sessions, DEFINITIONS)
        async with DashboardWorld(world.stack, app, world.prefix).client() as http:
            page = await http.get("/sign-in")
            assert "Development sign-in" not in page.text
            assert "set-cookie" not in page.headers
            refused = await http.post("/sign-in/dev", data={"staff_code": "TM-1"})
            assert refused.status_code == 404
            token = issuer.token("person-tm1", ["manager"], "TM-1")
            signed_in = await http.post("/sign-in/token", data={"id_token": token})
            cookie = signed_in.headers["set-cookie"]
            assert cookie.startswith("__Host-caseclock-session=")
            assert "; secure" in cookie.lower()
            assert "path=/" in cookie.lower()
            assert "domain" not in cookie.lower()


async def test_a_person_signs_in_with_an_openid_connect_id_token(world: DashboardWorld) -> None:
    async with oidc_issuer() as issuer:
        settings = api_settings(world.stack.settings, issuer.jwks_url)
        app = create_app(settings, world.stack.client, world.stack.sessions, DEFINITIONS)
        async with DashboardWorld(world.stack, app, world.prefix).client() as http:
            assert "organisation\u2019s account" in (await http.get("/sign-in")).text
            token = issuer.token("person-tm1", ["manager"], "TM-1")
            signed_in = await http.post("/sign-in/token", data={"id_token": token})
            assert signed_in.status_code == 303
            home = await http.get("/")
            assert "Tara Manager" in home.text
            assert world.ref("1001") in home.text
            forged = issuer.token("x", ["leader"], key=issuer.other_key)
            refused = await http.post("/sign-in/token", data={"id_token": forged})
            assert refused.status_code == 401
            assert "signature" in refused.text
            no_role = await http.post("/sign-in/token", data={"id_token": issuer.token("y", [])})
            assert no_role.status_code == 403
            wrong_issuer = issuer.token("z", ["leader"], issuer="https://evil.invalid")
            refused = await http.post("/sign-in/token", data={"id_token": wrong_issuer})
            assert refused.status_code == 401
    assert settings.auth.oidc_issuer == ISSUER


# Reading ---------------------------------------------------------------------------------


async def test_my_work_lists_the_teams_drift_most_urgent_first_without_javascript(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        page = (await http.get("/")).text
        escalated, due_soon = page.index(world.ref("1001")), page.index(world.ref("1002"))
        assert escalated < due_soon
        assert "Escalated: director" in page
        assert "Due soon" in page
        assert world.ref("2001") not in page  # another team's
        unallocated = page.split('id="unallocated-heading"')[1].split('id="transfer-heading"')[0]
        assert world.ref("1003") in unallocated
        waiting = page.split('id="transfer-heading"')[1]
        assert world.ref("1004") in waiting
        # Filters are a GET form: one clock only.
        filtered = (await http.get("/?clock=assessment")).text
        table = filtered.split('id="clocks-heading"')[1].split('id="unallocated-heading"')[0]
        assert world.ref("1002") in table
        assert world.ref("1001") not in table
        # A value that is not a choice is ignored, not trusted.
        assert world.ref("1001") in (await http.get("/?team=T2")).text


async def test_a_practitioner_sees_their_own_cases_and_no_performance(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "SW-2")
        page = (await http.get("/")).text
        assert world.ref("2001") in page
        assert world.ref("1001") not in page
        assert (await http.get("/performance")).status_code == 403
        assert (await http.get(f"/cases/{world.ref('1001')}")).status_code == 403


async def test_the_case_page_explains_every_deadline_and_the_read_is_audited(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        response = await http.get(f"/cases/{world.ref('1001')}")
        assert response.status_code == 200
        page = response.text
        assert f"Timeline of case {world.ref('1001')}" in page  # the picture's accessible name
        assert "Referral received" in page  # the list of what happened
        # Why the deadline is what it is: rule, start event, period, counting, calendar.
        assert "rule referral_decision" in page
        assert "Referral received, " in page
        assert "1 working day" in page
        assert "The day after the start is day 1" in page
        assert "england-and-wales:" in page
        assert "Escalated" not in page or "Alert: Decision on a referral" in page
    assert ("TM-1", "case.read") in await audit_actions(world, world.ref("1001"))


async def test_a_manager_of_another_team_gets_a_403_page_and_the_refusal_is_audited(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "TM-2")
        response = await http.get(f"/cases/{world.ref('1001')}")
        assert response.status_code == 403
        assert "You do not have access to this page" in response.text
        assert "outside your scope" in response.text
        key = (await world.inbox_keys("TM-1"))[0]
        assert (await http.get(f"/escalations/{key}")).status_code == 403
        assert (await http.get("/cases/NO-SUCH-1")).status_code == 404
    assert ("TM-2", "case.read.denied") in await audit_actions(world, world.ref("1001"))


async def test_performance_shows_each_measure_with_its_definition_chart_table_and_csv(
    world: DashboardWorld,
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "DIR-1")
        page = (await http.get("/performance")).text
        assert "Initial conferences within 15 working days" in page
        assert "England 2024-25: 81.4% (DfE Children in need 2025, table C4)" in page
        assert "Chart: Assessments within 45 working days" in page
        assert "Assessments within 45 working days, by team and month" in page
        assert "Caseload per worker" in page
        assert "Sam Worker" in page
        csv = await http.get("/performance.csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "measure,team,month,numerator,denominator,value"
        assert "escalations_acknowledged,T1," in csv.text
        caseload = await http.get("/performance/caseload.csv")
        assert "T1,SW-1,3" in caseload.text
        bad = await http.get("/performance?from=2026-13&to=2026-01")
        assert bad.status_code == 422
        assert "There is a problem" in bad.text


async def test_security_headers_and_static_files(world: DashboardWorld) -> None:
    async with world.client() as http:
        page = await http.get("/sign-in")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        css = await http.get("/assets/govuk-frontend.min.css")
        assert css.status_code == 200
        assert "govuk" in css.text
        assert (await http.get("/assets/govuk-frontend.min.js")).status_code == 200
        assert (await http.get("/static/dashboard.css")).status_code == 200
        # The GDS Transport font is for GOV.UK services only: not served.
        fonts = await http.get("/assets/fonts/bold-b542beb274-v2.woff2")
        assert fonts.status_code in (303, 404)


# Acting ----------------------------------------------------------------------------------


async def test_acknowledging_without_javascript_records_oversight_shown_on_the_case(
    world: DashboardWorld,
) -> None:
    key = next(k for k in await world.inbox_keys("TM-1") if k.startswith(f"{world.ref('1003')}/"))
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        page = await http.get(f"/escalations/{key}")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        # Without the session's token nothing changes.
        forged = await http.post(f"/escalations/{key}/acknowledge", data={"note": "x"})
        assert forged.status_code == 403
        # From another site nothing changes either.
        cross = await http.post(
            f"/escalations/{key}/acknowledge",
            data={"note": "x", "csrf_token": csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        empty = await http.post(f"/escalations/{key}/acknowledge", data={"csrf_token": csrf})
        assert empty.status_code == 422
        assert "Enter what you have done or decided about this alert" in empty.text
        assert key in await world.inbox_keys("TM-1")
        note = "Allocated to SW-1 today; strategy discussion booked for tomorrow 10am."
        done = await http.post(
            f"/escalations/{key}/acknowledge", data={"csrf_token": csrf, "note": note}
        )
        assert (done.status_code, done.headers["location"]) == (303, "/inbox")
        inbox = await http.get("/inbox")
        assert f"You acknowledged the alert for {world.ref('1003')}" in inbox.text
        assert f'data-key="{key}"' not in inbox.text
        case = await http.get(f"/cases/{world.ref('1003')}")
        assert note in case.text
        assert "Acknowledged by Tara Manager (TM-1)" in case.text
    assert ("TM-1", "escalation.acknowledge") in await audit_actions(world, world.ref("1003"))


async def test_reassigning_moves_the_alert_to_another_manager_of_the_line(
    world: DashboardWorld,
) -> None:
    key = next(k for k in await world.inbox_keys("TM-1") if k.startswith(f"{world.ref('1004')}/"))
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        page = await http.get(f"/escalations/{key}")
        assert "Sian Service (SM-1), service manager" in page.text
        assert "Tom Manager" not in page.text  # another service's manager is no choice
        csrf = csrf_of(page.text)
        wrong = await http.post(
            f"/escalations/{key}/reassign", data={"csrf_token": csrf, "to": "TM-2"}
        )
        assert wrong.status_code == 422
        assert "Select the manager to reassign this alert to" in wrong.text
        moved = await http.post(
            f"/escalations/{key}/reassign", data={"csrf_token": csrf, "to": "SM-1"}
        )
        assert moved.status_code == 303
        assert key not in await world.inbox_keys("TM-1")
        assert key in await wait_until(lambda: world.inbox_keys("SM-1"))
        case = await http.get(f"/cases/{world.ref('1004')}")
        assert "Alert reassigned to Sian Service (SM-1)" in case.text
    assert ("TM-1", "escalation.reassign") in await audit_actions(world, world.ref("1004"))


async def test_a_form_sent_after_the_session_ended_changes_nothing_and_asks_to_sign_in(
    world: DashboardWorld,
) -> None:
    prefix = world.ref("1001") + "/"
    key = next(k for k in await world.inbox_keys("TM-1") if k.startswith(prefix))
    async with world.client() as http:
        response = await http.post(f"/escalations/{key}/acknowledge", data={"note": "late"})
        assert response.status_code == 303
        assert response.headers["location"] == f"/sign-in?next=/escalations/{key}"
        page = await http.get(response.headers["location"])
        assert "Your session had ended, so nothing was changed." in page.text
    assert key in await world.inbox_keys("TM-1")


async def test_unknown_paths_and_escalations_get_html_error_pages(world: DashboardWorld) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        missing = await http.get("/no-such-page")
        assert missing.status_code == 404
        assert "Page not found" in missing.text
        unknown = await http.get("/escalations/NOPE-1/x/1/1")
        assert unknown.status_code == 404
        assert "Escalation not found" in unknown.text
