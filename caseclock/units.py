"""Units of time and counting conventions shared by definitions, the calendar and the core."""

from enum import StrEnum


class Unit(StrEnum):
    """The unit a statutory period is expressed in; stored with every clock."""

    HOURS = "hours"
    DAYS = "days"
    WORKING_DAYS = "working_days"
    WEEKS = "weeks"
    MONTHS = "months"


class Counting(StrEnum):
    """Which day counts as day 1 of a period.

    ``DAY_AFTER_IS_DAY_1``: "within N working days *of* X": the first day (or working day)
    after X is day 1, so the period ends N units after X.

    ``START_DAY_IS_DAY_1``: "within N weeks/days *beginning with* the day on which X"
    (Children Act 1989 s32 and s45): the day of X is day 1, so the period ends the day before
    X + N units. For months, it ends the day before the matching date N months on, or on the
    last day of that month when it has no such date (SI 2018/1082 r1.4(2)(a)). For working
    days, X is day 1 only if X is itself a working day.
    """

    DAY_AFTER_IS_DAY_1 = "day_after_is_day_1"
    START_DAY_IS_DAY_1 = "start_day_is_day_1"
