"""Working-day calendar and date arithmetic for statutory clocks (England and Wales).

This module is workflow code: it runs inside Temporal workflows, so it must be
deterministic. It does no I/O, never reads the clock and never imports the ``holidays``
library. The non-working days arrive as a :class:`WorkingCalendar` snapshot that travels
with the case as workflow input (built outside the workflow by
``caseclock.calendar_source``), so a replay months later computes the same dates even if
the holiday data has since changed.

Two kinds of time are kept apart on purpose:

* **Dates** (``datetime.date``) for days, working days, weeks and months. A deadline date
  means "by the end of that day in England".
* **Instants** (aware ``datetime`` in UTC) for the deadline moment itself
  (:func:`end_of_day`) and for periods in hours (:func:`due_instant_after_hours`).
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator, model_validator

from caseclock.interning import ContentCache, shared_by_content
from caseclock.units import Counting, Unit

LONDON = ZoneInfo("Europe/London")
"""The time zone every statutory day in England and Wales is reckoned in."""

# Fixed English names: strftime("%A") depends on the process locale, and an explanation
# shown to a social worker must not change with the server it was computed on.
_WEEKEND_NAMES = {5: "Saturday", 6: "Sunday"}

# Hex digits of the content digest kept in ``calendar_id``: 48 bits is ample to tell
# calendar versions apart while staying short enough to read in a log line.
_ID_DIGEST_LENGTH = 12


class CalendarRangeError(ValueError):
    """A date falls outside the years a calendar snapshot covers.

    Raised rather than guessing: a year with unknown bank holidays would give plausible but
    possibly wrong working-day deadlines.
    """


class Closure(BaseModel, frozen=True):
    """One named non-working day: a bank holiday or a local authority closure day."""

    day: date
    name: str = Field(min_length=1)


def _content_digest(
    first_year: int,
    last_year: int,
    bank_holidays: Iterable[Closure],
    local_closures: Iterable[Closure],
) -> str:
    """Hash every non-working day, with its kind and name, in a canonical order.

    JSON (rather than joined strings) keeps the encoding unambiguous whatever characters a
    closure name contains; the kind is included so that moving a day from one list to the
    other also changes the id.
    """
    rows = sorted(
        [["bank_holiday", c.day.isoformat(), c.name] for c in bank_holidays]
        + [["local_closure", c.day.isoformat(), c.name] for c in local_closures]
    )
    payload = json.dumps([first_year, last_year, rows], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:_ID_DIGEST_LENGTH]


def _require_date(d: date, what: str = "date") -> None:
    """Reject a ``datetime`` passed where a calendar date is expected.

    ``datetime`` is a subclass of ``date``, so without this check an instant (often in UTC)
    would silently be treated as its own date part, which can be the wrong London day.
    """
    if isinstance(d, datetime):
        raise TypeError(f"{what} must be a date, not a datetime: {d!r}")


def _require_aware(instant: datetime, what: str = "instant") -> None:
    """Reject naive datetimes: an instant without a zone is ambiguous by up to an hour."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive datetime {instant!r}")


def _weekdays_up_to(ordinal: int) -> int:
    """Count Mondays to Fridays from 0001-01-01 (ordinal 1, a Monday) to ``ordinal`` inclusive."""
    full_weeks, extra_days = divmod(ordinal, 7)
    return 5 * full_weeks + min(extra_days, 5)


def _weekday_numbered(count: int) -> int:
    """The ordinal of the ``count``-th Monday-to-Friday day from 0001-01-01.

    The inverse of :func:`_weekdays_up_to` on weekdays: five weekdays to every seven days.
    """
    full_weeks, extra_days = divmod(count - 1, 5)
    return 7 * full_weeks + extra_days + 1


class WorkingCalendar(BaseModel, frozen=True):
    """A replay-safe snapshot of the non-working days for one region and range of years.

    Build it with :meth:`from_days` (which derives ``calendar_id`` from the content) outside
    workflow code and pass it in as workflow input. Every lookup outside
    ``first_year``..``last_year`` raises :class:`CalendarRangeError`.

    Attributes:
        calendar_id: ``"<region>:<first_year>-<last_year>:<digest>"`` where the digest covers
            every bank holiday and local closure (date, name and kind). Any change to a
            non-working day gives a new id, so a deadline can name the exact calendar it was
            computed with.
        region: For example ``"england-and-wales"``.
        source: Where the bank holidays came from, with the data version.
        first_year: First calendar year covered (inclusive).
        last_year: Last calendar year covered (inclusive).
        bank_holidays: Public holidays, sorted by date.
        local_closures: Days the authority itself is closed, sorted by date.

    """

    calendar_id: str
    region: str = Field(min_length=1)
    source: str
    first_year: int
    last_year: int
    bank_holidays: tuple[Closure, ...]
    local_closures: tuple[Closure, ...] = ()

    @field_validator("bank_holidays", "local_closures", mode="after")
    @classmethod
    def _sorted_and_unique(cls, closures: tuple[Closure, ...]) -> tuple[Closure, ...]:
        """Store closures in date order and refuse two entries for the same day."""
        ordered = tuple(sorted(closures, key=lambda c: (c.day, c.name)))
        for earlier, later in pairwise(ordered):
            if earlier.day == later.day:
                raise ValueError(
                    f"{earlier.day.isoformat()} is listed twice "
                    f"({earlier.name!r} and {later.name!r}); merge them into one entry"
                )
        return ordered

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Check the range, that every day lies in it, and that the id matches the days."""
        if self.first_year > self.last_year:
            raise ValueError(f"first_year {self.first_year} is after last_year {self.last_year}")
        outside = [
            c.day.isoformat()
            for c in (*self.bank_holidays, *self.local_closures)
            if not self.first_year <= c.day.year <= self.last_year
        ]
        if outside:
            raise ValueError(
                f"days outside {self.first_year}-{self.last_year}: {', '.join(outside)}"
            )
        expected = self._expected_id(
            self.region, self.first_year, self.last_year, self.bank_holidays, self.local_closures
        )
        if self.calendar_id != expected:
            # A snapshot whose id does not describe its days would make audit trails lie
            # about which calendar produced a deadline.
            raise ValueError(
                f"calendar_id {self.calendar_id!r} does not match its days (expected "
                f"{expected!r}); build calendars with WorkingCalendar.from_days"
            )
        return self

    # Derived lookups, built on first use from the validated closures. They are cached
    # properties, not pydantic private attributes: they live in the instance __dict__,
    # which model_dump, JSON and ``==`` ignore (only fields count), so a queried calendar
    # still serializes and compares like a fresh one; and reading them is a plain
    # attribute lookup, where a private attribute goes through BaseModel.__getattr__ at
    # several microseconds a read, which was most of the cost of a working-day query.

    @cached_property
    def _reasons(self) -> dict[date, str]:
        """Every non-working day listed (weekends aside), with the reason shown for it."""
        reasons = {c.day: f"Local closure: {c.name}" for c in self.local_closures}
        # Bank holiday names win when a local closure falls on the same day: the national
        # reason is the one a reader expects to see.
        reasons.update({c.day: c.name for c in self.bank_holidays})
        return reasons

    @cached_property
    def _closed_weekdays(self) -> tuple[date, ...]:
        """The listed days that fall Monday to Friday, sorted.

        Sorted so that working_days_between and add_working_days can count the closed
        weekdays in any stretch of days with two bisections.
        """
        return tuple(sorted(d for d in self._reasons if d.weekday() < 5))

    @staticmethod
    def _expected_id(
        region: str,
        first_year: int,
        last_year: int,
        bank_holidays: Iterable[Closure],
        local_closures: Iterable[Closure],
    ) -> str:
        digest = _content_digest(first_year, last_year, bank_holidays, local_closures)
        return f"{region}:{first_year}-{last_year}:{digest}"

    @classmethod
    def from_days(
        cls,
        region: str,
        source: str,
        first_year: int,
        last_year: int,
        bank_holidays: Iterable[Closure],
        *,
        local_closures: Iterable[Closure] = (),
    ) -> WorkingCalendar:
        """Build a calendar, deriving ``calendar_id`` from its content.

        Args:
            region: Region slug, for example ``"england-and-wales"``.
            source: Where the bank holidays came from, including the data version.
            first_year: First year covered (inclusive).
            last_year: Last year covered (inclusive).
            bank_holidays: Public holidays in the range, in any order.
            local_closures: The authority's own closure days in the range, in any order.

        Returns:
            The validated snapshot.

        Raises:
            pydantic.ValidationError: If a day lies outside the range, a date is listed
                twice in one list, or ``first_year > last_year``.

        """
        holidays = tuple(bank_holidays)
        closures = tuple(local_closures)
        return cls(
            calendar_id=cls._expected_id(region, first_year, last_year, holidays, closures),
            region=region,
            source=source,
            first_year=first_year,
            last_year=last_year,
            bank_holidays=holidays,
            local_closures=closures,
        )

    def _check_in_range(self, d: date) -> None:
        _require_date(d)
        if not self.first_year <= d.year <= self.last_year:
            raise self._range_error(d)

    def _range_error(self, d: date) -> CalendarRangeError:
        return CalendarRangeError(
            f"{d.isoformat()} is outside calendar {self.calendar_id}, which covers "
            f"{self.first_year}-{self.last_year}; build a calendar covering that year"
        )

    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` is Monday to Friday and neither a bank holiday nor a closure day.

        Raises:
            CalendarRangeError: If ``d`` is outside the calendar's years.

        """
        self._check_in_range(d)
        return d.weekday() < 5 and d not in self._reasons

    def why_not_working(self, d: date) -> str | None:
        """Explain why ``d`` is not a working day, or return ``None`` if it is one.

        Returns:
            ``"Saturday"`` or ``"Sunday"`` for weekends (even when a holiday also falls
            there, since the weekend alone makes it non-working), the holiday's name for a
            bank holiday, ``"Local closure: <name>"`` for a local closure day, else ``None``.

        Raises:
            CalendarRangeError: If ``d`` is outside the calendar's years.

        """
        self._check_in_range(d)
        weekend = _WEEKEND_NAMES.get(d.weekday())
        if weekend is not None:
            return weekend
        return self._reasons.get(d)

    def add_working_days(self, d: date, n: int) -> date:
        """Move ``n`` working days from ``d``.

        ``d`` itself is never counted, whether or not it is a working day.

        Args:
            d: The day to count from.
            n: Positive: the ``n``-th working day strictly after ``d``. Negative: the
                ``|n|``-th working day strictly before ``d``. Zero: ``d`` unchanged.

        Returns:
            The working day reached (``d`` itself when ``n == 0``).

        Raises:
            CalendarRangeError: If ``d`` or any day walked over is outside the calendar.

        """
        self._check_in_range(d)
        # Count in weekdays, which is plain arithmetic, then make up for the closed weekdays
        # (bank holidays and closures) stepped over: each one did not count, so step on by
        # that many more weekdays, until a step passes no closed day. Bank holidays are
        # sparse, so this takes one or two steps instead of a walk over every day, and it
        # needs no table of working days: a calendar costs no more memory per cached case.
        closed = self._closed_weekdays
        current, remaining = d, n
        while remaining > 0:
            reached = self._weekdays_after(current, remaining)
            remaining = bisect_right(closed, reached) - bisect_right(closed, current)
            current = reached
        while remaining < 0:
            reached = self._weekdays_before(current, -remaining)
            remaining = bisect_left(closed, reached) - bisect_left(closed, current)
            current = reached
        return current

    def _weekdays_after(self, d: date, k: int) -> date:
        """The ``k``-th Monday-to-Friday day strictly after ``d``, closures ignored.

        Raises:
            CalendarRangeError: Naming the first day after the calendar's last, the day a
                walk forward would have stopped at.

        """
        ordinal = _weekday_numbered(_weekdays_up_to(d.toordinal()) + k)
        last = date(self.last_year, 12, 31)
        if ordinal > last.toordinal():
            raise self._range_error(last + timedelta(days=1))
        return date.fromordinal(ordinal)

    def _weekdays_before(self, d: date, k: int) -> date:
        """The ``k``-th Monday-to-Friday day strictly before ``d``, closures ignored.

        Raises:
            CalendarRangeError: Naming the day before the calendar's first, the day a walk
                backward would have stopped at.

        """
        # The weekdays up to the day before d, so that d itself never counts.
        ordinal = _weekday_numbered(_weekdays_up_to(d.toordinal() - 1) - k + 1)
        first = date(self.first_year, 1, 1)
        if ordinal < first.toordinal():
            raise self._range_error(first - timedelta(days=1))
        return date.fromordinal(ordinal)

    def working_days_between(self, start: date, end: date) -> int:
        """Count working days in the half-open interval ``(start, end]``.

        This is the inverse of :meth:`add_working_days`:
        ``working_days_between(d, add_working_days(d, n)) == n`` for ``n > 0``. It counts
        arithmetically rather than by walking days, which also makes it an independent
        check on :meth:`add_working_days` in the tests.

        Returns:
            The count, or minus the count of working days in ``(end, start]`` when
            ``end < start``.

        Raises:
            CalendarRangeError: If ``start`` or ``end`` is outside the calendar.

        """
        self._check_in_range(start)
        self._check_in_range(end)
        if end < start:
            return -self.working_days_between(end, start)
        weekdays = _weekdays_up_to(end.toordinal()) - _weekdays_up_to(start.toordinal())
        closed = self._closed_weekdays
        return weekdays - (bisect_right(closed, end) - bisect_right(closed, start))


def _days_in_month(year: int, month: int) -> int:
    """Length of a month; the stdlib ``calendar`` module is avoided to keep this one unambiguous."""
    first_of_next = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return (first_of_next - date(year, month, 1)).days


def add_months(d: date, n: int) -> date:
    """Add ``n`` calendar months (any sign), clamping to the end of a shorter month.

    2026-01-31 + 1 month is 2026-02-28; 2024-01-31 + 1 month is 2024-02-29. This is the
    common-law corresponding-date rule for a period of months *from* a day: the same day
    number in the target month, or that month's last day if it has no such day.
    """
    _require_date(d)
    year, month_index = divmod(d.year * 12 + (d.month - 1) + n, 12)
    month = month_index + 1
    return date(year, month, min(d.day, _days_in_month(year, month)))


def start_of_day(d: date) -> datetime:
    """Return the instant London's day ``d`` begins (local midnight) as an aware UTC time."""
    _require_date(d)
    # UK clocks change at 01:00 UTC, so local midnight always exists and is unambiguous.
    return datetime.combine(d, time(0), tzinfo=LONDON).astimezone(UTC)


def end_of_day(d: date) -> datetime:
    """Return the deadline instant for a due date: the start of the next London day, in UTC.

    A deadline "on day d" is met by anything before local midnight ending d, so it is
    23:00Z during British Summer Time and 00:00Z otherwise. Computing it as the start of
    the next local day (not as ``d`` 23:59:59) leaves no gap and is right on the days the
    clocks change.
    """
    _require_date(d)
    return start_of_day(d + timedelta(days=1))


def local_date(instant: datetime) -> date:
    """Return the Europe/London calendar date of an aware instant.

    Raises:
        ValueError: If ``instant`` is naive.

    """
    _require_aware(instant)
    return instant.astimezone(LONDON).date()


def shift_date(d: date, amount: int, unit: Unit, calendar: WorkingCalendar) -> date:
    """Move ``amount`` units (any sign) from ``d``; the calendar is used only for working days.

    Args:
        d: The date to move from.
        amount: How many units; negative moves backwards.
        unit: DAYS, WORKING_DAYS, WEEKS or MONTHS.
        calendar: The non-working days, consulted only for WORKING_DAYS.

    Returns:
        The date reached.

    Raises:
        ValueError: For HOURS, which measure instants, not dates
            (use :func:`due_instant_after_hours`).
        CalendarRangeError: For WORKING_DAYS outside the calendar's years.

    """
    _require_date(d)
    match unit:
        case Unit.DAYS:
            return d + timedelta(days=amount)
        case Unit.WEEKS:
            return d + timedelta(weeks=amount)
        case Unit.MONTHS:
            return add_months(d, amount)
        case Unit.WORKING_DAYS:
            return calendar.add_working_days(d, amount)
        case Unit.HOURS:
            raise ValueError(
                "hours are measured between instants, not dates; use due_instant_after_hours"
            )
    raise ValueError(f"unknown unit {unit!r}")  # pragma: no cover - exhaustive match


def _last_day_of_months_beginning_with(start: date, months: int) -> date:
    """Last day of a period of ``months`` calendar months beginning with (including) ``start``.

    The period ends on the day before the corresponding date in the target month or, if
    that month has no corresponding date, on its last day (the common-law rule as stated in
    Halsbury's Laws, written out e.g. in SI 2018/1082 r1.4(2)(a)). This is *not* simply
    ``add_months(start, months) - 1 day``: one month beginning with 31 January 2026 ends on
    28 February, whereas clamping first and then stepping back would give 27 February.
    """
    target = add_months(start, months)
    if target.day < start.day:
        # No corresponding date: add_months clamped to the month end, which is the answer.
        return target
    return target - timedelta(days=1)


def due_date(
    start: date, amount: int, unit: Unit, counting: Counting, calendar: WorkingCalendar
) -> date:
    """Return the last day of a statutory period (the deadline is the end of that day).

    Args:
        start: The day of the event the period runs from (X).
        amount: Length of the period; at least 1.
        unit: DAYS, WORKING_DAYS, WEEKS or MONTHS.
        counting: Which day is day 1, see :class:`caseclock.units.Counting`.
            ``DAY_AFTER_IS_DAY_1`` ("within N units *of* X"): X + N units.
            ``START_DAY_IS_DAY_1`` ("within N units *beginning with* X"): X is day 1, so
            for days and weeks the period ends the day before X + N units; for months
            it ends the day before the corresponding date, or at the end of a target month
            that has no corresponding date; for working days X is day 1 only if it is a
            working day (then the result is the (N-1)-th working day after X, so N = 1
            gives X itself), otherwise the N-th working day after X.
        calendar: The non-working days, consulted only for WORKING_DAYS.

    Returns:
        The due date.

    Raises:
        ValueError: If ``amount < 1`` or ``unit`` is HOURS.
        CalendarRangeError: For WORKING_DAYS outside the calendar's years.

    """
    _require_date(start, "start")
    if amount < 1:
        raise ValueError(f"a statutory period must be at least 1 unit long, got {amount}")
    if unit is Unit.HOURS:
        raise ValueError(
            "hours are measured between instants, not dates; use due_instant_after_hours"
        )
    if counting is Counting.DAY_AFTER_IS_DAY_1:
        return shift_date(start, amount, unit, calendar)
    match unit:
        case Unit.WORKING_DAYS:
            if calendar.is_working_day(start):
                return calendar.add_working_days(start, amount - 1)
            return calendar.add_working_days(start, amount)
        case Unit.MONTHS:
            return _last_day_of_months_beginning_with(start, amount)
        case _:
            return shift_date(start, amount, unit, calendar) - timedelta(days=1)


def due_instant_after_hours(start: datetime, hours: int) -> datetime:
    """Return the instant exactly ``hours`` elapsed hours after ``start``, in UTC.

    Arithmetic is done in UTC: adding a timedelta to a Europe/London datetime would add
    wall-clock time and be an hour out across a clock change.

    Args:
        start: An aware instant (any zone).
        hours: Elapsed hours; at least 1.

    Raises:
        ValueError: If ``start`` is naive or ``hours < 1``.

    """
    _require_aware(start, "start")
    if hours < 1:
        raise ValueError(f"a statutory period must be at least 1 hour long, got {hours}")
    return start.astimezone(UTC) + timedelta(hours=hours)


# Every case carries its calendar in its workflow input, and each cached workflow held its
# own parsed copy (about 52 KiB and 180 objects for the collector to walk), the same for
# every case of a span. Shared like definitions (caseclock/interning.py): a calendar is
# frozen, and its lookups, cached on first use, are the same for every case that reads
# them. A few calendars are live at once (a span of years each, and a new one when a bank
# holiday is announced).
CALENDAR_CACHE_SIZE = 16
CALENDARS: ContentCache[WorkingCalendar] = ContentCache(CALENDAR_CACHE_SIZE)
"""The process-wide cache ``intern_calendar`` uses."""

intern_calendar = shared_by_content(WorkingCalendar, CALENDARS)
"""Pydantic wrap validator: the shared parsed instance for this calendar content."""
