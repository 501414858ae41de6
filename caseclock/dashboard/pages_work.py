"""My work: running clocks in my scope that are due soon, overdue or escalated, and cases waiting.

Filters are a GET form (team, worker, stage, clock), so a filtered list is a link to share.
Values that are not among the choices are ignored rather than trusted. Each list read is
audited, as the API's lists are.
"""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from caseclock.dashboard.context import Board, Person
from caseclock.dashboard.labels import Option
from caseclock.dashboard.queries import UNALLOCATED, WorkFilter
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
    rows = await board.queries.work(scope, where, now)
    unallocated = await board.queries.unallocated(scope, where.team)
    waiting = await board.queries.awaiting_transfer(scope, where.team)
    await services.casework.audit(
        person.actor, "work.list", None, team=where.team, rows=len(rows), via=person.via
    )
    counts = {
        "overdue": sum(row.overdue for row in rows),
        "due_soon": sum(not row.overdue for row in rows),
        "escalated": sum(
            row.level_name not in (None, "due_soon", "overdue") and not row.acknowledged
            for row in rows
        ),
    }
    return board.page(
        request,
        "work.html",
        {
            "title": "My work",
            "rows": rows,
            "unallocated": unallocated,
            "waiting": waiting,
            "counts": counts,
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
