"""Build working-calendar snapshots from the maintained ``holidays`` library.

Not workflow code: it imports ``holidays``, whose data changes between releases. Call it in
an activity, the API or at start-up, and pass the resulting
:class:`~caseclock.calendar.WorkingCalendar` into workflows as input.
"""

from collections.abc import Iterable
from importlib.metadata import version

import holidays

from caseclock.calendar import Closure, WorkingCalendar

REGION = "england-and-wales"

# The library lists England and Wales under two subdivisions with the same bank holidays
# (tests check they still agree); ENG is used as the single source.
_SUBDIVISION = "ENG"


def build_england_and_wales_calendar(
    first_year: int, last_year: int, local_closures: Iterable[Closure] = ()
) -> WorkingCalendar:
    """Build a snapshot of England and Wales bank holidays plus an authority's closure days.

    Every holiday the library lists is kept, including those falling at a weekend (for
    example Boxing Day on Saturday 2020-12-26 alongside "Boxing Day (observed)" on Monday
    2020-12-28): the weekend day is non-working anyway, and keeping it makes the snapshot a
    faithful copy of the source.

    Args:
        first_year: First year covered (inclusive).
        last_year: Last year covered (inclusive).
        local_closures: The authority's own non-working days within the range.

    Returns:
        The calendar, with ``source`` naming the library version it was built from.

    Raises:
        ValueError: If ``first_year > last_year`` or a local closure lies outside the range.

    """
    if first_year > last_year:
        raise ValueError(f"first_year {first_year} is after last_year {last_year}")
    closures = tuple(local_closures)
    outside = sorted(c.day for c in closures if not first_year <= c.day.year <= last_year)
    if outside:
        listed = ", ".join(d.isoformat() for d in outside)
        raise ValueError(
            f"local closure days must fall within {first_year}-{last_year}; "
            f"outside the range: {listed}"
        )
    # language is pinned so holiday names (which feed calendar_id and explanations) do not
    # depend on the library's default language choice.
    source_holidays = holidays.country_holidays(
        "GB",
        subdiv=_SUBDIVISION,
        years=range(first_year, last_year + 1),
        # expand=False: the object must not quietly grow other years if it were queried.
        expand=False,
        language="en_GB",
    )
    bank_holidays = [Closure(day=day, name=name) for day, name in sorted(source_holidays.items())]
    return WorkingCalendar.from_days(
        region=REGION,
        source=f"python-holidays {version('holidays')}, subdivision {_SUBDIVISION}",
        first_year=first_year,
        last_year=last_year,
        bank_holidays=bank_holidays,
        local_closures=closures,
    )
