"""Build a fresh calendar snapshot outside workflow code, so it is recorded in history.

A long-running case refreshes its calendar when it continues as new: it picks up bank
holidays announced since it started (a state funeral, a coronation) and never runs off the
end of the years its snapshot covers. Deadlines already computed keep the calendar id they
were computed with.
"""

from pydantic import BaseModel
from temporalio import activity

from caseclock.calendar import WorkingCalendar
from caseclock.calendar_source import build_england_and_wales_calendar


class CalendarRequest(BaseModel):
    """The years a case's calendar must cover."""

    first_year: int
    last_year: int


@activity.defn(name="build_calendar")
async def build_calendar(request: CalendarRequest) -> WorkingCalendar:
    """England and Wales working days for these years, from the holidays library."""
    return build_england_and_wales_calendar(request.first_year, request.last_year)
