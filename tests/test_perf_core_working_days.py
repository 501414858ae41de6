"""The fast working-day arithmetic gives exactly the answers of a walk over every day.

``WorkingCalendar.add_working_days`` counts in weekdays and corrects for closed weekdays
with bisections instead of walking day by day. These properties hold it to a plain
day-by-day reference kept here, over random calendars (bank holidays, one-off days, local
closures, long runs of closed days, weekend holidays) and random starts and offsets in
both directions, including offsets that leave the calendar: the same date, or the same
error naming the same day.
"""

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseclock.calendar import CalendarRangeError, Closure, WorkingCalendar, due_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.units import Counting, Unit

EW = build_england_and_wales_calendar(2000, 2045)


def reference_working_days(calendar: WorkingCalendar) -> Callable[[date], bool]:
    """Whether a day is a working day, read from the calendar's public fields only.

    The calendar's own lookups are private and are what is under test, so the reference
    reads the closure lists it serializes.
    """
    closed = {c.day for c in (*calendar.bank_holidays, *calendar.local_closures)}

    def is_working_day(day: date) -> bool:
        if not calendar.first_year <= day.year <= calendar.last_year:
            raise CalendarRangeError(f"{day.isoformat()} is outside {calendar.calendar_id}")
        return day.weekday() < 5 and day not in closed

    return is_working_day


def reference_add_working_days(calendar: WorkingCalendar, start: date, n: int) -> date:
    """The obvious definition: step a day at a time, counting the working days passed."""
    is_working_day = reference_working_days(calendar)
    is_working_day(start)  # range check on the start itself
    step = timedelta(days=1 if n > 0 else -1)
    current, remaining = start, abs(n)
    while remaining:
        current += step
        if is_working_day(current):
            remaining -= 1
    return current


def reference_due_date(
    calendar: WorkingCalendar, start: date, amount: int, counting: Counting
) -> date:
    """The last day of a period holding ``amount`` working days, counted day by day.

    Day 1 is the start day itself (if it is a working day) when counting "beginning with",
    otherwise the day after.
    """
    is_working_day = reference_working_days(calendar)
    current = start if counting is Counting.START_DAY_IS_DAY_1 else start + timedelta(days=1)
    counted = 0
    while True:
        if is_working_day(current):
            counted += 1
            if counted == amount:
                return current
        current += timedelta(days=1)


def outcome(compute: Callable[[], date]) -> tuple[str, str]:
    """A date, or the error and the day it names (the first one outside the calendar)."""
    try:
        return ("date", compute().isoformat())
    except CalendarRangeError as error:
        return ("outside", str(error).split()[0])


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    """A calendar of one to four years with random bank holidays and local closures.

    Closures come both as scattered days and as runs of consecutive days (a closed
    fortnight at Christmas), so that one weekday step can pass many closed days; the two
    lists may share days, and either may fall at a weekend.
    """
    first_year = draw(st.integers(min_value=2018, max_value=2030))
    last_year = first_year + draw(st.integers(min_value=0, max_value=3))
    days_in_range = st.dates(min_value=date(first_year, 1, 1), max_value=date(last_year, 12, 31))
    bank_holidays = draw(st.sets(days_in_range, max_size=40))
    closures = set(draw(st.sets(days_in_range, max_size=40)))
    for run_start, length in draw(
        st.lists(st.tuples(days_in_range, st.integers(min_value=1, max_value=25)), max_size=4)
    ):
        run = (run_start + timedelta(days=i) for i in range(length))
        closures.update(day for day in run if day.year <= last_year)
    return WorkingCalendar.from_days(
        "test-region",
        "hypothesis",
        first_year,
        last_year,
        [Closure(day=day, name="Bank holiday") for day in bank_holidays],
        local_closures=[Closure(day=day, name="Closed") for day in closures],
    )


@st.composite
def calendar_and_start(draw: st.DrawFn) -> tuple[WorkingCalendar, date]:
    calendar = draw(calendars())
    start = draw(
        st.dates(
            min_value=date(calendar.first_year, 1, 1), max_value=date(calendar.last_year, 12, 31)
        )
    )
    return calendar, start


# Up to about three years of working days either way, so that many draws leave a one-year
# calendar and must fail exactly as the walk does.
offsets = st.integers(min_value=-800, max_value=800)


@settings(max_examples=500)
@given(calendar_and_start(), offsets)
def test_add_working_days_matches_the_day_by_day_walk(
    drawn: tuple[WorkingCalendar, date], n: int
) -> None:
    calendar, start = drawn

    assert outcome(lambda: calendar.add_working_days(start, n)) == outcome(
        lambda: reference_add_working_days(calendar, start, n)
    )


@settings(max_examples=300)
@given(
    calendar_and_start(),
    st.integers(min_value=1, max_value=300),
    st.sampled_from(list(Counting)),
)
def test_working_day_due_dates_match_the_day_by_day_count(
    drawn: tuple[WorkingCalendar, date], amount: int, counting: Counting
) -> None:
    calendar, start = drawn

    assert outcome(
        lambda: due_date(start, amount, Unit.WORKING_DAYS, counting, calendar)
    ) == outcome(lambda: reference_due_date(calendar, start, amount, counting))


@settings(max_examples=300)
@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2045, 12, 31)),
    st.integers(min_value=-1500, max_value=1500),
)
def test_the_england_and_wales_calendar_matches_the_walk(start: date, n: int) -> None:
    # Real bank holidays, one-off days and substitutes, up to the calendar's ends.
    assert outcome(lambda: EW.add_working_days(start, n)) == outcome(
        lambda: reference_add_working_days(EW, start, n)
    )


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2045-12-29", 1, ("outside", "2046-01-01")),  # Friday; walks off the last year
        ("2045-12-29", 0, ("date", "2045-12-29")),
        ("2000-01-04", -2, ("outside", "1999-12-31")),  # 3 January 2000 was a bank holiday
        ("2000-01-04", -1, ("outside", "1999-12-31")),
        ("2000-01-05", -1, ("date", "2000-01-04")),
        ("2045-12-22", 4, ("outside", "2046-01-01")),  # Christmas and Boxing Day in between
        ("2045-12-22", 3, ("date", "2045-12-29")),
    ],
)
def test_the_calendar_edges_give_the_walks_answer(
    start: str, n: int, expected: tuple[str, str]
) -> None:
    day = date.fromisoformat(start)

    assert outcome(lambda: EW.add_working_days(day, n)) == expected
    assert outcome(lambda: reference_add_working_days(EW, day, n)) == expected


def test_a_queried_calendar_still_equals_and_serializes_as_a_fresh_one() -> None:
    # A query caches lookups on the instance, never in its fields: the snapshot that
    # travels in workflow histories, its equality with a copy and its hash are untouched.
    fresh = WorkingCalendar.model_validate_json(EW.model_dump_json())
    fresh.add_working_days(date(2026, 3, 2), 400)
    fresh.add_working_days(date(2026, 3, 2), -400)

    assert fresh == EW
    assert fresh == WorkingCalendar.model_validate_json(EW.model_dump_json())  # never queried
    assert hash(fresh) == hash(EW)
    assert fresh.model_dump_json() == EW.model_dump_json()
    assert set(WorkingCalendar.model_fields) == {
        "calendar_id",
        "region",
        "source",
        "first_year",
        "last_year",
        "bank_holidays",
        "local_closures",
    }
