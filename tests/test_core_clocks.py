"""Every clock of the child-protection definition, driven through the pure core.

Each test is a timeline: events are recorded one after another (``now`` is the recording
instant), alerts are collected as the workflow would collect them (at every wakeup up to
the next recording, and straight after each event), and the due dates are checked against
arithmetic written out by hand in the comments. Working days skip weekends and England and
Wales bank holidays; "within N of X" counts the day after X as day 1, "beginning with X"
counts X itself as day 1.
"""

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from caseclock.calendar import LONDON, WorkingCalendar
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.actions import (
    AlertState,
    ClockSnapshot,
    ClockStatus,
    NotifyAction,
    RecordClockAction,
)
from caseclock.core.engine import Outcome, apply_event, due_alerts, next_wakeup, start_case
from caseclock.core.events import CaseEvent, EventRejectedError, FieldValue
from caseclock.core.state import Occurrence
from caseclock.definition.loader import load_definition, parse_definition
from caseclock.definition.schema import Definition
from caseclock.units import Counting, Unit

DEFINITION_FILE = Path(__file__).parent.parent / "definitions" / "child-protection.yaml"
CASE_REF = "CP-0001"

F = TypeVar("F", bound=Callable[..., None])
COVERED: set[str] = set()


def covers(*clock_ids: str) -> Callable[[F], F]:
    """Mark a test as the one that drives these clocks (checked against the definition)."""

    def mark(test: F) -> F:
        COVERED.update(clock_ids)
        return test

    return mark


def d(text: str) -> date:
    return date.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def london(day: date, hour: int = 16, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return build_england_and_wales_calendar(2000, 2045)


class Timeline:
    """One case moved on by the core, with the alerts a workflow would have sent."""

    def __init__(self, definition: Definition, calendar: WorkingCalendar) -> None:
        self.definition = definition
        self.calendar = calendar
        self.state = start_case(definition, CASE_REF)
        self.now = datetime(2000, 1, 1, tzinfo=UTC)
        self.alerts: list[NotifyAction] = []
        self._ids = itertools.count(1)

    def event(
        self,
        event_type: str,
        on: date,
        outcome: str | None = None,
        *,
        at: datetime | None = None,
        recorded: datetime | None = None,
        data: dict[str, FieldValue] | None = None,
    ) -> CaseEvent:
        """An event of this case, recorded by default at 16:00 London on its day."""
        return CaseEvent(
            event_id=f"ev-{next(self._ids)}",
            type=event_type,
            effective_date=on,
            effective_at=at,
            recorded_at=recorded or at or london(on),
            recorded_by="sw-17",
            outcome=outcome,
            data=data or {},
        )

    def record(
        self, event_type: str, on: date, outcome: str | None = None, **kwargs: Any
    ) -> Outcome:
        """Record an event at its recording instant, sending what falls due up to and after it."""
        event = self.event(event_type, on, outcome, **kwargs)
        now = event.recorded_at
        self.advance(now)
        result = apply_event(self.definition, self.state, event, self.calendar, now)
        self.state = result.state
        self._tick(now)
        return result

    def rejected(
        self, event_type: str, on: date, outcome: str | None = None, **kwargs: Any
    ) -> EventRejectedError:
        """Record an event that must be refused, and check that nothing changed."""
        event = self.event(event_type, on, outcome, **kwargs)
        self.advance(event.recorded_at)
        before = self.state.model_dump_json()
        with pytest.raises(EventRejectedError) as caught:
            apply_event(self.definition, self.state, event, self.calendar, event.recorded_at)
        assert self.state.model_dump_json() == before
        return caught.value

    def advance(self, until: datetime) -> None:
        """Let time pass, sending each alert at the instant it falls due."""
        assert until >= self.now, "a timeline only moves forward"
        while (wakeup := next_wakeup(self.state)) is not None and wakeup <= until:
            self._tick(wakeup)
        self.now = until

    def _tick(self, at: datetime) -> None:
        outcome = due_alerts(self.definition, self.state, at)
        self.state = outcome.state
        self.alerts += [a for a in outcome.actions if isinstance(a, NotifyAction)]
        self.now = at

    def clock(self, clock_id: str) -> Occurrence:
        return self.state.clocks[clock_id]

    def alerts_for(self, clock_id: str, occurrence: int | None = None) -> list[NotifyAction]:
        return [
            a for a in self.alerts if a.clock_id == clock_id and occurrence in {None, a.occurrence}
        ]


def due(occurrence: Occurrence) -> tuple[int, date, datetime]:
    """Which occurrence, its due date, and its deadline instant (in UTC)."""
    return occurrence.number, occurrence.deadline.due_date, occurrence.deadline.due_at


def snapshots(outcome: Outcome, clock_id: str) -> list[ClockSnapshot]:
    """The clock occurrences an event wrote to the read model, in order."""
    return [
        a.clock
        for a in outcome.actions
        if isinstance(a, RecordClockAction) and a.clock.clock_id == clock_id
    ]


def assert_silent_after_stop(case: Timeline, clock_id: str, occurrence: int) -> None:
    """Run the case on for a year: nothing more is sent for that occurrence."""
    sent = len(case.alerts_for(clock_id, occurrence))
    case.advance(case.now + timedelta(days=366))
    assert len(case.alerts_for(clock_id, occurrence)) == sent


@pytest.fixture
def case(definition: Definition, calendar: WorkingCalendar) -> Timeline:
    return Timeline(definition, calendar)


def to_strategy_discussion(case: Timeline, held_on: date, referral_on: date) -> None:
    """Referral, a same-day decision to hold a strategy discussion, and the discussion (s47)."""
    case.record("referral_received", referral_on)
    case.record("referral_decision", referral_on, "strategy_discussion")
    case.record("strategy_discussion_held", held_on, "s47")


def to_cp_plan(case: Timeline, icpc_on: date, outcome: str = "cp_plan") -> None:
    """A child on a protection plan from an ICPC held on ``icpc_on`` (in time)."""
    to_strategy_discussion(
        case, held_on=icpc_on - timedelta(days=14), referral_on=icpc_on - timedelta(days=21)
    )
    case.record("icpc_held", icpc_on, outcome)


def issue_proceedings(case: Timeline, issued_on: date) -> None:
    case.record("proceedings_issued", issued_on)


# --- Referral, assessment, strategy discussion -----------------------------------------


@covers("referral_decision")
def test_referral_decision_friday_before_christmas_2020_is_due_monday(case: Timeline) -> None:
    # Referral Fri 2020-12-18. 1 working day of it: Sat 19 and Sun 20 do not count, so
    # day 1 is Mon 2020-12-21. GMT: the deadline instant is London midnight ending the 21st.
    case.record("referral_received", d("2020-12-18"))
    clock = case.clock("referral_decision")
    assert clock.deadline.due_date == d("2020-12-21")
    assert clock.deadline.due_at == utc("2020-12-22T00:00")
    # The decision is made on the due day.
    decided = case.record("referral_decision", d("2020-12-21"), "assessment")
    assert [s.status for s in snapshots(decided, "referral_decision")] == [ClockStatus.MET]
    assert case.clock("referral_decision").status is ClockStatus.MET
    # No alert at all: the "due soon" rung (end of Thu 17th) fell before the clock started,
    # so it is not scheduled, and the decision came in time.
    assert [a.level_name for a in case.alerts_for("referral_decision")] == []
    assert_silent_after_stop(case, "referral_decision", 1)


@covers("referral_decision")
def test_referral_decision_over_the_platinum_jubilee_is_due_the_next_monday(
    case: Timeline,
) -> None:
    # Referral Wed 2022-06-01. Thu 2 June (spring bank holiday, moved) and Fri 3 June
    # (Platinum Jubilee) are bank holidays, then the weekend: day 1 is Mon 2022-06-06.
    # BST: London midnight ending the 6th is 23:00 UTC on the 6th.
    case.record("referral_received", d("2022-06-01"))
    assert case.clock("referral_decision").deadline.due_date == d("2022-06-06")
    assert case.clock("referral_decision").deadline.due_at == utc("2022-06-06T23:00")
    # Decided on Tue 7th: one day late. The overdue alert went out at the deadline.
    case.record("referral_decision", d("2022-06-07"), "no_further_action")
    assert case.clock("referral_decision").status is ClockStatus.MET_LATE
    overdue = case.alerts_for("referral_decision")[-1]
    assert (overdue.level_name, overdue.fire_at) == ("overdue", utc("2022-06-06T23:00"))
    assert_silent_after_stop(case, "referral_decision", 1)


@covers("assessment")
def test_assessment_runs_45_working_days_from_the_referral_not_the_decision(
    case: Timeline,
) -> None:
    # Referral Mon 2024-01-08, decision Tue 9th. 45 working days of the referral, with no
    # bank holiday between New Year and Good Friday (2024-03-29): 9 weeks of 5 working days,
    # so day 45 is Mon 2024-03-11 (GMT, deadline instant 2024-03-12T00:00Z).
    case.record("referral_received", d("2024-01-08"))
    case.record("referral_decision", d("2024-01-09"), "assessment")
    clock = case.clock("assessment")
    assert clock.deadline.start_event_type == "referral_received"
    assert clock.deadline.start_date == d("2024-01-08")
    assert clock.deadline.due_date == d("2024-03-11")
    assert clock.deadline.due_at == utc("2024-03-12T00:00")

    case.record("assessment_completed", d("2024-03-11"))
    assert case.clock("assessment").status is ClockStatus.MET
    assert_silent_after_stop(case, "assessment", 1)


@covers("assessment")
def test_assessment_clock_stops_when_a_child_moves_away_during_the_plan(
    case: Timeline,
) -> None:
    # Referral Mon 2022-08-01, strategy discussion (s47) Wed 3rd, ICPC Wed 24th: the
    # assessment (due 45 WD after 1 Aug, Wed 2022-10-05) is still open when the family
    # moves away on Mon 2022-09-05 and the case is closed.
    case.record("referral_received", d("2022-08-01"))
    case.record("referral_decision", d("2022-08-01"), "strategy_discussion")
    case.record("strategy_discussion_held", d("2022-08-03"), "s47")
    case.record("icpc_held", d("2022-08-24"), "cp_plan")
    case.record("cp_plan_ended", d("2022-09-05"), "moved_away")
    assert case.state.tracks["main"].stage == "closed"
    assert case.clock("assessment").status is ClockStatus.CANCELLED


@covers("assessment")
def test_a_cancelled_occurrence_keeps_the_deadline_it_ran_under(
    calendar: WorkingCalendar,
) -> None:
    # A minimal definition with one clock measured from another event (like the
    # assessment's "45 working days from referral_received"): "work" starts on "begin",
    # runs while the track is "open", and is due 10 working days after the latest "anchor".
    # An "anchor" event also closes the track.
    definition = parse_definition(
        {
            "schema_version": 1,
            "id": "anchor-test",
            "version": "1",
            "title": "Anchor test",
            "roles": {"worker": "Worker"},
            "tracks": {
                "main": {
                    "title": "Main",
                    "initial": "idle",
                    "stages": {"idle": {"title": "Idle"}, "open": {"title": "Open"}},
                }
            },
            "events": {
                "anchor": {"title": "Anchor", "then": {"main": "idle"}},
                "begin": {"title": "Begin", "when": {"main": ["idle"]}, "then": {"main": "open"}},
            },
            "clocks": {
                "work": {
                    "title": "Work",
                    "what_to_do": "Do it.",
                    "starts_on": ["begin"],
                    "while_in": {"main": ["open"]},
                    "deadline": {"amount": 10, "unit": "working_days", "from": "anchor"},
                    "ladder": "plain",
                    "source": "test",
                    "confidence": ["L"],
                }
            },
            "ladders": {
                "plain": {
                    "title": "Plain",
                    "steps": [
                        {
                            "name": "overdue",
                            "offset": {"amount": 0, "unit": "days"},
                            "notify": ["worker"],
                        }
                    ],
                }
            },
        }
    )
    case = Timeline(definition, calendar)
    # Anchor Mon 2024-06-03, begin Tue 4th: due 10 working days after Mon 3rd, Mon 2024-06-17.
    case.record("anchor", d("2024-06-03"))
    case.record("begin", d("2024-06-04"))
    assert case.clock("work").deadline.due_date == d("2024-06-17")
    # A new anchor on Mon 2024-06-10 ends the stage, so it cancels this occurrence; the
    # record of the cancelled occurrence must still say it was due on 2024-06-17.
    ended = case.record("anchor", d("2024-06-10"))
    assert [(s.status, s.deadline.due_date) for s in snapshots(ended, "work")] == [
        (ClockStatus.CANCELLED, d("2024-06-17"))
    ]


@covers("strategy_discussion")
def test_strategy_discussion_skips_the_state_funeral(case: Timeline) -> None:
    # Concern of significant harm Fri 2022-09-16. 1 working day of it: Sat, Sun, then
    # Mon 19th (State Funeral of Queen Elizabeth II) are skipped: Tue 2022-09-20, BST.
    case.record("referral_received", d("2022-09-15"))
    case.record("referral_decision", d("2022-09-16"), "assessment")
    case.record("significant_harm_concern", d("2022-09-16"))
    clock = case.clock("strategy_discussion")
    assert clock.start_event_type == "significant_harm_concern"
    assert clock.deadline.due_date == d("2022-09-20")
    assert clock.deadline.due_at == utc("2022-09-20T23:00")

    case.record("strategy_discussion_held", d("2022-09-20"), "s47")
    assert case.clock("strategy_discussion").status is ClockStatus.MET
    assert_silent_after_stop(case, "strategy_discussion", 1)


# --- Child protection conference, plan, visits and reviews ------------------------------


@covers("icpc")
@pytest.mark.parametrize(
    ("referral_on", "strategy_on", "icpc_due", "due_at"),
    [
        # Strategy discussion Mon 2020-12-21. Working days after it: Dec 22 (1), 23 (2),
        # 24 (3); Fri 25 Christmas, weekend, Mon 28 Boxing Day (observed); 29 (4), 30 (5),
        # 31 (6); Fri Jan 1 New Year; weekend; Jan 4-8 (7-11); Jan 11-14 (12-15).
        ("2020-12-18", "2020-12-21", "2021-01-14", "2021-01-15T00:00"),
        # Strategy discussion Fri 2023-04-28. Mon May 1 (early May) skipped; May 2-5 (1-4);
        # Mon May 8 (Coronation) skipped; May 9-12 (5-8); May 15-19 (9-13); May 22 (14),
        # Tue May 23 (15). BST: deadline instant 23:00 UTC on the 23rd.
        ("2023-04-27", "2023-04-28", "2023-05-23", "2023-05-23T23:00"),
    ],
    ids=["christmas-2020", "coronation-2023"],
)
def test_icpc_within_15_working_days_of_the_strategy_discussion(
    case: Timeline, referral_on: str, strategy_on: str, icpc_due: str, due_at: str
) -> None:
    to_strategy_discussion(case, held_on=d(strategy_on), referral_on=d(referral_on))
    clock = case.clock("icpc")
    assert clock.start_event_type == "strategy_discussion_held"
    assert clock.deadline.due_date == d(icpc_due)
    assert clock.deadline.due_at == utc(due_at)

    case.record("icpc_held", d(icpc_due), "cp_plan")
    assert case.clock("icpc").status is ClockStatus.MET
    assert_silent_after_stop(case, "icpc", 1)


@covers("first_core_group")
def test_first_core_group_across_the_platinum_jubilee(case: Timeline) -> None:
    # ICPC Wed 2022-06-01. Thu 2 and Fri 3 June are bank holidays: Jun 6-10 (1-5),
    # Jun 13-17 (6-10): due Fri 2022-06-17.
    to_strategy_discussion(case, held_on=d("2022-05-13"), referral_on=d("2022-05-12"))
    case.record("icpc_held", d("2022-06-01"), "cp_plan")
    assert due(case.clock("first_core_group")) == (1, d("2022-06-17"), utc("2022-06-17T23:00"))

    case.record("core_group_held", d("2022-06-16"))
    assert case.clock("first_core_group").status is ClockStatus.MET
    assert_silent_after_stop(case, "first_core_group", 1)


@covers("core_groups")
def test_core_groups_every_4_weeks_reanchor_on_each_meeting(case: Timeline) -> None:
    to_cp_plan(case, icpc_on=d("2024-03-04"))
    # The first core group (Thu 2024-03-14) meets the first-core-group clock and opens
    # occurrence 1 of the 4-weekly clock: 2024-03-14 + 28 days = Thu 2024-04-11.
    case.record("core_group_held", d("2024-03-14"))
    assert case.clock("first_core_group").status is ClockStatus.MET
    first = case.clock("core_groups")
    assert due(first) == (1, d("2024-04-11"), utc("2024-04-11T23:00"))  # BST

    # Next meeting Wed 2024-04-10 (in time): occurrence 2 from it, due Wed 2024-05-08.
    held = case.record("core_group_held", d("2024-04-10"))
    assert [(s.occurrence, s.status) for s in snapshots(held, "core_groups")] == [
        (1, ClockStatus.MET),
        (2, ClockStatus.RUNNING),
    ]
    assert due(case.clock("core_groups")) == (2, d("2024-05-08"), utc("2024-05-08T23:00"))

    # Thu 2024-05-09 is a day late: occurrence 2 met late; occurrence 3 due Thu 2024-06-06.
    held = case.record("core_group_held", d("2024-05-09"))
    assert [(s.occurrence, s.status) for s in snapshots(held, "core_groups")] == [
        (2, ClockStatus.MET_LATE),
        (3, ClockStatus.RUNNING),
    ]
    third = case.clock("core_groups")
    assert third.start_date == d("2024-05-09")
    assert due(third) == (3, d("2024-06-06"), utc("2024-06-06T23:00"))
    assert {a.occurrence for a in case.alerts_for("core_groups")} <= {1, 2}
    assert_silent_after_stop(case, "core_groups", 2)


@covers("first_review_conference")
@pytest.mark.parametrize(
    ("icpc_on", "review_due", "due_at"),
    [
        # 3 calendar months from Thu 2023-11-30: February 2024 has 29 days (leap year).
        # GMT: the deadline instant is midnight UTC starting 1 March.
        ("2023-11-30", "2024-02-29", "2024-03-01T00:00"),
        # From Sat 2024-11-30: February 2025 has 28 days, so the month end.
        ("2024-11-30", "2025-02-28", "2025-03-01T00:00"),
        # From Sat 2024-08-31: there is no 31 November, so Sat 2024-11-30.
        ("2024-08-31", "2024-11-30", "2024-12-01T00:00"),
        # From Fri 2024-05-31: Sat 2024-08-31, in BST, so 23:00 UTC that day.
        ("2024-05-31", "2024-08-31", "2024-08-31T23:00"),
    ],
)
def test_first_review_conference_3_months_after_the_icpc_at_month_ends(
    case: Timeline, icpc_on: str, review_due: str, due_at: str
) -> None:
    to_cp_plan(case, icpc_on=d(icpc_on))
    clock = case.clock("first_review_conference")
    assert clock.deadline.unit is Unit.MONTHS
    assert due(clock) == (1, d(review_due), utc(due_at))

    case.record("rcpc_held", d(review_due), "continue")
    assert case.clock("first_review_conference").status is ClockStatus.MET
    assert_silent_after_stop(case, "first_review_conference", 1)


@covers("first_review_conference_unborn")
def test_unborn_baby_first_review_birth_recorded_later_shortens_the_deadline(
    case: Timeline,
) -> None:
    # Pre-birth ICPC Mon 2024-01-15: until a birth is recorded, 3 months: Mon 2024-04-15.
    to_cp_plan(case, icpc_on=d("2024-01-15"), outcome="cp_plan_unborn")
    assert "first_review_conference" not in case.state.clocks
    assert due(case.clock("first_review_conference_unborn")) == (
        1,
        d("2024-04-15"),
        utc("2024-04-15T23:00"),
    )

    # Born Wed 2024-02-07, recorded the next day. 10 working days after the birth:
    # Feb 8 (1), 9 (2), 12-16 (3-7), 19 (8), 20 (9), Wed Feb 21 (10). Sooner than 15 April.
    case.record("baby_born", d("2024-02-07"), recorded=london(d("2024-02-08"), 10))
    clock = case.clock("first_review_conference_unborn")
    assert due(clock) == (1, d("2024-02-21"), utc("2024-02-22T00:00"))
    assert clock.deadline.start_event_type == "baby_born"
    assert "the sooner is 10 working days from baby_born" in clock.deadline.basis

    case.record("rcpc_held", d("2024-02-20"), "continue")
    assert case.clock("first_review_conference_unborn").status is ClockStatus.MET
    assert_silent_after_stop(case, "first_review_conference_unborn", 1)


@covers("first_review_conference_unborn")
@pytest.mark.parametrize(
    "born_on",
    [
        # Mon 2024-04-08: 10 working days later is Mon 2024-04-22, after 15 April.
        "2024-04-08",
        # Sat 2024-04-20: after the 3 months have already run out.
        "2024-04-20",
    ],
)
def test_unborn_baby_first_review_birth_late_in_the_3_months_changes_nothing(
    case: Timeline, born_on: str
) -> None:
    to_cp_plan(case, icpc_on=d("2024-01-15"), outcome="cp_plan_unborn")
    case.record("baby_born", d(born_on))
    deadline = case.clock("first_review_conference_unborn").deadline
    assert (deadline.due_date, deadline.due_at) == (d("2024-04-15"), utc("2024-04-15T23:00"))
    assert deadline.start_event_type == "icpc_held"
    assert "the sooner is 3 months from the start" in deadline.basis


@covers("review_conferences")
def test_review_conferences_every_6_months_reanchor_at_month_ends(case: Timeline) -> None:
    # ICPC Wed 2023-05-31: first review within 3 months, Thu 2023-08-31.
    to_cp_plan(case, icpc_on=d("2023-05-31"))
    assert due(case.clock("first_review_conference")) == (
        1,
        d("2023-08-31"),
        utc("2023-08-31T23:00"),
    )

    # First review held on the due day: review conferences then every 6 months from the
    # last one. 2023-08-31 + 6 months: no 31 February, 2024 is a leap year: Thu 2024-02-29.
    case.record("rcpc_held", d("2023-08-31"), "continue")
    assert case.clock("first_review_conference").status is ClockStatus.MET
    first = case.clock("review_conferences")
    assert due(first) == (1, d("2024-02-29"), utc("2024-03-01T00:00"))

    # Held Thu 2024-02-29: occurrence 2 from it, 2024-02-29 + 6 months = Thu 2024-08-29.
    case.record("rcpc_held", d("2024-02-29"), "continue")
    second = case.clock("review_conferences")
    assert second.start_date == d("2024-02-29")
    assert due(second) == (2, d("2024-08-29"), utc("2024-08-29T23:00"))

    # Held Wed 2024-08-28: occurrence 3, 2024-08-28 + 6 months = Fri 2025-02-28.
    case.record("rcpc_held", d("2024-08-28"), "continue")
    third = case.clock("review_conferences")
    assert due(third) == (3, d("2025-02-28"), utc("2025-03-01T00:00"))

    # The plan ends at the next review: occurrence 3 met, no occurrence 4.
    ended = case.record("rcpc_held", d("2025-02-27"), "end_step_down_cin")
    assert [(s.occurrence, s.status) for s in snapshots(ended, "review_conferences")] == [
        (3, ClockStatus.MET)
    ]
    assert case.clock("review_conferences").number == 3
    assert_silent_after_stop(case, "review_conferences", 3)


@covers("cp_visits")
def test_cp_visits_reanchor_on_each_visit_across_easter(case: Timeline) -> None:
    # ICPC Mon 2024-03-04: first visit within 10 working days, Mar 5-8 (1-4), 11-15 (5-9),
    # Mon Mar 18 (10).
    to_cp_plan(case, icpc_on=d("2024-03-04"))
    assert due(case.clock("cp_visits")) == (1, d("2024-03-18"), utc("2024-03-19T00:00"))
    # Visit Fri 2024-03-15: occurrence 2 from it. Mar 18-22 (1-5), 25-28 (6-9), Good Friday
    # Mar 29 and Easter Monday Apr 1 skipped, Tue Apr 2 (10).
    case.record("cp_visit", d("2024-03-15"))
    assert due(case.clock("cp_visits")) == (2, d("2024-04-02"), utc("2024-04-02T23:00"))
    # Visit Thu 2024-03-28: occurrence 3. Skips Easter: Apr 2-5 (1-4), 8-12 (5-9), Mon
    # Apr 15 (10).
    visited = case.record("cp_visit", d("2024-03-28"))
    assert [(s.occurrence, s.status) for s in snapshots(visited, "cp_visits")] == [
        (2, ClockStatus.MET),
        (3, ClockStatus.RUNNING),
    ]
    third = case.clock("cp_visits")
    assert due(third) == (3, d("2024-04-15"), utc("2024-04-15T23:00"))

    # A visit on Wed 2024-03-20, recorded late (after the 28th): it belongs to occurrence 2,
    # which is already met, and leaves occurrence 3 untouched.
    late = case.record("cp_visit", d("2024-03-20"), recorded=london(d("2024-04-03"), 9))
    assert snapshots(late, "cp_visits") == []
    assert case.clock("cp_visits") == third
    assert_silent_after_stop(case, "cp_visits", 2)


@covers("cp_plan_duration")
def test_cp_plan_duration_18_months_into_a_leap_february_then_cancelled_when_it_ends(
    case: Timeline,
) -> None:
    # ICPC Wed 2022-08-31: 18 calendar months later has no 31st; February 2024 has 29 days:
    # Thu 2024-02-29.
    to_cp_plan(case, icpc_on=d("2022-08-31"))
    clock = case.clock("cp_plan_duration")
    assert (clock.deadline.amount, clock.deadline.unit) == (18, Unit.MONTHS)
    assert clock.deadline.due_date == d("2024-02-29")
    assert clock.deadline.due_at == utc("2024-03-01T00:00")

    # The plan ends (step down to child in need) on Wed 2023-03-01: the duration clock has
    # nothing to meet it; it is cancelled, and no 15, 18 or 24-month flag is ever sent.
    ended = case.record("cp_plan_ended", d("2023-03-01"), "step_down_cin")
    assert [s.status for s in snapshots(ended, "cp_plan_duration")] == [ClockStatus.CANCELLED]
    case.advance(london(d("2025-01-01")))
    assert case.alerts_for("cp_plan_duration") == []


@covers("cp_plan_duration")
def test_cp_plan_duration_also_runs_for_a_pre_birth_plan(case: Timeline) -> None:
    # Pre-birth ICPC Mon 2024-01-15 + 18 months = Tue 2025-07-15.
    to_cp_plan(case, icpc_on=d("2024-01-15"), outcome="cp_plan_unborn")
    assert due(case.clock("cp_plan_duration")) == (1, d("2025-07-15"), utc("2025-07-15T23:00"))


@covers("cin_plan_review")
def test_cin_plan_reviews_every_3_months_from_the_last_review(case: Timeline) -> None:
    # Child in need plan from Thu 2023-11-30: + 3 months = Thu 2024-02-29 (leap year).
    case.record("referral_received", d("2023-11-01"))
    case.record("referral_decision", d("2023-11-01"), "assessment")
    case.record("cin_plan_started", d("2023-11-30"))
    assert due(case.clock("cin_plan_review")) == (1, d("2024-02-29"), utc("2024-03-01T00:00"))
    # Reviewed Wed 2024-02-28: occurrence 2 due 2024-05-28.
    case.record("cin_plan_reviewed", d("2024-02-28"))
    assert due(case.clock("cin_plan_review")) == (2, d("2024-05-28"), utc("2024-05-28T23:00"))
    # Reviewed Tue 2024-05-28: occurrence 3 due Wed 2024-08-28.
    case.record("cin_plan_reviewed", d("2024-05-28"))
    assert due(case.clock("cin_plan_review")) == (3, d("2024-08-28"), utc("2024-08-28T23:00"))
    # The case closes: occurrence 3 is cancelled and nothing more is sent.
    closed = case.record("case_closed", d("2024-07-01"))
    assert [(s.occurrence, s.status) for s in snapshots(closed, "cin_plan_review")] == [
        (3, ClockStatus.CANCELLED)
    ]
    assert_silent_after_stop(case, "cin_plan_review", 3)


@covers("cin_plan_review")
def test_cin_plan_review_starts_when_a_review_conference_steps_down(case: Timeline) -> None:
    # ICPC Mon 2024-01-15; review conference Mon 2024-04-15 ends the plan with a step down
    # to child in need: the CIN review is due 3 months later, Mon 2024-07-15.
    to_cp_plan(case, icpc_on=d("2024-01-15"))
    case.record("rcpc_held", d("2024-04-15"), "end_step_down_cin")
    clock = case.clock("cin_plan_review")
    assert clock.start_event_type == "rcpc_held"
    assert due(clock) == (1, d("2024-07-15"), utc("2024-07-15T23:00"))


@covers("transfer")
def test_transfer_to_a_long_term_team_skips_the_state_funeral(case: Timeline) -> None:
    # Requested Fri 2022-09-16. Mon 19th (State Funeral) skipped: Sep 20-23 (1-4),
    # Sep 26-30 (5-9), Mon Oct 3 (10).
    case.record("referral_received", d("2022-09-15"))
    case.record("referral_decision", d("2022-09-15"), "assessment")
    case.record("transfer_requested", d("2022-09-16"))
    assert due(case.clock("transfer")) == (1, d("2022-10-03"), utc("2022-10-03T23:00"))

    case.record("transfer_completed", d("2022-10-03"))
    assert case.clock("transfer").status is ClockStatus.MET
    assert_silent_after_stop(case, "transfer", 1)


@covers("transfer")
def test_closing_the_case_ends_the_wait_for_a_transfer(case: Timeline) -> None:
    # Transfer requested Fri 2022-09-16 (due Mon 2022-10-03); the assessment ends with no
    # further action and the case is closed on Wed 2022-09-21.
    case.record("referral_received", d("2022-09-15"))
    case.record("referral_decision", d("2022-09-15"), "assessment")
    case.record("transfer_requested", d("2022-09-16"))
    case.record("assessment_completed", d("2022-09-21"))
    case.record("case_closed", d("2022-09-21"))
    assert case.clock("transfer").status is ClockStatus.CANCELLED


# --- PLO pre-proceedings ---------------------------------------------------------------


@covers("pre_proceedings_meeting")
def test_pre_proceedings_meeting_across_christmas_2023(case: Timeline) -> None:
    # Letter Thu 2023-12-21. Dec 22 (1); Christmas Mon 25 and Boxing Day Tue 26 skipped;
    # Dec 27-29 (2-4); New Year Mon Jan 1 skipped; Jan 2-5 (5-8); Jan 8 (9), Tue Jan 9 (10).
    case.record("letter_before_proceedings", d("2023-12-21"))
    assert due(case.clock("pre_proceedings_meeting")) == (
        1,
        d("2024-01-09"),
        utc("2024-01-10T00:00"),
    )

    case.record("pre_proceedings_meeting", d("2024-01-09"))
    assert case.clock("pre_proceedings_meeting").status is ClockStatus.MET
    assert_silent_after_stop(case, "pre_proceedings_meeting", 1)


@covers("pre_proceedings_reviews")
def test_pre_proceedings_reviews_every_6_weeks_until_proceedings_are_issued(
    case: Timeline,
) -> None:
    case.record("letter_before_proceedings", d("2023-12-21"))
    # Meeting Tue 2024-01-09 + 6 weeks (42 days) = Tue 2024-02-20.
    case.record("pre_proceedings_meeting", d("2024-01-09"))
    assert due(case.clock("pre_proceedings_reviews")) == (
        1,
        d("2024-02-20"),
        utc("2024-02-21T00:00"),
    )
    # Review Tue 2024-02-20 + 42 days = Tue 2024-04-02.
    case.record("pre_proceedings_review", d("2024-02-20"))
    second = case.clock("pre_proceedings_reviews")
    assert due(second) == (2, d("2024-04-02"), utc("2024-04-02T23:00"))
    # Review Tue 2024-03-26 + 42 days = Tue 2024-05-07.
    case.record("pre_proceedings_review", d("2024-03-26"))
    third = case.clock("pre_proceedings_reviews")
    assert due(third) == (3, d("2024-05-07"), utc("2024-05-07T23:00"))
    # Issuing proceedings ends pre-proceedings: occurrence 3 is cancelled.
    issued = case.record("proceedings_issued", d("2024-04-10"))
    assert [(s.occurrence, s.status) for s in snapshots(issued, "pre_proceedings_reviews")] == [
        (3, ClockStatus.CANCELLED)
    ]
    assert_silent_after_stop(case, "pre_proceedings_reviews", 3)


@covers("pre_proceedings_decision")
def test_pre_proceedings_decision_16_weeks_and_an_extension(case: Timeline) -> None:
    # Letter Thu 2023-12-21 + 16 weeks (112 days) = Thu 2024-04-11.
    case.record("letter_before_proceedings", d("2023-12-21"))
    assert due(case.clock("pre_proceedings_decision")) == (
        1,
        d("2024-04-11"),
        utc("2024-04-11T23:00"),
    )
    # A recorded management decision extends it by 4 weeks from the end of the period:
    # 2024-04-11 + 28 days = Thu 2024-05-09.
    case.record(
        "pre_proceedings_extended",
        d("2024-04-04"),
        data={"weeks": 4, "reason": "parenting_assessment"},
    )
    clock = case.clock("pre_proceedings_decision")
    assert due(clock) == (1, d("2024-05-09"), utc("2024-05-09T23:00"))
    assert [(e.amount, e.unit) for e in clock.deadline.extensions] == [(4, Unit.WEEKS)]
    # Proceedings issued Wed 2024-05-01: the decision was made in time.
    case.record("proceedings_issued", d("2024-05-01"))
    assert case.clock("pre_proceedings_decision").status is ClockStatus.MET
    assert_silent_after_stop(case, "pre_proceedings_decision", 1)


# --- Care proceedings ------------------------------------------------------------------


@covers("care_proceedings")
def test_care_proceedings_26_weeks_beginning_with_issue_then_one_8_week_extension(
    case: Timeline,
) -> None:
    # Issued Mon 2024-01-15, which is day 1: 26 weeks end the day before 2024-01-15 + 182
    # days (Mon 2024-07-15), so Sun 2024-07-14. BST: deadline instant 2024-07-14T23:00Z.
    issue_proceedings(case, d("2024-01-15"))
    clock = case.clock("care_proceedings")
    assert clock.deadline.counting is Counting.START_DAY_IS_DAY_1
    assert clock.deadline.due_date == d("2024-07-14")
    assert clock.deadline.due_at == utc("2024-07-14T23:00")

    # s32(5): an extension of up to 8 weeks from the end of the period: 2024-07-14 + 56
    # days = Sun 2024-09-08.
    case.record(
        "proceedings_extended", d("2024-06-20"), data={"weeks": 8, "reason": "expert_evidence"}
    )
    clock = case.clock("care_proceedings")
    assert due(clock) == (1, d("2024-09-08"), utc("2024-09-08T23:00"))
    assert clock.extensions_used == 1

    # Nine weeks is more than s32(5) allows.
    error = case.rejected(
        "proceedings_extended", d("2024-06-21"), data={"weeks": 9, "reason": "other"}
    )
    reasons = [r.reason for r in error.rejections if r.field == "data.weeks"]
    assert any("at most 8 weeks" in r and "s32(5)" in r for r in reasons), reasons

    case.record("final_hearing_held", d("2024-09-02"), "care_order")
    assert case.clock("care_proceedings").status is ClockStatus.MET
    assert_silent_after_stop(case, "care_proceedings", 1)


@covers("case_management_hearing")
def test_case_management_hearing_window_day_12_to_day_18(case: Timeline) -> None:
    # Issued Mon 2024-01-15 = day 1. Day 12 = 2024-01-15 + 11 = Fri 2024-01-26 (the window
    # opens); day 18 = 2024-01-15 + 17 = Thu 2024-02-01 (the deadline).
    issue_proceedings(case, d("2024-01-15"))
    deadline = case.clock("case_management_hearing").deadline
    assert deadline.window_opens_on == d("2024-01-26")
    assert (deadline.due_date, deadline.due_at) == (d("2024-02-01"), utc("2024-02-02T00:00"))
    assert "Not before 2024-01-26" in deadline.explain()

    case.record("cmh_held", d("2024-01-30"))
    assert case.clock("case_management_hearing").status is ClockStatus.MET
    assert_silent_after_stop(case, "case_management_hearing", 1)


@covers("further_case_management_hearing")
def test_further_case_management_hearing_by_day_25_from_issue(case: Timeline) -> None:
    # Issued Mon 2024-01-15 = day 1; the clock starts when a further CMH is directed (Tue
    # 2024-01-30) but runs from the issue: day 25 = 2024-01-15 + 24 = Thu 2024-02-08.
    issue_proceedings(case, d("2024-01-15"))
    case.record("cmh_held", d("2024-01-30"))
    case.record("further_cmh_directed", d("2024-01-30"))
    deadline = case.clock("further_case_management_hearing").deadline
    assert (deadline.start_event_type, deadline.start_date) == (
        "proceedings_issued",
        d("2024-01-15"),
    )
    assert (deadline.due_date, deadline.due_at) == (d("2024-02-08"), utc("2024-02-09T00:00"))

    case.record("further_cmh_held", d("2024-02-07"))
    assert case.clock("further_case_management_hearing").status is ClockStatus.MET
    assert_silent_after_stop(case, "further_case_management_hearing", 1)


# --- Emergency powers ------------------------------------------------------------------


@covers("police_protection")
@pytest.mark.parametrize(
    ("taken_at", "due_at", "due_date"),
    [
        # Sat 2024-03-30 09:30 GMT = 09:30Z. The clocks go forward at 01:00Z on Sun 31st;
        # 72 real hours later is Tue 2024-04-02 09:30Z, which is 10:30 BST.
        ("2024-03-30T09:30:00+00:00", "2024-04-02T09:30", "2024-04-02"),
        # Sat 2024-10-26 14:00 BST = 13:00Z. The clocks go back at 01:00Z on Sun 27th;
        # 72 real hours later is Tue 2024-10-29 13:00Z, which is 13:00 GMT.
        ("2024-10-26T14:00:00+01:00", "2024-10-29T13:00", "2024-10-29"),
    ],
    ids=["march-clocks-forward", "october-clocks-back"],
)
def test_police_protection_72_real_hours_across_clock_changes(
    case: Timeline, taken_at: str, due_at: str, due_date: str
) -> None:
    taken = datetime.fromisoformat(taken_at)
    case.record("police_protection_started", taken.date(), at=taken)
    deadline = case.clock("police_protection").deadline
    assert (deadline.amount, deadline.unit) == (72, Unit.HOURS)
    assert deadline.due_at == utc(due_at)
    assert deadline.due_at - taken == timedelta(hours=72)
    assert deadline.due_date == d(due_date)

    # Police protection ends two hours before the limit.
    ended_at = utc(due_at) - timedelta(hours=2)
    case.record("police_protection_ended", d(due_date), at=ended_at)
    assert case.clock("police_protection").status is ClockStatus.MET
    assert [a.level_name for a in case.alerts_for("police_protection")] == ["due_soon"]
    assert_silent_after_stop(case, "police_protection", 1)


@covers("police_protection")
def test_police_protection_ended_one_minute_late_is_met_late(case: Timeline) -> None:
    # Taken Tue 2024-06-04 22:15 BST (21:15Z): due Fri 2024-06-07 21:15Z (22:15 BST).
    taken = datetime(2024, 6, 4, 22, 15, tzinfo=LONDON)
    case.record("police_protection_started", d("2024-06-04"), at=taken)
    assert case.clock("police_protection").deadline.due_at == utc("2024-06-07T21:15")
    case.record(
        "police_protection_ended", d("2024-06-07"), at=datetime(2024, 6, 7, 22, 16, tzinfo=LONDON)
    )
    assert case.clock("police_protection").status is ClockStatus.MET_LATE


@covers("police_protection")
def test_police_protection_end_without_a_time_cannot_be_judged_in_time(
    case: Timeline,
) -> None:
    # Taken Mon 2024-06-03 09:00 BST: the 72 hours end Thu 2024-06-06 09:00 BST. An end
    # recorded for Thu 6th with no time may be 09:01 or 23:59: it cannot be called "met".
    taken = datetime(2024, 6, 3, 9, 0, tzinfo=LONDON)
    case.record("police_protection_started", d("2024-06-03"), at=taken)
    error = case.rejected(
        "police_protection_ended", d("2024-06-06"), recorded=london(d("2024-06-06"), 18)
    )
    assert [r.field for r in error.rejections] == ["effective_at"]


@covers("police_protection")
def test_police_protection_explanation_gives_the_time_it_ends_not_the_end_of_the_day(
    case: Timeline,
) -> None:
    # Taken Sat 2024-03-30 09:30 GMT; 72 hours end Tue 2024-04-02 09:30Z, 10:30 in London.
    # "Due by the end of 2024-04-02" would tell a manager they have until midnight.
    taken = datetime(2024, 3, 30, 9, 30, tzinfo=UTC)
    case.record("police_protection_started", d("2024-03-30"), at=taken)
    text = case.clock("police_protection").deadline.explain()
    assert "by the end of" not in text
    assert "day 1" not in text
    assert "10:30" in text


@covers("emergency_protection_order", "police_protection")
def test_epo_8_days_beginning_with_the_day_made_one_7_day_extension_only(
    case: Timeline,
) -> None:
    # Police protection from Sat 2024-10-26 14:00 BST; an EPO made Tue 2024-10-29 12:30
    # GMT, within the 72 hours, meets the police protection clock.
    taken = datetime(2024, 10, 26, 14, 0, tzinfo=LONDON)
    case.record("police_protection_started", d("2024-10-26"), at=taken)
    made_at = datetime(2024, 10, 29, 12, 30, tzinfo=LONDON)
    case.record("epo_made", d("2024-10-29"), at=made_at)
    assert case.clock("police_protection").status is ClockStatus.MET

    # 8 days beginning with Tue 2024-10-29 (day 1): day 8 = 2024-10-29 + 7 = Tue 2024-11-05,
    # deadline instant London midnight ending the 5th, GMT: 2024-11-06T00:00Z.
    epo = case.clock("emergency_protection_order")
    assert epo.deadline.counting is Counting.START_DAY_IS_DAY_1
    assert epo.deadline.due_date == d("2024-11-05")
    assert epo.deadline.due_at == utc("2024-11-06T00:00")

    # One extension of up to 7 days, from the end of the order: Tue 2024-11-12.
    case.record("epo_extended", d("2024-11-04"), data={"days": 7})
    epo = case.clock("emergency_protection_order")
    assert due(epo) == (1, d("2024-11-12"), utc("2024-11-13T00:00"))
    assert epo.extensions_used == 1

    # s45(6): an order may be extended only once.
    error = case.rejected("epo_extended", d("2024-11-08"), data={"days": 3})
    assert [(r.field, r.reason) for r in error.rejections] == [
        (
            "type",
            "Emergency protection order (8 days, one extension of up to 7) may be extended "
            "at most 1 time(s) (Children Act 1989 s45(4) to (6) (one extension of up to 7 "
            "days))",
        )
    ]

    case.record("epo_ended", d("2024-11-11"))
    assert case.clock("emergency_protection_order").status is ClockStatus.MET
    assert_silent_after_stop(case, "emergency_protection_order", 1)


# --- Across clocks ---------------------------------------------------------------------


@covers("referral_decision")
def test_a_late_recorded_referral_escalates_at_once_in_one_alert(case: Timeline) -> None:
    # Referral received Fri 2020-12-18 but recorded Wed 2021-01-06 at 12:00. Its standard
    # ladder (due Mon 2020-12-21):
    #   due_soon        -2 WD  end of Thu 2020-12-17  2020-12-18T00:00Z (before the start:
    #                                                  not scheduled)
    #   overdue          0     end of Mon 2020-12-21  2020-12-22T00:00Z
    #   service_manager +2 WD  end of Wed 2020-12-23  2020-12-24T00:00Z
    #   head_of_service +5 WD  (24, 29, 30 after the Christmas days) end of Wed 2020-12-30
    #   director       +10 WD  (31, Jan 4, 5, 6, 7)  end of Thu 2021-01-07  2021-01-08T00:00Z
    # On 6 January three rungs are past: one alert at head_of_service covers them all.
    case.record("referral_received", d("2020-12-18"), recorded=london(d("2021-01-06"), 12))
    assert len(case.alerts) == 1
    alert = case.alerts[0]
    assert alert.key == f"{CASE_REF}/referral_decision/1/3"
    assert (alert.level, alert.level_name, alert.state) == (
        3,
        "head_of_service",
        AlertState.OVERDUE,
    )
    assert alert.covers_levels == (1, 2, 3)
    assert alert.roles == ("social_worker", "team_manager", "service_manager", "head_of_service")
    assert alert.fire_at == utc("2020-12-31T00:00")
    # Only the director rung remains.
    assert next_wakeup(case.state) == utc("2021-01-08T00:00")


def test_explanation_names_rule_version_start_unit_convention_calendar_and_due_date(
    case: Timeline, calendar: WorkingCalendar
) -> None:
    to_strategy_discussion(case, held_on=d("2023-04-28"), referral_on=d("2023-04-27"))
    deadline = case.clock("icpc").deadline
    strategy_id = case.state.latest["strategy_discussion_held"].event_id
    text = deadline.explain()
    for part in [
        "Initial child protection conference within 15 working days",
        "child-protection v2026.1",
        "rule icpc",
        "15 working days from strategy_discussion_held on 2023-04-28",
        f"(event {strategy_id})",
        "the day after the start is day 1",
        f"calendar {calendar.calendar_id}",
        "Due by the end of 2023-05-23 (2023-05-23T23:00:00+00:00)",
        "Source: Working Together 2018 and 2023",
    ]:
        assert part in text, part


def test_explanation_of_an_extended_period_beginning_with_the_start(case: Timeline) -> None:
    issue_proceedings(case, d("2024-01-15"))
    extended = case.record(
        "proceedings_extended", d("2024-06-20"), data={"weeks": 8, "reason": "expert_evidence"}
    )
    extension_id = next(a for a in extended.actions if a.kind == "record_event").event_id
    text = case.clock("care_proceedings").deadline.explain()
    assert "26 weeks from proceedings_issued on 2024-01-15" in text
    assert "the start day is day 1" in text
    assert "Due by the end of 2024-09-08" in text
    assert f"Extended by 8 weeks (event {extension_id})" in text


def test_every_clock_in_the_definition_is_driven_by_a_test_here(definition: Definition) -> None:
    assert set(definition.clocks) == COVERED
