"""The dashboard in real headless Chromium (Debian's, driven by Playwright) over real HTTP.

The app is served by uvicorn on loopback, over the real worker, Temporal dev server and
SQLite read model, with drifting cases (``tests/dashboard_helpers.py``). A manager signs in,
acknowledges an escalation, sees it leave the inbox and appear on the case's timeline; a
manager of another team is refused the case; the inbox updates itself when a new alert
arrives; and axe-core finds no WCAG 2.2 AA violation on any page.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

import caseclock.dashboard.app
from caseclock.dashboard.screenshots import CHROMIUM, CHROMIUM_ARGS
from tests.dashboard_helpers import (
    DashboardWorld,
    dashboard_world,
    late_referral,
    open_drifting_case,
    served,
)

AXE = Path(__file__).parents[1] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
NOTE = "Spoke to SW-1: decision made today (assessment); recorded in the case system."

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium needed")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DashboardWorld]:
    with pytest.MonkeyPatch.context() as patch:
        # The inbox asks for changes every second here (every 10 in service).
        patch.setattr(caseclock.dashboard.app, "POLL_SECONDS", 1)
        async with dashboard_world(local_env.client, tmp_path_factory.mktemp("ui")) as built:
            yield built


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def base_url(world: DashboardWorld) -> AsyncIterator[str]:
    async with served(world.app) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Person:
    """A browser context signed in as someone, collecting the page's script errors."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )


async def sign_in(browser: Browser, base_url: str, staff_code: str, **context: Any) -> Person:
    """Sign in through the development sign-in page, as a person would."""
    opened = await browser.new_context(base_url=base_url, **context)
    person = Person(opened, await opened.new_page())
    page = person.page
    await page.goto("/sign-in")
    await page.check(f"input[name=staff_code][value='{staff_code}']")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("My work")
    return person


async def test_a_manager_acknowledges_an_escalation_and_finds_it_on_the_timeline(
    browser: Browser, base_url: str, world: DashboardWorld
) -> None:
    manager = await sign_in(browser, base_url, "TM-1")
    page = manager.page
    await page.get_by_role("link", name="Escalation inbox").click()
    row = page.locator("#inbox tr", has_text=world.ref("1001"))
    await expect(row).to_contain_text("Escalated: director")
    await row.get_by_role("link", name=re.compile("Acknowledge or reassign")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Decision on a referral")
    await page.get_by_label("Acknowledge this alert").fill(NOTE)
    await page.get_by_role("button", name="Acknowledge", exact=True).click()
    await expect(page.locator(".govuk-notification-banner")).to_contain_text(
        f"You acknowledged the alert for {world.ref('1001')}"
    )
    await expect(page.locator("#inbox tr", has_text=world.ref("1001"))).to_have_count(0)
    await page.goto(f"/cases/{world.ref('1001')}")
    oversight = page.locator("table", has_text="Acknowledged")
    await expect(oversight).to_contain_text(NOTE)
    await expect(oversight).to_contain_text("Tara Manager (TM-1)")
    await expect(page.locator(".cc-history")).to_contain_text(NOTE)
    assert manager.errors == []
    await manager.context.close()


async def test_a_manager_of_another_team_cannot_open_the_case(
    browser: Browser, base_url: str, world: DashboardWorld
) -> None:
    other = await sign_in(browser, base_url, "TM-2")
    response = await other.page.goto(f"/cases/{world.ref('1001')}")
    assert response is not None
    assert response.status == 403
    await expect(other.page.get_by_role("heading", level=1)).to_have_text(
        "You do not have access to this page"
    )
    await expect(other.page.locator("main")).not_to_contain_text("Referral received")
    await other.context.close()


async def test_the_inbox_shows_a_new_escalation_without_a_reload(
    browser: Browser, base_url: str, world: DashboardWorld
) -> None:
    manager = await sign_in(browser, base_url, "TM-1")
    page = manager.page
    await page.goto("/inbox")
    await expect(page.locator("#inbox")).not_to_contain_text(world.ref("1009"))
    await page.evaluate("window.stillTheSamePage = true")
    await open_drifting_case(world.stack, world.ref("1009"), "T1", "SW-1", late_referral())
    await expect(page.locator("#inbox tr", has_text=world.ref("1009"))).to_be_visible(
        timeout=20_000
    )
    assert await page.evaluate("window.stillTheSamePage") is True
    await expect(page.locator("#inbox-status")).to_contain_text("Inbox updated")
    assert manager.errors == []
    await manager.context.close()


async def _axe(page: Page) -> list[tuple[str, str, list[Any]]]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA
    )
    return [
        (item["id"], item["help"], [node["target"] for node in item["nodes"]])
        for item in result["violations"]
    ]


async def test_axe_core_finds_no_wcag_22_aa_violation_on_any_page(
    browser: Browser, base_url: str, world: DashboardWorld
) -> None:
    assert AXE.is_file(), "node_modules/axe-core is installed by ./run"
    found: dict[str, list[tuple[str, str, list[Any]]]] = {}
    # axe is injected as a script: the test context lets it past the page's CSP.
    visitor = await browser.new_context(base_url=base_url, bypass_csp=True)
    page = await visitor.new_page()
    await page.goto("/sign-in")
    found["sign-in"] = await _axe(page)
    await page.goto("/nowhere")  # signed out: back to sign in
    for who, paths in {
        "TM-1": [
            "/",
            "/?clock=assessment",
            "/inbox",
            f"/cases/{world.ref('1002')}",
            f"/cases/{world.ref('1004')}",
        ],
        "DIR-1": ["/performance", f"/cases/{world.ref('2001')}"],
        "TM-2": [f"/cases/{world.ref('1001')}", "/no-such-page"],
    }.items():
        signed = await sign_in(browser, base_url, who, bypass_csp=True)
        for path in paths:
            await signed.page.goto(path)
            found[f"{who} {path}"] = await _axe(signed.page)
        if who == "TM-1":
            key = next(
                k for k in await world.inbox_keys("TM-1") if k.startswith(f"{world.ref('1003')}/")
            )
            await signed.page.goto(f"/escalations/{key}")
            found["escalation"] = await _axe(signed.page)
            # The same form with an error summary.
            await signed.page.get_by_role("button", name="Acknowledge", exact=True).click()
            await expect(signed.page.locator(".govuk-error-summary")).to_be_visible()
            found["escalation with an error"] = await _axe(signed.page)
        await signed.context.close()
    await visitor.close()
    assert {page: problems for page, problems in found.items() if problems} == {}
    assert len(found) == 12
