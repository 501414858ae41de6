"""A case's timeline page: its history on a time axis, and why each deadline is what it is.

Stages, events, clocks and alerts are drawn and listed, with the management oversight
recorded on the case.

The read goes through ``caseclock.casework`` (audited as ``case.read``, as the API's), after
the API's scope check (a refusal is audited and shown as a 403 page).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from caseclock.calendar import local_date
from caseclock.dashboard.context import Board, Person
from caseclock.dashboard.labels import COUNTING, Labels, amount, humanise
from caseclock.dashboard.templating import due, when
from caseclock.dashboard.timeline import chart, clock_state, entries
from caseclock.db.views import ClockView
from caseclock.units import Unit

router = APIRouter()


@dataclass(frozen=True)
class Why:
    """Why one deadline is what it is, as rows of a summary list."""

    clock: ClockView
    state: str
    colour: str
    rows: list[tuple[str, str]]


def explain(clock: ClockView, labels: Labels, now: datetime) -> Why:
    """The rule, start event, period, counting, calendar and due instant of a deadline."""
    deadline = clock.deadline
    key = f"{deadline.definition_id}@{deadline.definition_version}"
    start = labels.event(key, deadline.start_event_type)
    started = (
        when(deadline.start_at)
        if deadline.unit is Unit.HOURS and deadline.start_at
        else f"{deadline.start_date.day} {deadline.start_date:%B %Y}"
    )
    rows = [
        (
            "Rule",
            f"{deadline.rule_title} (rule {deadline.rule_id}, "
            f"{deadline.definition_id} version {deadline.definition_version})",
        ),
        ("Starts from", f"{start}, {started} (event {deadline.start_event_id})"),
        ("Period", amount(deadline.amount, deadline.unit)),
        (
            "Counting",
            "Elapsed hours from the start"
            if deadline.unit is Unit.HOURS
            else COUNTING[deadline.counting],
        ),
        (
            "Calendar",
            f"{deadline.calendar_id} (England and Wales bank holidays and local closure days)",
        ),
        (
            "Due",
            f"By the end of {due(deadline.due_at)}"
            if deadline.unit is not Unit.HOURS
            else due(deadline.due_at, in_hours=True),
        ),
    ]
    if deadline.window_opens_on is not None:
        rows.append(
            ("Not before", f"{deadline.window_opens_on.day} {deadline.window_opens_on:%B %Y}")
        )
    rows += [
        (f"Extension {index}", f"{amount(ext.amount, ext.unit)} (event {ext.event_id})")
        for index, ext in enumerate(deadline.extensions, start=1)
    ]
    if deadline.basis:
        rows.append(("Basis", deadline.basis))
    if deadline.source:
        rows.append(("Source", deadline.source))
    state, colour = clock_state(clock, now)
    return Why(clock=clock, state=state, colour=colour, rows=rows)


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
            "now": now,
            "today": local_date(now),
        },
        person,
    )
