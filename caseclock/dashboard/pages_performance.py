"""Performance for leaders: the national measures by team and month, charts, tables and CSV.

Leaders (and admins) see every team; managers see the teams they manage. The period is a
GET form of two months; each measure is shown with its definition, the national figure it
matches where there is one, a chart and the table behind it. Caseload per worker follows.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from caseclock.calendar import add_months, local_date
from caseclock.dashboard.charts import LineChart, format_value, line_chart, month_name
from caseclock.dashboard.context import PERFORMANCE_ROLES, Board, Person, require_role
from caseclock.dashboard.labels import Option
from caseclock.dashboard.session import Session
from caseclock.db.performance import (
    MEASURES,
    CaseloadRow,
    Measure,
    MeasureRow,
    months_between,
    to_csv,
)

router = APIRouter()
DEFAULT_MONTHS = 12
MAX_MONTHS = 36
CHOICE_MONTHS = 36


@dataclass(frozen=True)
class Period:
    """The months asked for, the teams, and the problems with the form if any."""

    first: date
    last: date
    teams: list[str]
    errors: list[dict[str, str]]

    @property
    def months(self) -> list[str]:
        """``YYYY-MM`` of every month in the period."""
        return [f"{m.year:04d}-{m.month:02d}" for m in months_between(self.first, self.last)]


def _month(value: str | None) -> date | None:
    if not value:
        return None
    try:
        year, number = value.split("-")
        return date(int(year), int(number), 1)
    except ValueError:
        return None


async def _allowed_teams(board: Board, person: Session) -> list[Option] | None:
    """The teams a person may see figures for (None: every team, for leaders and admins)."""
    scope = await board.services.scope(person.principal)
    teams = await board.services.directory.teams()
    if scope.everything:
        return None
    return [Option(t.code, f"{t.name} ({t.code})") for t in teams if t.code in scope.teams]


def _period(
    start: str | None, end: str | None, chosen: list[str], allowed: list[Option] | None
) -> Period:
    this_month = local_date(datetime.now(UTC)).replace(day=1)
    errors = []
    last = _month(end) if end else this_month
    first = _month(start) if start else add_months(last or this_month, 1 - DEFAULT_MONTHS)
    if last is None:
        errors.append({"field": "to", "text": "Select the last month as a month from the list"})
        last = this_month
    if first is None:
        errors.append({"field": "from", "text": "Select the first month as a month from the list"})
        first = add_months(last, 1 - DEFAULT_MONTHS)
    if first > last:
        errors.append(
            {
                "field": "from",
                "text": "The first month must be the same as or before the last month",
            }
        )
        first = add_months(last, 1 - DEFAULT_MONTHS)
    if len(months_between(first, last)) > MAX_MONTHS:
        errors.append({"field": "from", "text": f"Choose at most {MAX_MONTHS} months"})
        first = add_months(last, 1 - MAX_MONTHS)
    codes = [option.value for option in allowed] if allowed is not None else None
    teams = [team for team in chosen if codes is None or team in codes]
    return Period(first, last, teams, errors)


async def _figures(
    board: Board, person: Session, start: str | None, end: str | None, team: list[str]
) -> tuple[Period, list[Option], list[MeasureRow], list[CaseloadRow]]:
    require_role(person, PERFORMANCE_ROLES, "Performance information")
    allowed = await _allowed_teams(board, person)
    period = _period(start, end, team, allowed)
    every = [Option(t.code, f"{t.name} ({t.code})") for t in await board.services.directory.teams()]
    options = allowed if allowed is not None else every
    teams: list[str] | None = period.teams or (
        None if allowed is None else [option.value for option in allowed]
    )
    rows = await board.performance.report(period.first, period.last, teams)
    caseload = await board.performance.caseload(teams)
    await board.services.casework.audit(
        person.actor, "performance.read", None, teams=teams, via=person.via
    )
    return period, options, rows, caseload


def period_total(measure: Measure, rows: list[MeasureRow]) -> str:
    """A percentage measure over the whole period and every team shown: ``80% (8 of 10)``.

    A measure counted at month ends (plans open) gives the last month's figure: summing
    month ends would count the same plan once a month.
    """
    if measure.at_month_end and rows:
        last = max(row.month for row in rows)
        rows = [row for row in rows if row.month == last]
        numerator = sum(row.numerator for row in rows)
        denominator = sum(row.denominator for row in rows)
        share = round(100 * numerator / denominator, 1) if denominator else 0
        return f"{share:g}% ({numerator} of {denominator}) at the end of {last}"
    numerator = sum(row.numerator for row in rows)
    denominator = sum(row.denominator for row in rows)
    if not denominator:
        return "nothing to count"
    return f"{round(100 * numerator / denominator, 1):g}% ({numerator} of {denominator})"


def _month_choices() -> list[Option]:
    this_month = local_date(datetime.now(UTC)).replace(day=1)
    months = [add_months(this_month, -i) for i in range(CHOICE_MONTHS)]
    return [Option(f"{m.year:04d}-{m.month:02d}", f"{m:%B} {m.year}") for m in months]


TeamQuery = Query(default_factory=list)


@router.get("/performance", include_in_schema=False)
async def performance(
    request: Request,
    board: Board,
    person: Person,
    start: str | None = Query(default=None, alias="from"),
    end: str | None = Query(default=None, alias="to"),
    team: list[str] = TeamQuery,
) -> HTMLResponse:
    """Every measure as a chart and a table, with definitions and national figures."""
    period, options, rows, caseload = await _figures(board, person, start, end, team)
    names = {option.value: option.text for option in options}
    measures = []
    for measure in MEASURES:
        mine = [row for row in rows if row.measure == measure.id]
        chart: LineChart = line_chart(measure, mine, period.months, names)
        table: dict[str, dict[str, str]] = {}
        for row in mine:
            table.setdefault(row.team, {})[row.month] = format_value(row, measure)
        measures.append(
            {
                "measure": measure,
                "chart": chart,
                "table": table,
                "total": period_total(measure, mine),
            }
        )
    staff = await board.queries.staff_names()
    params = {"from": period.months[0], "to": period.months[-1], "team": period.teams}
    return board.page(
        request,
        "performance.html",
        {
            "title": "Performance",
            "period": period,
            "errors": period.errors,
            "month_choices": _month_choices(),
            "team_options": options,
            "team_names": names,
            "measures": measures,
            "caseload": caseload,
            "staff": staff,
            "month_name": month_name,
            "params": params,
        },
        person,
        status=422 if period.errors else 200,
    )


@router.get("/performance.csv", include_in_schema=False)
async def performance_csv(
    board: Board,
    person: Person,
    start: str | None = Query(default=None, alias="from"),
    end: str | None = Query(default=None, alias="to"),
    team: list[str] = TeamQuery,
) -> Response:
    """The figures behind the page, as CSV."""
    period, _, rows, _ = await _figures(board, person, start, end, team)
    name = f"caseclock-performance-{period.months[0]}-to-{period.months[-1]}.csv"
    return Response(
        to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/performance/caseload.csv", include_in_schema=False)
async def caseload_csv(board: Board, person: Person, team: list[str] = TeamQuery) -> Response:
    """Open cases per worker, as CSV."""
    _, _, _, caseload = await _figures(board, person, None, None, team)
    lines = ["team,worker,open_cases"]
    lines += [f"{row.team},{row.worker or 'unallocated'},{row.open_cases}" for row in caseload]
    return Response(
        "\r\n".join(lines) + "\r\n",
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="caseclock-caseload.csv"'},
    )
