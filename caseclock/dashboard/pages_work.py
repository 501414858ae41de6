"""My work: running clocks in my scope that are due soon, overdue or escalated, and cases waiting.

Filters are a GET form (team, worker, stage, clock), so a filtered list is a link to share.
Values that are not among the choices are ignored rather than trusted. The list comes a page
at a time (most urgent first, ``PAGE_SIZE`` rows), with the counts over the whole list; the
page is a GET parameter too. Each list read is audited, as the API's lists are.
"""

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from caseclock.dashboard.context import Board, Person
from caseclock.dashboard.labels import Option
from caseclock.dashboard.queries import UNALLOCATED, WorkFilter
from caseclock.dashboard.templating import query
from caseclock.db.oversight import Scope

router = APIRouter()


def _pick(value: str | None, options: list[Option]) -> str | None:
    return value if value and any(option.value == value for option in options) else None


async def _team_and_worker_options(board: Board, scope: Scope) -> tuple[list[Option], list[Option]]:
    """The teams and workers a person may filter by (none for a practitioner)."""
    if not scope.everything and not scope.teams:
        return [], []
    teams = [
        team
        for team in await board.services.directory.teams()
        if scope.everything or team.code in scope.teams
    ]
    codes = {team.code for team in teams}
    workers = [
        Option(person.code, f"{person.display_name} ({person.code})")
        for person in await board.services.directory.staff()
        if person.team in codes and person.role.value == "social_worker"
    ]
    return (
        [Option(team.code, f"{team.name} ({team.code})") for team in teams],
        [*workers, Option(UNALLOCATED, "Unallocated")],
    )


@router.get("/", include_in_schema=False)
async def my_work(
    request: Request,
    board: Board,
    person: Person,
    team: str | None = None,
    worker: str | None = None,
    stage: str | None = None,
    clock: str | None = None,
    page: int = Query(default=1, ge=1),
) -> HTMLResponse:
    """The signed-in person's work, most urgent first, and the cases waiting in their teams."""
    services = board.services
    scope = await services.scope(person.principal)
    teams, workers = await _team_and_worker_options(board, scope)
    stages, clocks = board.labels.stage_options(), board.labels.clock_options()
    where = WorkFilter(
        team=_pick(team, teams),
        worker=_pick(worker, workers),
        stage=_pick(stage, stages),
        clock=_pick(clock, clocks),
    )
    now = datetime.now(UTC)
    work = await board.queries.work(scope, where, now, page)
    unallocated = await board.queries.unallocated(scope, where.team)
    waiting = await board.queries.awaiting_transfer(scope, where.team)
    await services.casework.audit(
        person.actor,
        "work.list",
        None,
        team=where.team,
        rows=len(work.rows),
        page=work.page,
        via=person.via,
    )
    # The links to the pages either side keep the filters as they are.
    chosen = {
        "team": where.team,
        "worker": where.worker,
        "stage": where.stage,
        "clock": where.clock,
    }

    def page_url(number: int) -> str:
        return "/" + query({**chosen, "page": number if number > 1 else None}) + "#clocks-heading"

    return board.page(
        request,
        "work.html",
        {
            "title": "My work",
            "work": work,
            "rows": work.rows,
            "previous_url": page_url(work.page - 1),
            "next_url": page_url(work.page + 1),
            "unallocated": unallocated,
            "waiting": waiting,
            "filters": where,
            "filtered": where != WorkFilter(),
            "teams": teams,
            "workers": workers,
            "stages": stages,
            "clocks": clocks,
            "names": await board.queries.staff_names(),
            "labels": board.labels,
            "now": now,
        },
        person,
    )
