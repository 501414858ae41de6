"""My work a page at a time over plain HTTP: links between pages, filters kept, counts whole.

The page size is made 1 here, so that the few drifting cases of ``dashboard_helpers`` fill
several pages.
"""

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from caseclock.dashboard import queries as dashboard_queries
from tests.dashboard_helpers import DashboardWorld, dashboard_world, dev_sign_in


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DashboardWorld]:
    async with dashboard_world(local_env.client, tmp_path_factory.mktemp("paging")) as built:
        yield built


def listed(page: str) -> list[str]:
    """The case references in the clocks table, in order."""
    table = page.split('id="clocks-heading"')[1].split('id="unallocated-heading"', maxsplit=1)[0]
    return re.findall(r'<a class="govuk-link" href="/cases/([^"]+)">', table)


def stats(page: str) -> list[str]:
    """The numbers of the summary at the top (overdue, escalated, due soon, ...)."""
    return re.findall(r'<span class="cc-stat__number">(\d+)</span>', page)


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', page)
    return None if found is None else found.group(1).replace("&amp;", "&")


async def test_my_work_pages_link_to_each_other_and_keep_the_counts_of_the_whole_list(
    world: DashboardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world.client() as http:
        await dev_sign_in(http, "TM-1")
        whole = (await http.get("/")).text
        everything = listed(whole)
        assert len(everything) >= 3, everything
        assert f"{len(everything)} clocks, most urgent first." in whole
        assert link(whole, "next") is None

        monkeypatch.setattr(dashboard_queries, "PAGE_SIZE", 1)
        pages, path = [], "/"
        while path is not None:
            page = (await http.get(path)).text
            pages.append(page)
            path = link(page, "next")
        assert [ref for page in pages for ref in listed(page)] == everything
        for number, page in enumerate(pages, start=1):
            assert f"Showing {number} to {number} of {len(everything)}" in page
            assert f"Page {number} of {len(everything)}" in page
            assert stats(page) == stats(whole)  # the counts are of the whole list
        assert link(pages[0], "prev") is None
        assert link(pages[1], "prev") == "/#clocks-heading"
        assert link(pages[0], "next") == "/?page=2#clocks-heading"
        # Past the last page: the last page.
        assert listed((await http.get("/?page=99")).text) == listed(pages[-1])

        # A filtered list pages with its filter.
        mine = (await http.get("/?worker=SW-1")).text
        assert link(mine, "next") == "/?worker=SW-1&page=2#clocks-heading"
        second = (await http.get("/?worker=SW-1&page=2")).text
        assert world.ref("1003") not in listed(second)  # 1003 is unallocated
