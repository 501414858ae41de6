"""Every kind of rejection the core gives, with a message that names the field at fault.

A rejected event changes nothing: the state after the attempt is equal (``==``) to the state
before it, and so is its JSON (dicts inside a frozen model could still be mutated in place).
A repeated event id is not an error: it is recognised and changes nothing.
"""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from caseclock.calendar import LONDON, WorkingCalendar
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.engine import apply_event, start_case, validate_event
from caseclock.core.events import CaseEvent, EventRejectedError, Rejection
from caseclock.core.state import CaseState
from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition

DEFINITION_FILE = Path(__file__).parent.parent / "definitions" / "child-protection.yaml"
CASE_REF = "CP-0002"
REFERRAL_DAY = date(2024, 3, 4)  # a Monday


def london(day: date, hour: int = 16, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return build_england_and_wales_calendar(2000, 2045)


def event(
    event_id: str,
    event_type: str,
    on: date,
    outcome: str | None = None,
    *,
    at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    return CaseEvent(
        event_id=event_id,
        type=event_type,
        effective_date=on,
        effective_at=at,
        recorded_at=at or london(on),
        recorded_by="sw-17",
        outcome=outcome,
        data=data or {},
    )


@pytest.fixture(scope="module")
def referred(definition: Definition, calendar: WorkingCalendar) -> CaseState:
    """A case with a referral received on Mon 2024-03-04 and not yet decided."""
    state = start_case(definition, CASE_REF)
    referral = event("ref-1", "referral_received", REFERRAL_DAY)
    return apply_event(definition, state, referral, calendar, london(REFERRAL_DAY)).state


@pytest.fixture(scope="module")
def in_proceedings(definition: Definition, calendar: WorkingCalendar) -> CaseState:
    """A case whose care proceedings were issued on Mon 2024-03-04."""
    state = start_case(definition, CASE_REF)
    issued = event("issue-1", "proceedings_issued", REFERRAL_DAY)
    return apply_event(definition, state, issued, calendar, london(REFERRAL_DAY)).state


def rejections(
    definition: Definition,
    calendar: WorkingCalendar,
    state: CaseState,
    attempt: CaseEvent,
    now: datetime | None = None,
) -> list[Rejection]:
    """Apply an event that must be refused; check that validate_event agrees and nothing moved."""
    now = now or attempt.recorded_at
    before = state.model_dump_json()
    with pytest.raises(EventRejectedError) as validated:
        validate_event(definition, state, attempt, calendar, now)
    with pytest.raises(EventRejectedError) as applied:
        apply_event(definition, state, attempt, calendar, now)
    assert state == CaseState.model_validate_json(before)
    assert state.model_dump_json() == before
    assert applied.value.rejections == validated.value.rejections
    assert applied.value.event_type == attempt.type
    for rejection in applied.value.rejections:
        assert str(rejection) in str(applied.value)
    return applied.value.rejections


def test_unknown_event_type_is_refused_with_the_known_types(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    problems = rejections(definition, calendar, referred, event("x-1", "home_visit", REFERRAL_DAY))
    assert len(problems) == 1
    assert problems[0].field == "type"
    assert problems[0].reason.startswith("unknown event type 'home_visit'; known: ")
    assert "cp_visit" in problems[0].reason


def test_event_not_allowed_in_the_current_stage_names_the_stage_and_the_allowed_ones(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    problems = rejections(
        definition, calendar, referred, event("x-1", "icpc_held", REFERRAL_DAY, "cp_plan")
    )
    assert problems == [
        Rejection(
            field="type",
            reason="icpc_held is not allowed while Child's path is at 'referral'; "
            "it needs one of: s47, conference",
        )
    ]


def test_effective_date_in_the_future_is_refused(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    # Recorded at 16:00 on Mon 4 March for Tue 5 March.
    tomorrow = REFERRAL_DAY + timedelta(days=1)
    attempt = event("x-1", "referral_decision", tomorrow, "assessment").model_copy(
        update={"recorded_at": london(REFERRAL_DAY)}
    )
    problems = rejections(definition, calendar, referred, attempt)
    assert problems == [
        Rejection(
            field="effective_date",
            reason="2024-03-05 is in the future; record events once they have happened",
        )
    ]


def test_effective_time_later_today_is_refused(
    definition: Definition, calendar: WorkingCalendar
) -> None:
    # Police protection "from 18:00" recorded at 15:00 the same day.
    state = start_case(definition, CASE_REF)
    attempt = event(
        "pp-1",
        "police_protection_started",
        REFERRAL_DAY,
        at=london(REFERRAL_DAY, 18),
    )
    problems = rejections(definition, calendar, state, attempt, now=london(REFERRAL_DAY, 15))
    assert problems == [Rejection(field="effective_at", reason="is in the future")]


def test_effective_time_on_another_london_day_than_the_date_is_refused(
    definition: Definition, calendar: WorkingCalendar
) -> None:
    # 23:30 UTC on 3 March 2024 is still 3 March in London (GMT), not the 4th.
    state = start_case(definition, CASE_REF)
    attempt = event(
        "pp-1",
        "police_protection_started",
        REFERRAL_DAY,
        at=datetime(2024, 3, 3, 23, 30, tzinfo=UTC),
    ).model_copy(update={"recorded_at": london(REFERRAL_DAY, 9)})
    problems = rejections(definition, calendar, state, attempt)
    assert problems == [
        Rejection(
            field="effective_at",
            reason="falls on a different day (in Europe/London) from effective_date",
        )
    ]


def test_effective_date_before_the_stage_it_needs_was_entered_is_refused(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    # A decision dated Fri 1 March on a referral received Mon 4 March.
    attempt = event("x-1", "referral_decision", date(2024, 3, 1), "assessment").model_copy(
        update={"recorded_at": london(REFERRAL_DAY)}
    )
    problems = rejections(definition, calendar, referred, attempt)
    assert problems == [
        Rejection(
            field="effective_date",
            reason="2024-03-01 is before Child's path reached 'referral' on 2024-03-04 "
            "(event ref-1)",
        )
    ]


@pytest.mark.parametrize(
    ("outcome", "given"),
    [(None, "none given"), ("maybe_later", "'maybe_later' given")],
    ids=["missing", "unknown"],
)
def test_an_event_with_outcomes_needs_one_of_them(
    definition: Definition,
    calendar: WorkingCalendar,
    referred: CaseState,
    outcome: str | None,
    given: str,
) -> None:
    attempt = event("x-1", "referral_decision", REFERRAL_DAY, outcome)
    problems = rejections(definition, calendar, referred, attempt)
    assert problems == [
        Rejection(
            field="outcome",
            reason="must be one of: no_further_action, early_help, assessment, "
            f"strategy_discussion ({given})",
        )
    ]


def test_an_event_without_outcomes_refuses_one(
    definition: Definition, calendar: WorkingCalendar
) -> None:
    state = start_case(definition, CASE_REF)
    attempt = event("x-1", "referral_received", REFERRAL_DAY, "urgent")
    problems = rejections(definition, calendar, state, attempt)
    assert problems == [Rejection(field="outcome", reason="referral_received has no outcomes")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"reason": "expert_evidence"}, [("data.weeks", "is required")]),
        (
            {"weeks": 4, "reason": "expert_evidence", "judge": "HHJ-1"},
            [("data.judge", "proceedings_extended has no field 'judge'")],
        ),
        ({"weeks": 0, "reason": "expert_evidence"}, [("data.weeks", "must be at least 1")]),
        (
            {"weeks": "four", "reason": "expert_evidence"},
            [("data.weeks", "must be a whole number")],
        ),
        ({"weeks": 4, "reason": 3}, [("data.reason", "must be text")]),
        (
            {"weeks": 4, "reason": "holiday"},
            [
                (
                    "data.reason",
                    "must be one of: expert_evidence, assessment_of_carer, "
                    "parallel_criminal_case, other",
                )
            ],
        ),
    ],
    ids=["missing", "unknown-field", "below-minimum", "not-integer", "not-text", "not-a-choice"],
)
def test_fields_are_checked_against_the_definition(
    definition: Definition,
    calendar: WorkingCalendar,
    in_proceedings: CaseState,
    data: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    attempt = event("x-1", "proceedings_extended", date(2024, 6, 3), data=data)
    problems = rejections(definition, calendar, in_proceedings, attempt)
    assert [(p.field, p.reason) for p in problems] == expected


def test_an_integer_above_its_maximum_names_the_field_and_the_statute(
    definition: Definition, calendar: WorkingCalendar, in_proceedings: CaseState
) -> None:
    attempt = event(
        "x-1", "proceedings_extended", date(2024, 6, 3), data={"weeks": 9, "reason": "other"}
    )
    problems = rejections(definition, calendar, in_proceedings, attempt)
    assert problems == [
        Rejection(field="data.weeks", reason="must be at most 8"),
        Rejection(
            field="data.weeks",
            reason="an extension of Care proceedings completed within 26 weeks of issue may be "
            "at most 8 weeks (Children Act 1989 s32(5) to (8) (extensions of up to 8 weeks, "
            "only if necessary))",
        ),
    ]


def test_an_event_that_needs_a_running_clock_is_refused_without_it(
    definition: Definition, calendar: WorkingCalendar, in_proceedings: CaseState
) -> None:
    # Events alone cannot reach this: the legal track is at "proceedings" only through
    # proceedings_issued, which starts the clock. A state carried over without the clock
    # (imported from the case system, or a definition version without it) can.
    without_clock = in_proceedings.model_copy(update={"clocks": {}})
    attempt = event(
        "x-1", "proceedings_extended", date(2024, 6, 3), data={"weeks": 4, "reason": "other"}
    )
    problems = rejections(definition, calendar, without_clock, attempt)
    assert problems == [
        Rejection(
            field="type",
            reason="proceedings_extended needs 'Care proceedings completed within 26 weeks of "
            "issue' to be running",
        )
    ]


def test_starting_an_hours_clock_needs_the_time(
    definition: Definition, calendar: WorkingCalendar
) -> None:
    state = start_case(definition, CASE_REF)
    attempt = event("pp-1", "police_protection_started", REFERRAL_DAY)
    problems = rejections(definition, calendar, state, attempt)
    assert problems == [
        Rejection(
            field="effective_at",
            reason="police_protection_started starts or stops 'Police protection (72 hours at "
            "most)', counted in hours, so it needs the time it happened, not only the date",
        )
    ]


def test_an_event_id_reused_for_another_type_is_refused(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    attempt = event("ref-1", "significant_harm_concern", REFERRAL_DAY)
    problems = rejections(definition, calendar, referred, attempt)
    assert problems == [
        Rejection(
            field="event_id",
            reason="event id 'ref-1' was already used for a referral_received event; "
            "use a new id for a different event",
        )
    ]


def test_every_problem_is_reported_at_once(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    # Wrong stage, future date and an outcome the event does not have, in one attempt.
    attempt = event("x-1", "cp_visit", REFERRAL_DAY + timedelta(days=2), "seen_alone").model_copy(
        update={"recorded_at": london(REFERRAL_DAY)}
    )
    problems = rejections(definition, calendar, referred, attempt)
    assert [p.field for p in problems] == ["effective_date", "outcome", "type"]


def test_a_repeated_event_id_is_a_no_op(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    # The case system sends the referral again (same id, same content) the next morning.
    again = event("ref-1", "referral_received", REFERRAL_DAY).model_copy(
        update={"recorded_at": london(REFERRAL_DAY + timedelta(days=1), 9)}
    )
    validate_event(definition, referred, again, calendar, again.recorded_at)
    outcome = apply_event(definition, referred, again, calendar, again.recorded_at)
    assert outcome.duplicate is True
    assert outcome.actions == ()
    assert outcome.state == referred


def test_an_event_id_reused_with_a_different_date_is_refused_not_dropped(
    definition: Definition, calendar: WorkingCalendar, referred: CaseState
) -> None:
    # The case system corrects the referral date to Fri 1 March and resends it under the
    # same id. Applying it as a duplicate would silently keep 4 March.
    corrected = event("ref-1", "referral_received", date(2024, 3, 1)).model_copy(
        update={"recorded_at": london(REFERRAL_DAY + timedelta(days=1), 9)}
    )
    problems = rejections(definition, calendar, referred, corrected)
    assert [p.field for p in problems] == ["event_id"]


def test_an_event_dated_before_the_cases_calendar_is_rejected_not_a_crash(
    definition: Definition,
) -> None:
    # A case opened in 2024 carries a calendar from 2023 (cases.calendar_for). A letter
    # before proceedings sent in December 2022, recorded late: its 10-working-day clock
    # cannot be computed, so the event is refused, by validation as by apply_event.
    calendar = build_england_and_wales_calendar(2023, 2032)
    state = start_case(definition, CASE_REF)
    late = event("plo-1", "letter_before_proceedings", date(2022, 12, 20)).model_copy(
        update={"recorded_at": london(REFERRAL_DAY)}
    )
    with pytest.raises(EventRejectedError) as validated:
        validate_event(definition, state, late, calendar, late.recorded_at)
    assert validated.value.rejections[0].field == "effective_date"
    assert "2023 to 2032" in validated.value.rejections[0].reason
    with pytest.raises(EventRejectedError) as caught:
        apply_event(definition, state, late, calendar, late.recorded_at)
    assert caught.value.rejections[0].field == "effective_date"
