"""A case's timeline page: its history on a time axis, and why each deadline is what it is.

Stages, events, clocks and alerts are drawn and listed, with the management oversight
recorded on the case.

The read goes through ``caseclock.casework`` (audited as ``case.read``, as the API's), after
the API's scope check (a refusal is audited and shown as a 403 page).
"""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from caseclock.calendar import local_date
from caseclock.dashboard.context import Board, Person
from caseclock.dashboard.labels import humanise
from caseclock.dashboard.timeline import chart, entries
from caseclock.dashboard.why import explain, when_due

router = APIRouter()


@router.get("/cases/{case_ref:path}", include_in_schema=False)
async def case_page(case_ref: str, request: Request, board: Board, person: Person) -> HTMLResponse:
    """The case's timeline, its deadlines explained, and its management oversight."""
    services = board.services
    case = await services.case_for(person.principal, case_ref, "case.read")
    record = await services.casework.read(person.actor, case)
    reassignments = await board.queries.reassignments(case.case_ref)
    names = await board.queries.staff_names()
    now = datetime.now(UTC)
    key = f"{case.definition_id}@{case.definition_version}"
    clocks = [*record.open_clocks, *record.met_clocks, *record.cancelled_clocks]
    clocks.sort(key=lambda clock: (clock.status.value != "running", clock.due_at))
    return board.page(
        request,
        "case.html",
        {
            "title": f"Case {case.case_ref}",
            "case": case,
            "record": record,
            "stages": [
                (board.labels.track(key, track), board.labels.stage(key, track, stage))
                for track, stage in case.current_stages.items()
                if not board.labels.is_initial(key, track, stage)
            ],
            "entries": entries(record, reassignments, board.labels, names, now),
            "chart": chart(record, board.labels, now),
            "whys": [explain(clock, board.labels, now) for clock in clocks],
            "oversight": [row for row in record.escalations if row.acknowledged_at is not None],
            "names": names,
            "humanise": humanise,
            "when_due": when_due,
            "now": now,
            "today": local_date(now),
        },
        person,
    )
