"""Escalation ladders: a clock left to drift is escalated rung by rung, as the workflow would.

Time is stepped the way the case workflow steps it: sleep until ``next_wakeup``, then ask
``due_alerts`` what to send. Each rung fires at the end of (London midnight ending) the due
date shifted by its offset; offset 0 is the deadline instant; offsets in hours count real
hours from the deadline instant.
"""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from caseclock.calendar import LONDON, WorkingCalendar
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.actions import AlertState, ClockStatus, NotifyAction
from caseclock.core.engine import apply_event, due_alerts, next_wakeup, start_case
from caseclock.core.events import CaseEvent, FieldValue
from caseclock.core.state import CaseState
from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition

DEFINITION_FILE = Path(__file__).parent.parent / "definitions" / "child-protection.yaml"
CASE_REF = "CP-0003"
ONE_MICROSECOND = timedelta(microseconds=1)


def d(text: str) -> date:
    return date.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def london(day: date, hour: int = 16) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=LONDON)


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return build_england_and_wales_calendar(2000, 2045)


class Case:
    """A case and its clock, recorded by events; alerts are collected only when stepped."""

    def __init__(self, definition: Definition, calendar: WorkingCalendar) -> None:
        self.definition = definition
        self.calendar = calendar
        self.state: CaseState = start_case(definition, CASE_REF)
        self._ids = itertools.count(1)

    def record(
        self,
        event_type: str,
        on: date,
        outcome: str | None = None,
        *,
        at: datetime | None = None,
        recorded: datetime | None = None,
        data: dict[str, FieldValue] | None = None,
    ) -> list[NotifyAction]:
        """Record an event and return what is due straight after it (late recording)."""
        now = recorded or at or london(on)
        event = CaseEvent(
            event_id=f"ev-{next(self._ids)}",
            type=event_type,
            effective_date=on,
            effective_at=at,
            recorded_at=now,
            recorded_by="sw-17",
            outcome=outcome,
            data=data or {},
        )
        self.state = apply_event(self.definition, self.state, event, self.calendar, now).state
        return self.tick(now)

    def tick(self, now: datetime) -> list[NotifyAction]:
        outcome = due_alerts(self.definition, self.state, now)
        self.state = outcome.state
        return [a for a in outcome.actions if isinstance(a, NotifyAction)]

    def drift(self, clock_id: str, until: datetime | None = None) -> list[NotifyAction]:
        """Sleep from wakeup to wakeup (up to ``until``), keeping the alerts of one clock.

        At each wakeup nothing may be due a microsecond earlier: the wakeup is the instant
        the rung falls due, not later.
        """
        sent: list[NotifyAction] = []
        while (wakeup := next_wakeup(self.state)) is not None:
            if until is not None and wakeup > until:
                break
            early = due_alerts(self.definition, self.state, wakeup - ONE_MICROSECOND)
            assert early.actions == ()
            sent += [a for a in self.tick(wakeup) if a.clock_id == clock_id]
        return sent


@pytest.fixture
def case(definition: Definition, calendar: WorkingCalendar) -> Case:
    return Case(definition, calendar)


def rungs(alerts: list[NotifyAction]) -> list[tuple[str, str, tuple[str, ...], datetime]]:
    return [(a.key, a.level_name, a.roles, a.fire_at) for a in alerts]


def test_an_icpc_left_to_drift_escalates_to_the_director(case: Case) -> None:
    # A concern of significant harm straight from the referral (no assessment clock), and a
    # strategy discussion on Mon 2020-12-21 that starts a s47: only the ICPC clock runs.
    case.record("referral_received", d("2020-12-18"))
    case.record("significant_harm_concern", d("2020-12-18"))
    case.record("strategy_discussion_held", d("2020-12-21"), "s47")
    assert [o.clock_id for o in case.state.running()] == ["icpc"]
    # ICPC due Thu 2021-01-14 (15 working days across Christmas). The standard ladder, all
    # in GMT, so "end of day D" is D+1 00:00Z:
    #   due_soon        -2 WD: Tue 2021-01-12
    #   overdue          0   : Thu 2021-01-14 (the deadline instant)
    #   service_manager +2 WD: Fri 15, Mon 2021-01-18
    #   head_of_service +5 WD: 15, 18, 19, 20, Thu 2021-01-21
    #   director       +10 WD: 22, 25, 26, 27, Thu 2021-01-28
    alerts = case.drift("icpc")
    key = f"{CASE_REF}/icpc/1"
    assert rungs(alerts) == [
        (f"{key}/0", "due_soon", ("social_worker",), utc("2021-01-13T00:00")),
        (f"{key}/1", "overdue", ("social_worker", "team_manager"), utc("2021-01-15T00:00")),
        (
            f"{key}/2",
            "service_manager",
            ("team_manager", "service_manager"),
            utc("2021-01-19T00:00"),
        ),
        (
            f"{key}/3",
            "head_of_service",
            ("service_manager", "head_of_service"),
            utc("2021-01-22T00:00"),
        ),
        (f"{key}/4", "director", ("head_of_service", "director"), utc("2021-01-29T00:00")),
    ]
    assert [a.state for a in alerts] == [AlertState.DUE_SOON] + [AlertState.OVERDUE] * 4
    assert [a.covers_levels for a in alerts] == [(0,), (1,), (2,), (3,), (4,)]
    assert all(a.deadline.due_date == d("2021-01-14") for a in alerts)

    # Every rung sent: nothing left to wake up for, and asking again sends nothing.
    assert next_wakeup(case.state) is None
    last = alerts[-1].fire_at
    again = due_alerts(case.definition, case.state, last)
    assert again.actions == ()
    assert again.state == case.state
    assert case.state.clocks["icpc"].levels_fired == (0, 1, 2, 3, 4)


def test_a_review_conference_drifting_in_summer_escalates_at_23_00_utc(case: Case) -> None:
    # ICPC Thu 2024-05-30: first review within 3 months, Fri 2024-08-30. The long ladder,
    # all in BST, so "end of day D" is D 23:00Z. Mon 2024-08-26 is the summer bank holiday.
    #   due_soon        -10 WD: 29, 28, 27, (26), 23, 22, 21, 20, 19, 16, Thu 2024-08-15
    #   overdue           0   : Fri 2024-08-30
    #   service_manager  +5 WD: Sep 2-6, Fri 2024-09-06
    #   head_of_service +10 WD: Sep 9-13, Fri 2024-09-13
    #   director        +20 WD: Sep 16-20, Sep 23-27, Fri 2024-09-27
    case.record("referral_received", d("2024-05-09"))
    case.record("referral_decision", d("2024-05-09"), "strategy_discussion")
    case.record("strategy_discussion_held", d("2024-05-16"), "s47")
    case.record("icpc_held", d("2024-05-30"), "cp_plan")
    alerts = case.drift("first_review_conference", until=utc("2024-12-31T00:00"))
    assert rungs(alerts) == [
        (
            f"{CASE_REF}/first_review_conference/1/0",
            "due_soon",
            ("social_worker", "team_manager"),
            utc("2024-08-15T23:00"),
        ),
        (
            f"{CASE_REF}/first_review_conference/1/1",
            "overdue",
            ("social_worker", "team_manager"),
            utc("2024-08-30T23:00"),
        ),
        (
            f"{CASE_REF}/first_review_conference/1/2",
            "service_manager",
            ("team_manager", "service_manager"),
            utc("2024-09-06T23:00"),
        ),
        (
            f"{CASE_REF}/first_review_conference/1/3",
            "head_of_service",
            ("service_manager", "head_of_service"),
            utc("2024-09-13T23:00"),
        ),
        (
            f"{CASE_REF}/first_review_conference/1/4",
            "director",
            ("head_of_service", "director"),
            utc("2024-09-27T23:00"),
        ),
    ]


def test_police_protection_escalates_in_real_hours_across_the_clock_change(case: Case) -> None:
    # Taken Sat 2024-03-30 09:30 GMT; the clocks go forward on Sun 31st. The limit is 72
    # real hours: Tue 2024-04-02 09:30Z. The hourly ladder counts hours from that instant:
    #   due_soon        -24 h: Mon 2024-04-01 09:30Z
    #   overdue           0  : Tue 2024-04-02 09:30Z
    #   head_of_service  +4 h: Tue 2024-04-02 13:30Z
    taken = datetime(2024, 3, 30, 9, 30, tzinfo=UTC)
    case.record("police_protection_started", d("2024-03-30"), at=taken)
    alerts = case.drift("police_protection")
    key = f"{CASE_REF}/police_protection/1"
    assert rungs(alerts) == [
        (f"{key}/0", "due_soon", ("social_worker", "team_manager"), utc("2024-04-01T09:30")),
        (f"{key}/1", "overdue", ("team_manager", "service_manager"), utc("2024-04-02T09:30")),
        (
            f"{key}/2",
            "head_of_service",
            ("head_of_service", "director"),
            utc("2024-04-02T13:30"),
        ),
    ]
    assert next_wakeup(case.state) is None


def test_care_proceedings_escalate_in_weeks(case: Case) -> None:
    # Issued Mon 2024-01-15: 26 weeks beginning with it end Sun 2024-07-14 (BST). The court
    # ladder: due_soon 4 weeks before (Sun 2024-06-16), overdue at the deadline, director 4
    # weeks after (Sun 2024-08-11), each at 23:00Z.
    case.record("proceedings_issued", d("2024-01-15"))
    case.record("cmh_held", d("2024-01-30"))
    alerts = case.drift("care_proceedings")
    assert [(a.level_name, a.roles, a.fire_at) for a in alerts] == [
        (
            "due_soon",
            ("social_worker", "team_manager", "service_manager"),
            utc("2024-06-16T23:00"),
        ),
        ("overdue", ("service_manager", "head_of_service"), utc("2024-07-14T23:00")),
        ("director", ("head_of_service", "director"), utc("2024-08-11T23:00")),
    ]


def test_rungs_that_fall_due_together_are_sent_once_at_the_highest(case: Case) -> None:
    # The ICPC from a strategy discussion on Mon 2020-12-21 (due Thu 2021-01-14), but the
    # discussion is recorded only on Mon 2021-01-25 at 09:00: due_soon, overdue,
    # service_manager and head_of_service are all past; the director rung (end of Thu
    # 2021-01-28) is not.
    case.record("referral_received", d("2020-12-18"))
    case.record("significant_harm_concern", d("2020-12-18"))
    sent = case.record(
        "strategy_discussion_held", d("2020-12-21"), "s47", recorded=london(d("2021-01-25"), 9)
    )
    icpc = [a for a in sent if a.clock_id == "icpc"]
    assert len(icpc) == 1
    assert icpc[0].key == f"{CASE_REF}/icpc/1/3"
    assert icpc[0].covers_levels == (0, 1, 2, 3)
    assert icpc[0].roles == ("social_worker", "team_manager", "service_manager", "head_of_service")
    assert icpc[0].state is AlertState.OVERDUE
    # Then the director rung, on its own, at its own time.
    assert rungs(case.drift("icpc")) == [
        (
            f"{CASE_REF}/icpc/1/4",
            "director",
            ("head_of_service", "director"),
            utc("2021-01-29T00:00"),
        )
    ]


def test_meeting_the_clock_mid_ladder_stops_the_escalation(case: Case) -> None:
    # ICPC due Thu 2021-01-14; the overdue rung goes at the deadline; the conference is
    # held on Fri 15th (late) and recorded that afternoon: no service_manager rung follows.
    case.record("referral_received", d("2020-12-18"))
    case.record("significant_harm_concern", d("2020-12-18"))
    case.record("strategy_discussion_held", d("2020-12-21"), "s47")
    before = case.drift("icpc", until=london(d("2021-01-15")))
    assert [a.level_name for a in before] == ["due_soon", "overdue"]
    case.record("icpc_held", d("2021-01-15"), "no_plan")
    assert case.state.clocks["icpc"].status is ClockStatus.MET_LATE
    assert case.drift("icpc") == []


def test_plan_duration_rungs_are_15_18_and_24_months_from_a_month_end_start(
    case: Case,
) -> None:
    # Plan from Wed 2022-08-31 (ICPC).
    #   15 months: 2023-11-30 (no 31 November); GMT, end of day 2023-12-01T00:00Z
    #   18 months: 2024-02-29 (no 31 February, leap year); 2024-03-01T00:00Z
    #   24 months: 2024-08-31; BST, end of day 2024-08-31T23:00Z
    case.record("referral_received", d("2022-08-10"))
    case.record("referral_decision", d("2022-08-10"), "strategy_discussion")
    case.record("strategy_discussion_held", d("2022-08-17"), "s47")
    case.record("icpc_held", d("2022-08-31"), "cp_plan")
    alerts = case.drift("cp_plan_duration")
    assert [(a.level_name, a.fire_at) for a in alerts] == [
        ("warn_15_months", utc("2023-12-01T00:00")),
        ("escalate_18_months", utc("2024-03-01T00:00")),
        ("national_flag_24_months", utc("2024-08-31T23:00")),
    ]


def test_a_missed_extended_deadline_is_alerted_as_overdue(case: Case) -> None:
    # Issued Mon 2024-01-15, due Sun 2024-07-14. The court extends by 8 weeks at the
    # week-26 hearing, recorded on Tue 2024-07-16 after the overdue rung went out: the new
    # deadline is Sun 2024-09-08. The extension starts a new round of the ladder: due soon
    # four weeks before (end of Sun 2024-08-11, 23:00Z), then, when the new deadline passes
    # with no final hearing, overdue to the service manager and head of service at
    # 2024-09-08T23:00Z, under keys naming the round (occurrence 1, round 1).
    case.record("proceedings_issued", d("2024-01-15"))
    before = case.drift("care_proceedings", until=london(d("2024-07-16"), 9))
    assert [a.level_name for a in before] == ["due_soon", "overdue"]
    case.record(
        "proceedings_extended",
        d("2024-07-15"),
        recorded=london(d("2024-07-16"), 10),
        data={"weeks": 8, "reason": "expert_evidence"},
    )
    assert case.state.clocks["care_proceedings"].deadline.due_date == d("2024-09-08")
    after = case.drift("care_proceedings")
    assert [(a.level_name, a.fire_at) for a in after][:2] == [
        ("due_soon", utc("2024-08-11T23:00")),
        ("overdue", utc("2024-09-08T23:00")),
    ]
    assert after[1].key.endswith("/care_proceedings/1.1/1")
    assert after[1].roles == ("service_manager", "head_of_service")
