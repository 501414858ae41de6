"""The dashboard's pure parts: signed values, sessions, redirects, dispatch, dates, charts,
the case timeline's picture, and the start-up check for GOV.UK Frontend.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caseclock.api.auth import Role
from caseclock.calendar import LONDON
from caseclock.casework import CaseRecord
from caseclock.core.actions import ClockStatus
from caseclock.core.deadline import Deadline
from caseclock.dashboard import DashboardAssetsMissingError
from caseclock.dashboard.assets import find_assets
from caseclock.dashboard.charts import line_chart, national_percent
from caseclock.dashboard.labels import Labels
from caseclock.dashboard.mount import DashboardDispatch
from caseclock.dashboard.pages_performance import period_total
from caseclock.dashboard.session import Session, Signer, csrf_ok, new_session
from caseclock.dashboard.sign_in import safe_next
from caseclock.dashboard.templating import due, relative, when
from caseclock.dashboard.timeline import chart, entries
from caseclock.db.oversight import EventView, StageEntryView
from caseclock.db.performance import MEASURES, MeasureRow
from caseclock.db.views import CaseView, ClockView
from caseclock.units import Counting, Unit
from tests.dashboard_helpers import DEFINITIONS

# Signed values and sessions ------------------------------------------------------------


def test_a_signed_value_comes_back_only_untouched_unexpired_and_for_its_purpose() -> None:
    signer = Signer("secret-one", "session")
    value = signer.sign({"who": "TM-1"}, lifetime=60, now=1000)
    assert signer.unsign(value, now=1030) == {"who": "TM-1", "exp": 1060}
    assert signer.unsign(value, now=1060) is None  # expired
    assert Signer("secret-one", "flash").unsign(value, now=1030) is None  # another purpose
    assert Signer("secret-two", "session").unsign(value, now=1030) is None  # another secret
    payload, mac = value.split(".")
    forged = Signer("secret-one", "x").sign({"who": "DIR"}, 60, now=1000).split(".")[0]
    assert signer.unsign(f"{forged}.{mac}", now=1030) is None
    for garbage in (None, "", "a.b.c", "!!!.???", f"{payload}.{mac}x"):
        assert signer.unsign(garbage, now=1030) is None


def test_a_session_round_trips_and_its_csrf_token_is_checked() -> None:
    from caseclock.api.auth import Principal  # noqa: PLC0415

    principal = Principal("TM-1", frozenset({Role.MANAGER}), "TM-1", "dashboard:dev")
    session = new_session(principal, "Tara Manager")
    again = Session.from_data(session.to_data())
    assert again == session
    assert again is not None
    assert again.principal == principal
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, "forged")
    assert not csrf_ok(session, None)
    assert Session.from_data({"actor": "x", "roles": ["emperor"]}) is None
    assert new_session(principal, "x").csrf != session.csrf


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/inbox", "/inbox"),
        ("/cases/LA/1?x=1", "/cases/LA/1?x=1"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_signing_in_returns_only_to_a_local_path(asked: str | None, kept: str) -> None:
    assert safe_next(asked) == kept


# Serving -------------------------------------------------------------------------------


async def test_paths_outside_api_go_to_the_dashboard_and_the_rest_to_the_api() -> None:
    seen: list[tuple[str, str]] = []

    def app(name: str) -> Any:
        async def call(scope: Any, receive: Any, send: Any) -> None:
            seen.append((name, scope["path"]))

        return call

    dispatch = DashboardDispatch(app("api"), dashboard=app("dashboard"))
    for path in ("/", "/inbox", "/api/v1/cases/X-1", "/apixyz", "/api/"):
        await dispatch({"type": "http", "path": path}, None, None)
    await dispatch({"type": "lifespan", "path": ""}, None, None)
    assert seen == [
        ("dashboard", "/"),
        ("dashboard", "/inbox"),
        ("api", "/api/v1/cases/X-1"),
        ("dashboard", "/apixyz"),
        ("api", "/api/"),
        ("api", ""),
    ]


def test_a_missing_govuk_frontend_stops_start_up_with_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(DashboardAssetsMissingError, match=r"run \./run once \(it runs 'npm ci'"):
        find_assets([tmp_path])
    assert find_assets().govuk_file("govuk-frontend.min.css") is not None
    assert find_assets().govuk_file("../../package.json") is None


# Dates ---------------------------------------------------------------------------------


def test_deadlines_read_as_the_day_they_end_in_london_time() -> None:
    end_of_3_august = datetime(2026, 8, 3, 23, 0, tzinfo=UTC)  # midnight BST
    assert due(end_of_3_august) == "3 August 2026"
    assert when(datetime(2026, 8, 3, 16, 30, tzinfo=UTC)) == "3 August 2026 at 5:30pm"
    assert due(datetime(2026, 8, 3, 9, 0, tzinfo=UTC), in_hours=True) == "3 August 2026 at 10:00am"
    now = datetime(2026, 8, 5, 12, 0, tzinfo=UTC)
    assert relative(end_of_3_august, now) == "2 days overdue"
    assert relative(datetime(2026, 8, 5, 23, 0, tzinfo=UTC), now) == "due today"
    assert relative(datetime(2026, 8, 6, 23, 0, tzinfo=UTC), now) == "due in 1 day"
    assert relative(datetime(2026, 8, 5, 11, 0, tzinfo=UTC), now) == "overdue"


# Charts --------------------------------------------------------------------------------


def _row(team: str, month: str, numerator: int, denominator: int) -> MeasureRow:
    value = round(100 * numerator / denominator, 1) if denominator else None
    return MeasureRow(
        measure="icpc_within_15_wd",
        team=team,
        month=month,
        numerator=numerator,
        denominator=denominator,
        value=value,
    )


def test_a_measure_chart_has_a_line_per_team_broken_at_gaps_and_the_national_line() -> None:
    measure = next(m for m in MEASURES if m.id == "icpc_within_15_wd")
    months = ["2026-01", "2026-02", "2026-03", "2026-04"]
    rows = [_row("A", "2026-01", 4, 5), _row("A", "2026-02", 1, 2), _row("A", "2026-04", 3, 3)]
    rows.append(_row("B", "2026-03", 0, 1))
    result = line_chart(measure, rows, months, {"A": "Team A", "B": "Team B"})
    team_a, team_b = result.series
    assert (team_a.name, team_b.name) == ("Team A", "Team B")
    assert team_a.shape != team_b.shape  # not colour alone
    assert team_a.path.count("M") == 2  # March is missing: the line breaks
    assert team_a.points[0].label == "Team A, January 2026: 80% (4 of 5)"
    assert national_percent(measure) == 81.4
    assert result.national is not None
    assert result.top < result.national[0] < result.bottom
    assert "Team A: latest April 2026, 100% (3 of 3)." in result.description
    assert "national figure, 81.4%, is the dashed line" in result.description
    assert national_percent(next(m for m in MEASURES if m.unit == "hours")) is None


# The timeline ----------------------------------------------------------------------------


def _clock(clock_id: str, start: date, due_on: date, status: ClockStatus) -> ClockView:
    due_at = datetime.combine(due_on + timedelta(days=1), datetime.min.time(), LONDON)
    deadline = Deadline(
        rule_id=clock_id,
        rule_title=clock_id,
        definition_id="child-protection",
        definition_version="2026.1",
        start_event_type="referral_received",
        start_event_id="e1",
        start_date=start,
        amount=1,
        unit=Unit.WORKING_DAYS,
        counting=Counting.DAY_AFTER_IS_DAY_1,
        calendar_id="test",
        due_date=due_on,
        due_at=due_at,
    )
    return ClockView(
        case_ref="T-1",
        clock_id=clock_id,
        occurrence=1,
        team="T1",
        title=clock_id,
        status=status,
        start_date=start,
        due_date=due_on,
        due_at=due_at,
        deadline=deadline,
        explanation="",
        levels_fired=(),
        closed_by_event_id=None,
        closed_on=None,
        updated_at=datetime.now(UTC),
    )


def test_the_timeline_orders_facts_and_marks_deadlines_beyond_the_picture() -> None:
    today = date(2026, 8, 5)
    now = datetime(2026, 8, 5, 12, tzinfo=UTC)
    case = CaseView(
        case_ref="T-1",
        definition_id="child-protection",
        definition_version="2026.1",
        team="T1",
        allocated_worker="SW-1",
        opened_on=today,
        closed_on=None,
        current_stages={"main": "referral"},
        updated_at=now,
    )
    referral = EventView(
        event_id="e1",
        type="referral_received",
        effective_date=date(2026, 7, 1),
        effective_at=None,
        recorded_at=now,
        recorded_by="SW-1",
        outcome=None,
    )
    record = CaseRecord(
        case=case,
        stage_history=[
            StageEntryView(
                track="main", stage="referral", entered_on=date(2026, 7, 1), event_id="e1"
            )
        ],
        events=[referral],
        open_clocks=[
            _clock("referral_decision", date(2026, 7, 1), date(2026, 7, 2), ClockStatus.RUNNING),
            _clock("cp_plan_duration", date(2026, 7, 1), date(2028, 1, 1), ClockStatus.RUNNING),
        ],
        met_clocks=[],
        cancelled_clocks=[],
        escalations=[],
    )
    labels = Labels(DEFINITIONS)
    listed = entries(record, [], labels, {"SW-1": "Sam Worker"}, now)
    assert [(e.kind, e.title) for e in listed][:2] == [
        ("event", "Referral received"),
        ("stage", "Child's path: Referral awaiting decision"),
    ]
    assert listed[0].detail.startswith("Recorded by Sam Worker (SW-1)")
    late = next(e for e in listed if e.title == "Deadline: referral_decision")
    assert (late.tag, late.tag_colour) == ("Overdue", "red")
    picture = chart(record, labels, now)
    kinds = {m.kind for m in picture.markers}
    assert {"event", "due", "beyond"} <= kinds
    assert any(s.style == "cc-bar cc-bar--late" for s in picture.segments)
    assert picture.last == today + timedelta(days=30)
    assert [row.full for row in picture.rows][:2] == ["Child's path", "Events recorded"]


def test_a_month_end_measure_is_the_last_months_figure_not_a_sum() -> None:
    stock = next(m for m in MEASURES if m.id == "cp_plans_over_18_months")
    flow = next(m for m in MEASURES if m.id == "icpc_within_15_wd")

    def row(month: str, numerator: int, denominator: int) -> MeasureRow:
        return MeasureRow(
            measure="x",
            team="T",
            month=month,
            numerator=numerator,
            denominator=denominator,
            value=None,
        )

    rows = [row("2025-01", 1, 2), row("2025-02", 1, 3)]
    # The same plans are open at both month ends: the period's figure is February's.
    assert period_total(stock, rows) == "33.3% (1 of 3) at the end of 2025-02"
    # Conferences held in different months add up.
    assert period_total(flow, rows) == "40% (2 of 5)"
