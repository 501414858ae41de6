"""The England and Wales working-day calendar and all date arithmetic.

Real holiday data throughout: every calendar here is built by
``build_england_and_wales_calendar`` from the installed ``holidays`` library.
"""

import ast
import calendar as stdlib_calendar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

import caseclock.calendar as calendar_module
from caseclock.calendar import (
    LONDON,
    CalendarRangeError,
    Closure,
    WorkingCalendar,
    add_months,
    due_date,
    due_instant_after_hours,
    end_of_day,
    local_date,
    shift_date,
    start_of_day,
)
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.units import Counting, Unit

FIRST_YEAR, LAST_YEAR = 2000, 2045
EW = build_england_and_wales_calendar(FIRST_YEAR, LAST_YEAR)

DATE_UNITS = [Unit.DAYS, Unit.WORKING_DAYS, Unit.WEEKS, Unit.MONTHS]

# Dates kept two years inside the calendar so that walking up to 300 working days (more
# than a year of them) or stepping back a day never leaves it.
inner_dates = st.dates(min_value=date(FIRST_YEAR + 2, 1, 1), max_value=date(LAST_YEAR - 2, 12, 31))


def d(text: str) -> date:
    return date.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def non_working_days(start: date, end: date) -> list[tuple[date, str | None]]:
    """Each non-working day in (start, end] with its reason, for timeline assertions."""
    days = (start + timedelta(days=i) for i in range(1, (end - start).days + 1))
    return [(day, EW.why_not_working(day)) for day in days if not EW.is_working_day(day)]


# --- Known answers: "within N working days of X" (the day after X is day 1) ------------


def test_referral_decision_within_1_working_day_of_friday_is_monday() -> None:
    # Referral received Fri 2020-12-18; the weekend does not count.
    assert due_date(d("2020-12-18"), 1, Unit.WORKING_DAYS, Counting.DAY_AFTER_IS_DAY_1, EW) == d(
        "2020-12-21"
    )


def test_icpc_15_working_days_across_christmas_2020() -> None:
    # Strategy discussion Mon 2020-12-21: ICPC due within 15 working days.
    strategy_discussion = d("2020-12-21")
    icpc_due = due_date(strategy_discussion, 15, Unit.WORKING_DAYS, Counting.DAY_AFTER_IS_DAY_1, EW)

    assert icpc_due == d("2021-01-14")
    assert non_working_days(strategy_discussion, icpc_due) == [
        (d("2020-12-25"), "Christmas Day"),
        (d("2020-12-26"), "Saturday"),  # also Boxing Day, substituted on the Monday
        (d("2020-12-27"), "Sunday"),
        (d("2020-12-28"), "Boxing Day (observed)"),
        (d("2021-01-01"), "New Year's Day"),
        (d("2021-01-02"), "Saturday"),
        (d("2021-01-03"), "Sunday"),
        (d("2021-01-09"), "Saturday"),
        (d("2021-01-10"), "Sunday"),
    ]
    assert EW.working_days_between(strategy_discussion, icpc_due) == 15


def test_15_working_days_across_early_may_and_the_coronation_2023() -> None:
    # Fri 2023-04-28; Mon 2023-05-01 (early May) and Mon 2023-05-08 (Coronation) are skipped.
    start = d("2023-04-28")
    due = due_date(start, 15, Unit.WORKING_DAYS, Counting.DAY_AFTER_IS_DAY_1, EW)

    assert due == d("2023-05-23")
    holidays_skipped = [
        (day, why) for day, why in non_working_days(start, due) if why not in {"Saturday", "Sunday"}
    ]
    assert holidays_skipped == [
        (d("2023-05-01"), "May Day"),
        (d("2023-05-08"), "Coronation of Charles III"),
    ]


@pytest.mark.parametrize(
    ("day", "name"),
    [
        # One-off bank holidays.
        ("2022-06-03", "Platinum Jubilee of Elizabeth II"),
        ("2022-09-19", "State Funeral of Queen Elizabeth II"),
        ("2023-05-08", "Coronation of Charles III"),
        # Substitute days for holidays that fell at a weekend.
        ("2020-12-28", "Boxing Day (observed)"),
        ("2021-12-27", "Christmas Day (observed)"),
        ("2021-12-28", "Boxing Day (observed)"),
        ("2022-01-03", "New Year's Day (observed)"),
        ("2023-01-02", "New Year's Day (observed)"),
    ],
)
def test_one_off_and_substitute_days_are_not_working_days(day: str, name: str) -> None:
    assert not EW.is_working_day(d(day))
    assert EW.why_not_working(d(day)) == name


def test_moved_bank_holidays_leave_the_usual_day_working() -> None:
    # 2020: early May bank holiday moved to Fri 8 May (VE Day 75); Mon 4 May was a working day.
    assert EW.why_not_working(d("2020-05-08")) == "May Day"
    assert EW.is_working_day(d("2020-05-04"))
    # 2022: spring bank holiday moved to Thu 2 June for the Platinum Jubilee weekend.
    assert EW.why_not_working(d("2022-06-02")) == "Spring Bank Holiday"
    assert EW.is_working_day(d("2022-05-30"))


def test_weekend_holidays_are_kept_alongside_their_substitutes() -> None:
    listed = {c.day: c.name for c in EW.bank_holidays}

    assert listed[d("2020-12-26")] == "Boxing Day"  # a Saturday
    assert listed[d("2020-12-28")] == "Boxing Day (observed)"


def test_england_and_wales_share_one_list_of_bank_holidays() -> None:
    # The snapshot is built from subdivision ENG and used for Wales too; if the library ever
    # gives Wales a different day, this fails and the region must be split.
    years = range(FIRST_YEAR, LAST_YEAR + 1)
    england = holidays.country_holidays("GB", subdiv="ENG", years=years, language="en_GB")
    wales = holidays.country_holidays("GB", subdiv="WLS", years=years, language="en_GB")

    assert dict(england) == dict(wales)


# --- why_not_working texts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2026-03-07", "Saturday"),
        ("2026-03-08", "Sunday"),
        ("2026-03-09", None),  # an ordinary Monday
        ("2026-12-25", "Christmas Day"),
        ("2026-12-26", "Saturday"),  # Boxing Day, but the weekend alone makes it non-working
        ("2026-12-28", "Boxing Day (observed)"),
    ],
)
def test_why_not_working_explains_each_kind_of_day(day: str, reason: str | None) -> None:
    assert EW.why_not_working(d(day)) == reason
    assert EW.is_working_day(d(day)) is (reason is None)


# --- Local closure days -------------------------------------------------------------------


def test_local_closure_day_shifts_a_deadline_and_changes_the_calendar_id() -> None:
    # Thu 2026-12-24; then Christmas (Fri), the weekend and Boxing Day observed (Mon 28).
    start = d("2026-12-24")
    assert EW.add_working_days(start, 1) == d("2026-12-29")

    closure = Closure(day=d("2026-12-29"), name="Council offices closed")
    with_closure = build_england_and_wales_calendar(FIRST_YEAR, LAST_YEAR, local_closures=[closure])

    assert with_closure.add_working_days(start, 1) == d("2026-12-30")
    assert with_closure.why_not_working(d("2026-12-29")) == "Local closure: Council offices closed"
    assert with_closure.calendar_id != EW.calendar_id


def test_calendar_id_is_derived_from_content() -> None:
    rebuilt = build_england_and_wales_calendar(FIRST_YEAR, LAST_YEAR)
    renamed_closure = build_england_and_wales_calendar(
        FIRST_YEAR, LAST_YEAR, [Closure(day=d("2026-12-29"), name="Training day")]
    )
    other_closure = build_england_and_wales_calendar(
        FIRST_YEAR, LAST_YEAR, [Closure(day=d("2026-12-29"), name="Council offices closed")]
    )

    assert rebuilt.calendar_id == EW.calendar_id
    assert EW.calendar_id.startswith("england-and-wales:2000-2045:")
    assert len(EW.calendar_id.rsplit(":", 1)[1]) == 12
    assert renamed_closure.calendar_id != other_closure.calendar_id


def test_calendar_id_changes_when_a_bank_holiday_is_added() -> None:
    extra = Closure(day=d("2030-06-03"), name="Hypothetical one-off bank holiday")
    changed = WorkingCalendar.from_days(
        EW.region, EW.source, FIRST_YEAR, LAST_YEAR, [*EW.bank_holidays, extra]
    )

    assert changed.calendar_id != EW.calendar_id
    assert not changed.is_working_day(extra.day)
    assert EW.is_working_day(extra.day)


def test_a_calendar_id_that_does_not_match_its_days_is_refused() -> None:
    tampered = EW.model_dump()
    tampered["bank_holidays"] = tampered["bank_holidays"][1:]

    with pytest.raises(ValidationError, match="does not match its days"):
        WorkingCalendar.model_validate(tampered)


def test_the_same_day_twice_in_one_list_is_refused() -> None:
    closures = [
        Closure(day=d("2026-12-29"), name="Training day"),
        Closure(day=d("2026-12-29"), name="Office move"),
    ]

    with pytest.raises(ValidationError, match="2026-12-29 is listed twice"):
        WorkingCalendar.from_days("test", "test", 2026, 2026, [], local_closures=closures)


def test_local_closure_outside_the_years_is_refused() -> None:
    closure = Closure(day=d("2031-01-02"), name="Office move")

    with pytest.raises(ValueError, match=r"within 2026-2030; outside the range: 2031-01-02"):
        build_england_and_wales_calendar(2026, 2030, [closure])


def test_snapshot_survives_the_temporal_pydantic_data_converter() -> None:
    # The calendar travels as workflow input, so it must round-trip exactly.
    converter = pydantic_data_converter.payload_converter
    with_closure = build_england_and_wales_calendar(
        2020, 2030, [Closure(day=d("2026-12-29"), name="Council offices closed")]
    )

    [restored] = converter.from_payloads(converter.to_payloads([with_closure]), [WorkingCalendar])

    assert restored == with_closure
    assert restored.add_working_days(d("2026-12-24"), 1) == d("2026-12-30")


def test_calendar_module_imports_nothing_impure() -> None:
    # It runs inside workflow code: no holidays library, no I/O modules.
    tree = ast.parse(Path(calendar_module.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }

    assert imported <= {
        "__future__",
        "bisect",
        "caseclock",
        "collections",
        "datetime",
        "functools",
        "hashlib",
        "itertools",
        "json",
        "pydantic",
        "typing",
        "zoneinfo",
    }


# --- add_working_days and working_days_between ----------------------------------------


def test_zero_working_days_leaves_the_date_unchanged_even_at_a_weekend() -> None:
    assert EW.add_working_days(d("2026-03-08"), 0) == d("2026-03-08")  # a Sunday


def test_counting_back_skips_new_year_and_the_weekend() -> None:
    # Mon 2021-01-04 back one working day: Sun 3, Sat 2, Fri 1 (New Year's Day) -> Thu 31 Dec.
    assert EW.add_working_days(d("2021-01-04"), -1) == d("2020-12-31")


def test_working_days_between_is_signed_and_half_open() -> None:
    assert EW.working_days_between(d("2020-12-21"), d("2021-01-14")) == 15
    assert EW.working_days_between(d("2021-01-14"), d("2020-12-21")) == -15
    assert EW.working_days_between(d("2026-03-09"), d("2026-03-09")) == 0
    # (Fri, Sat]: the Friday itself is not counted.
    assert EW.working_days_between(d("2026-03-06"), d("2026-03-07")) == 0


# --- Months -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2024-01-31", 1, "2024-02-29"),  # leap year
        ("2025-11-30", 3, "2026-02-28"),  # across a year end into a short February
        ("2024-02-29", 12, "2025-02-28"),
        ("2026-03-31", -1, "2026-02-28"),
        ("2026-01-15", -13, "2024-12-15"),
        ("2026-05-31", 0, "2026-05-31"),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(
    start: str, months: int, expected: str
) -> None:
    assert add_months(d(start), months) == d(expected)


def test_review_3_months_after_30_november_falls_on_28_february() -> None:
    assert due_date(d("2025-11-30"), 3, Unit.MONTHS, Counting.DAY_AFTER_IS_DAY_1, EW) == d(
        "2026-02-28"
    )


# --- "Beginning with" X: the day of X is day 1 ---------------------------------------------


def test_care_proceedings_26_weeks_beginning_with_issue_end_on_a_sunday() -> None:
    # Application issued Mon 2026-01-05 (Children Act 1989 s32).
    assert due_date(d("2026-01-05"), 26, Unit.WEEKS, Counting.START_DAY_IS_DAY_1, EW) == d(
        "2026-07-05"
    )


def test_epo_8_days_beginning_with_the_order() -> None:
    # EPO made 2026-03-02 (s45): day 1 is 2 March, day 8 is 9 March.
    assert due_date(d("2026-03-02"), 8, Unit.DAYS, Counting.START_DAY_IS_DAY_1, EW) == d(
        "2026-03-09"
    )


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-01-15", "2026-02-14"),  # the day before the corresponding date
        ("2026-03-01", "2026-03-31"),
        ("2026-01-31", "2026-02-28"),  # no 31 February: the period ends at the month end
        ("2026-01-28", "2026-02-27"),
        ("2024-01-30", "2024-02-29"),
    ],
)
def test_one_month_beginning_with_a_day(start: str, expected: str) -> None:
    assert due_date(d(start), 1, Unit.MONTHS, Counting.START_DAY_IS_DAY_1, EW) == d(expected)


def test_working_days_beginning_with_a_working_day_count_that_day() -> None:
    # Mon 2026-03-09 is itself day 1.
    start = d("2026-03-09")
    assert due_date(start, 1, Unit.WORKING_DAYS, Counting.START_DAY_IS_DAY_1, EW) == start
    assert due_date(start, 5, Unit.WORKING_DAYS, Counting.START_DAY_IS_DAY_1, EW) == d("2026-03-13")


def test_working_days_beginning_with_a_non_working_day_start_on_the_next_working_day() -> None:
    # Fri 2026-12-25: day 1 is Tue 29 December (after Boxing Day observed on Mon 28).
    assert due_date(d("2026-12-25"), 1, Unit.WORKING_DAYS, Counting.START_DAY_IS_DAY_1, EW) == d(
        "2026-12-29"
    )


# --- Instants: end of day and hours across clock changes ------------------------------------


@pytest.mark.parametrize(
    ("day", "deadline"),
    [
        ("2026-03-28", "2026-03-29T00:00"),  # Saturday, still GMT at midnight
        ("2026-03-29", "2026-03-29T23:00"),  # clocks went forward at 01:00 GMT that day
        ("2026-10-24", "2026-10-24T23:00"),  # Saturday, still BST at midnight
        ("2026-10-25", "2026-10-26T00:00"),  # clocks went back at 01:00 GMT that day
    ],
)
def test_end_of_day_is_london_midnight_across_clock_changes(day: str, deadline: str) -> None:
    instant = end_of_day(d(day))

    assert instant == utc(deadline)
    assert instant.tzinfo is UTC


def test_start_of_day_is_london_midnight_in_utc() -> None:
    assert start_of_day(d("2026-07-01")) == utc("2026-06-30T23:00")
    assert start_of_day(d("2026-01-01")) == utc("2026-01-01T00:00")
    assert start_of_day(d("2026-01-01")).tzinfo is UTC


def test_local_date_reads_the_london_calendar() -> None:
    assert local_date(utc("2026-07-01T23:30")) == d("2026-07-02")  # 00:30 BST
    assert local_date(utc("2026-01-01T23:30")) == d("2026-01-01")  # 23:30 GMT


def test_local_date_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(datetime(2026, 7, 1, 12, 0))  # noqa: DTZ001 - the naive value is the point


def test_police_protection_72_hours_across_the_spring_clock_change() -> None:
    taken = utc("2026-03-28T12:00")
    assert due_instant_after_hours(taken, 72) == utc("2026-03-31T12:00")
    # The same instant given in London time: elapsed hours, not wall-clock hours.
    taken_london = datetime(2026, 3, 28, 12, 0, tzinfo=LONDON)
    assert due_instant_after_hours(taken_london, 72) == utc("2026-03-31T12:00")


def test_72_hours_across_the_autumn_clock_change() -> None:
    taken_london = datetime(2026, 10, 24, 12, 0, tzinfo=LONDON)  # 11:00Z, BST
    assert due_instant_after_hours(taken_london, 72) == utc("2026-10-27T11:00")


def test_due_instant_after_hours_rejects_naive_datetimes_and_empty_periods() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_instant_after_hours(datetime(2026, 3, 28, 12, 0), 72)  # noqa: DTZ001
    with pytest.raises(ValueError, match="at least 1 hour"):
        due_instant_after_hours(utc("2026-03-28T12:00"), 0)


# --- Errors -------------------------------------------------------------------------------


def test_dates_outside_the_calendar_raise_instead_of_guessing() -> None:
    assert issubclass(CalendarRangeError, ValueError)
    with pytest.raises(CalendarRangeError, match="1999-12-31 is outside calendar"):
        EW.is_working_day(d("1999-12-31"))
    with pytest.raises(CalendarRangeError, match="2046-01-01"):
        EW.add_working_days(d("2045-12-29"), 1)  # Fri -> walks into 2046
    with pytest.raises(CalendarRangeError):
        EW.working_days_between(d("2045-12-01"), d("2046-01-31"))
    with pytest.raises(CalendarRangeError):
        due_date(d("2046-01-05"), 10, Unit.WORKING_DAYS, Counting.DAY_AFTER_IS_DAY_1, EW)
    with pytest.raises(CalendarRangeError):
        EW.why_not_working(d("1999-12-25"))


def test_hours_are_not_a_date_unit() -> None:
    with pytest.raises(ValueError, match="due_instant_after_hours"):
        shift_date(d("2026-03-02"), 72, Unit.HOURS, EW)
    with pytest.raises(ValueError, match="due_instant_after_hours"):
        due_date(d("2026-03-02"), 72, Unit.HOURS, Counting.DAY_AFTER_IS_DAY_1, EW)


@pytest.mark.parametrize("amount", [0, -1])
def test_due_date_needs_a_period_of_at_least_one_unit(amount: int) -> None:
    with pytest.raises(ValueError, match="at least 1 unit"):
        due_date(d("2026-03-02"), amount, Unit.DAYS, Counting.DAY_AFTER_IS_DAY_1, EW)


def test_a_datetime_is_not_accepted_as_a_date() -> None:
    # datetime subclasses date; silently taking its date part could pick the wrong London day.
    with pytest.raises(TypeError, match="must be a date, not a datetime"):
        EW.is_working_day(utc("2026-03-02T23:30"))
    with pytest.raises(TypeError, match="must be a date, not a datetime"):
        end_of_day(utc("2026-03-02T23:30"))


# --- shift_date with any sign ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "unit", "expected"),
    [
        (10, Unit.DAYS, "2026-03-12"),
        (-10, Unit.DAYS, "2026-02-20"),
        (2, Unit.WEEKS, "2026-03-16"),
        (-2, Unit.WEEKS, "2026-02-16"),
        (5, Unit.WORKING_DAYS, "2026-03-09"),
        (-5, Unit.WORKING_DAYS, "2026-02-23"),
        (1, Unit.MONTHS, "2026-04-02"),
        (-1, Unit.MONTHS, "2026-02-02"),
    ],
)
def test_shift_date_moves_either_way(amount: int, unit: Unit, expected: str) -> None:
    assert shift_date(d("2026-03-02"), amount, unit, EW) == d(expected)


# --- Properties ------------------------------------------------------------------------------


def earliest_working_day_on_or_after(day: date) -> date:
    while not EW.is_working_day(day):
        day += timedelta(days=1)
    return day


def latest_working_day_on_or_before(day: date) -> date:
    while not EW.is_working_day(day):
        day -= timedelta(days=1)
    return day


@given(inner_dates, st.integers(min_value=1, max_value=300))
def test_nth_working_day_after_is_the_first_day_reaching_n(start: date, n: int) -> None:
    result = EW.add_working_days(start, n)

    assert result > start
    assert EW.is_working_day(result)
    assert EW.working_days_between(start, result) == n
    # Minimal: the day before has only n - 1 working days since start.
    assert EW.working_days_between(start, result - timedelta(days=1)) == n - 1


@given(inner_dates, st.integers(min_value=1, max_value=300))
def test_nth_working_day_before_mirrors_after(start: date, n: int) -> None:
    result = EW.add_working_days(start, -n)

    assert result < start
    assert EW.is_working_day(result)
    assert EW.working_days_between(start, result) == -n + (0 if EW.is_working_day(start) else 1)


@given(inner_dates, st.integers(min_value=1, max_value=300))
def test_there_and_back_lands_on_the_nearest_working_day(start: date, n: int) -> None:
    # Forward n then back n returns to the latest working day on or before start (start
    # itself when it is a working day); back then forward, to the earliest on or after.
    assert EW.add_working_days(EW.add_working_days(start, n), -n) == (
        latest_working_day_on_or_before(start)
    )
    assert EW.add_working_days(EW.add_working_days(start, -n), n) == (
        earliest_working_day_on_or_after(start)
    )


@given(inner_dates, st.integers(min_value=-120, max_value=120))
def test_working_days_between_matches_a_day_by_day_count(start: date, offset: int) -> None:
    end = start + timedelta(days=offset)
    low, high = min(start, end), max(start, end)
    counted = sum(
        EW.is_working_day(low + timedelta(days=i)) for i in range(1, (high - low).days + 1)
    )

    assert EW.working_days_between(start, end) == (counted if end >= start else -counted)


@given(inner_dates, inner_dates, inner_dates)
def test_working_days_between_is_additive(a: date, b: date, c: date) -> None:
    assert EW.working_days_between(a, b) + EW.working_days_between(b, c) == (
        EW.working_days_between(a, c)
    )


@given(
    inner_dates,
    st.sampled_from(DATE_UNITS),
    st.sampled_from(list(Counting)),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=60),
)
def test_due_date_is_strictly_increasing_in_amount(
    start: date, unit: Unit, counting: Counting, smaller: int, larger: int
) -> None:
    smaller, larger = min(smaller, larger), max(smaller, larger)
    first = due_date(start, smaller, unit, counting, EW)
    second = due_date(start, larger, unit, counting, EW)

    assert first <= second
    assert (first < second) is (smaller < larger)


@given(inner_dates, st.sampled_from(DATE_UNITS), st.integers(min_value=1, max_value=60))
def test_due_date_never_precedes_the_start(start: date, unit: Unit, amount: int) -> None:
    assert due_date(start, amount, unit, Counting.DAY_AFTER_IS_DAY_1, EW) > start
    assert due_date(start, amount, unit, Counting.START_DAY_IS_DAY_1, EW) >= start


@given(inner_dates, st.integers(min_value=1, max_value=120))
def test_working_days_beginning_with_x_hold_exactly_n_working_days(start: date, n: int) -> None:
    # The period [start, due] contains exactly n working days and ends on one.
    due = due_date(start, n, Unit.WORKING_DAYS, Counting.START_DAY_IS_DAY_1, EW)

    assert EW.is_working_day(due)
    assert EW.working_days_between(start - timedelta(days=1), due) == n


@given(inner_dates, st.integers(min_value=1, max_value=400))
def test_days_and_weeks_beginning_with_x_end_the_day_before_x_plus_n(start: date, n: int) -> None:
    assert due_date(start, n, Unit.DAYS, Counting.START_DAY_IS_DAY_1, EW) == start + timedelta(
        days=n - 1
    )
    assert due_date(start, n, Unit.WEEKS, Counting.START_DAY_IS_DAY_1, EW) == start + timedelta(
        weeks=n, days=-1
    )


@given(inner_dates, st.integers(min_value=1, max_value=36))
def test_months_beginning_with_x_end_before_the_corresponding_date(start: date, n: int) -> None:
    due = due_date(start, n, Unit.MONTHS, Counting.START_DAY_IS_DAY_1, EW)
    year, month_index = divmod(start.year * 12 + start.month - 1 + n, 12)
    month_length = stdlib_calendar.monthrange(year, month_index + 1)[1]

    if start.day <= month_length:
        assert due == date(year, month_index + 1, start.day) - timedelta(days=1)
    else:
        assert due == date(year, month_index + 1, month_length)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
    st.integers(min_value=-1200, max_value=1200),
)
def test_add_months_lands_in_the_right_month_on_a_clamped_day(start: date, n: int) -> None:
    result = add_months(start, n)
    months_moved = (result.year - start.year) * 12 + (result.month - start.month)
    month_length = stdlib_calendar.monthrange(result.year, result.month)[1]

    assert months_moved == n
    assert result.day == min(start.day, month_length)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 28)).filter(
        lambda day: day.day <= 28
    ),
    st.integers(min_value=-1200, max_value=1200),
)
def test_add_months_is_reversible_when_no_clamping_happens(start: date, n: int) -> None:
    assert add_months(add_months(start, n), -n) == start


@given(st.dates(min_value=date(1996, 1, 1), max_value=date(2100, 12, 31)))
def test_each_london_day_runs_from_start_of_day_to_end_of_day(day: date) -> None:
    start, end = start_of_day(day), end_of_day(day)

    assert end == start_of_day(day + timedelta(days=1))
    assert local_date(start) == day
    assert local_date(end - timedelta(microseconds=1)) == day
    assert local_date(end) == day + timedelta(days=1)
    # Since 1996 only the last Sundays of March and October are 23 or 25 hours long.
    length = end - start
    assert length in {timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)}
    if length != timedelta(hours=24):
        assert day.weekday() == 6
        assert day.month in {3, 10}
        assert (day + timedelta(weeks=1)).month != day.month


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2045, 12, 31),  # noqa: DTZ001
        timezones=st.just(LONDON),
    ),
    st.integers(min_value=1, max_value=24 * 400),
)
def test_hours_are_elapsed_time_whatever_the_zone(start: datetime, hours: int) -> None:
    due = due_instant_after_hours(start, hours)

    assert due.tzinfo is UTC
    assert due - start == timedelta(hours=hours)
