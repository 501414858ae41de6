"""Jinja2 for the dashboard: autoescaped templates, and how dates and times are written.

Dates follow the GOV.UK style (``3 August 2026``, ``5:30pm``), in London time; a deadline at
the end of a day shows as that day. Links to cases and escalations quote their codes (a
case reference may contain ``/``).
"""

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from caseclock.calendar import LONDON
from caseclock.dashboard.assets import TEMPLATES
from caseclock.dashboard.charts import marker_path


def _local(value: datetime) -> datetime:
    return value.astimezone(LONDON)


def day(value: date | datetime | None) -> str:
    """``3 August 2026`` (a datetime is taken in London time)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _local(value).date()
    return f"{value.day} {value:%B %Y}"


def short_day(value: date | datetime | None) -> str:
    """``3 Aug 2026``, for tables."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _local(value).date()
    return f"{value.day} {value:%b %Y}"


def clock_time(value: datetime) -> str:
    """``5:30pm`` or ``midnight`` in London time."""
    local = _local(value)
    if (local.hour, local.minute) == (0, 0):
        return "midnight"
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"


def when(value: datetime | None) -> str:
    """``3 August 2026 at 5:30pm`` in London time."""
    if value is None:
        return ""
    return f"{day(value)} at {clock_time(value)}"


def due(value: datetime, in_hours: bool = False) -> str:
    """A deadline: the day it falls due (end of day), or its instant for hour clocks."""
    if in_hours:
        return when(value)
    # The end of a day is midnight at the start of the next: show the day it ends.
    return day(_local(value) - timedelta(microseconds=1))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def relative(due_at: datetime, now: datetime) -> str:
    """``3 days overdue``, ``overdue``, ``due today``, ``due in 2 days`` (London days)."""
    due_day = (_local(due_at) - timedelta(microseconds=1)).date()
    today = _local(now).date()
    if due_at <= now:
        late = (today - due_day).days
        return "overdue" if late <= 0 else f"{_plural(late, 'day')} overdue"
    ahead = (due_day - today).days
    return "due today" if ahead <= 0 else f"due in {_plural(ahead, 'day')}"


def case_url(case_ref: str) -> str:
    """The timeline page of a case."""
    return "/cases/" + quote(case_ref, safe="/")


def escalation_url(key: str) -> str:
    """The page of one escalation (alerts link here)."""
    return "/escalations/" + quote(key, safe="/")


def query(params: dict[str, Any]) -> str:
    """``?a=1&b=2`` from the non-empty values, or an empty string."""
    kept = {name: value for name, value in params.items() if value not in (None, "", [])}
    return "?" + urlencode(kept, doseq=True) if kept else ""


class Templates:
    """The dashboard's template environment."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(
            day=day, short_day=short_day, when=when, due=due, clock_time=clock_time
        )
        self._env.globals.update(
            case_url=case_url,
            escalation_url=escalation_url,
            query=query,
            relative=relative,
            legend_marker=lambda shape: marker_path(shape, 8, 8, 5),
        )

    def render(self, name: str, context: dict[str, Any]) -> str:
        """Render a template with a context."""
        return self._env.get_template(name).render(context)
