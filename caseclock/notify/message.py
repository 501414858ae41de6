"""Render an escalation alert as email subject, text and HTML bodies, and webhook JSON.

A batch that tells one person about many alerts at once can render them as one digest
email instead (:func:`render_digest`), a list of the alerts most urgent first.

The alert is built only from the ``NotifyAction`` (case reference, codes and titles from
the definition) and the recipient's own name and role. Nothing about the child is ever
available here, so nothing about the child can leak into a mailbox or a chat channel.

Wording follows the GOV.UK style guide: short sentences, dates as "Thursday 14 January
2021", times as "2:30pm". Day and month names come from tables rather than ``strftime``
so that the wording does not depend on the process locale.
"""

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, JsonValue

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.units import Unit

# Statutory days are English days: "today" and "overdue since" are read on a London clock.
LOCAL_ZONE = ZoneInfo("Europe/London")

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")

FOOTER = (
    "This message contains no personal details about the child. "
    "Use the case reference to find the case in your case management system."
)


class EmailContent(BaseModel):
    """What an email says: a subject and a body in plain text and in HTML.

    Attributes:
        subject: Email subject, a single line.
        text_body: Plain-text email body.
        html_body: HTML email body; every value in it is escaped.

    """

    model_config = ConfigDict(frozen=True)

    subject: str
    text_body: str
    html_body: str


class AlertMessage(EmailContent):
    """One alert, ready for every channel: the email, and the webhook body.

    Attributes:
        webhook_json: Body for a Teams or Slack style incoming webhook: a top-level
            ``text`` (with ``&``, ``<`` and ``>`` escaped as Slack requires) and a
            ``caseclock`` object with the alert's codes.

    """

    webhook_json: dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class _Section:
    """A titled block of paragraphs, rendered the same way in text and HTML.

    A plain dataclass: built ten times per alert and recipient, and never from outside data,
    so pydantic's validation would cost time and check nothing.
    """

    paragraphs: tuple[str, ...]
    heading: str | None = None
    link: str | None = None


def long_date(day: date) -> str:
    """Write a date the GOV.UK way, for example "Thursday 14 January 2021"."""
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def clock_time(moment: datetime) -> str:
    """Write a time of day the GOV.UK way: "9am", "2:30pm", "midday", "midnight"."""
    if moment.minute == 0 and moment.hour in (0, 12):
        return "midnight" if moment.hour == 0 else "midday"
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes}{suffix}"


def render_alert(
    action: NotifyAction,
    recipient_name: str,
    recipient_role: str,
    covering_for: str | None,
    dashboard_url: str,
) -> AlertMessage:
    """Render one escalation alert for one recipient.

    Args:
        action: The notify action from the process core.
        recipient_name: The manager or worker being told (staff, never the child).
        recipient_role: The role code under which this person is told.
        covering_for: The person this recipient is covering for, if any.
        dashboard_url: Base address of the dashboard, used for the acknowledge link.

    Returns:
        The alert as subject, text and HTML bodies, and webhook JSON.

    """
    case_ref = _one_line(action.case_ref)
    clock_title = _one_line(action.clock_title)
    state_word = "Overdue" if action.state is AlertState.OVERDUE else "Due soon"
    subject = f"{state_word}: {clock_title} for case {case_ref} (level {action.level})"
    headline = (
        f"Case {case_ref}: {clock_title} is overdue."
        if action.state is AlertState.OVERDUE
        else f"Case {case_ref}: {clock_title} is due soon."
    )
    link = acknowledge_url(dashboard_url, action.key)
    sections = (
        _Section(paragraphs=(headline, _when(action))),
        _Section(paragraphs=(_ladder(action, recipient_role, covering_for),)),
        _Section(heading="Why this date", paragraphs=(action.deadline.explain(),)),
        _Section(heading="What to do", paragraphs=(action.what_to_do,)),
        _Section(
            heading="Acknowledge this alert",
            paragraphs=("Open this link to acknowledge the alert and record what you have done:",),
            link=link,
        ),
        _Section(paragraphs=(FOOTER,)),
    )
    greeting = f"Dear {_one_line(recipient_name)},"
    addressed = f"For {_one_line(recipient_name)}, {_human(recipient_role)}."
    return AlertMessage(
        subject=subject,
        text_body=_text((_Section(paragraphs=(greeting,)), *sections)),
        html_body=_html(subject, (_Section(paragraphs=(greeting,)), *sections)),
        webhook_json={
            "text": _slack_escape(_text((_Section(paragraphs=(subject, addressed)), *sections))),
            "caseclock": {
                "key": action.key,
                "case_ref": action.case_ref,
                "clock_id": action.clock_id,
                "level": action.level,
                "state": action.state.value,
                "due_at": action.deadline.due_at.isoformat(),
            },
        },
    )


def render_digest(
    actions: Sequence[NotifyAction],
    recipient_name: str,
    recipient_role: str,
    covering_for: str | None,
    dashboard_url: str,
) -> EmailContent:
    """Render many alerts for one recipient as one email, most urgent first.

    Overdue alerts come before those due soon, then the highest level of the ladder, then the
    earliest deadline. Each alert says what :func:`render_alert` says in short: the case
    reference, the clock, its state and level, when it is due, what to do and the link to
    acknowledge it. Like a single alert, it holds codes and titles, never the child.

    Args:
        actions: The notify actions, all told to this person in this role.
        recipient_name: The manager or worker being told (staff, never the child).
        recipient_role: The role code under which this person is told.
        covering_for: The person this recipient is covering for, if any.
        dashboard_url: Base address of the dashboard, used for the acknowledge links.

    Returns:
        The digest as subject, text and HTML bodies.

    """
    ordered = sorted(actions, key=_urgency)
    overdue = sum(1 for action in ordered if action.state is AlertState.OVERDUE)
    count = _count(len(ordered), "alert")
    subject = f"Caseclock: {count} for you ({overdue or 'none'} overdue)"
    you = f"You are getting these as {_human(recipient_role)}"
    if covering_for:
        you += f", covering for {_one_line(covering_for)}"
    summary = (
        f"{count} fell due for you at the same time: {overdue} overdue and "
        f"{len(ordered) - overdue} due soon. They are listed most urgent first. "
        "Open an alert's link to acknowledge it and record what you have done."
    )
    sections = (
        _Section(paragraphs=(f"Dear {_one_line(recipient_name)},",)),
        _Section(paragraphs=(summary, you + ".")),
        *(
            _Section(
                heading=f"{number}. Case {_one_line(action.case_ref)}: "
                f"{_one_line(action.clock_title)}",
                paragraphs=(_digest_line(action), f"What to do: {action.what_to_do}"),
                link=acknowledge_url(dashboard_url, action.key),
            )
            for number, action in enumerate(ordered, start=1)
        ),
        _Section(paragraphs=(FOOTER,)),
    )
    return EmailContent(
        subject=subject, text_body=_text(sections), html_body=_html(subject, sections)
    )


def acknowledge_url(dashboard_url: str, key: str) -> str:
    """Build the link that acknowledges an escalation; the key's slashes stay path separators."""
    return f"{dashboard_url.rstrip('/')}/escalations/{quote(key, safe='/')}"


def _when(action: NotifyAction) -> str:
    deadline = action.deadline
    fired = _local(action.fire_at)
    due_at = _local(deadline.due_at)
    if deadline.unit is Unit.HOURS:
        # Hour clocks (for example a strategy discussion) end at an instant, not a day's end.
        due = f"{clock_time(due_at)} on {long_date(due_at.date())}"
        if action.state is AlertState.OVERDUE:
            late = fired - due_at
            length = (
                _count(late.days, "day")
                if late >= timedelta(days=1)
                else _count(max(1, _whole_hours(late)), "hour")
            )
            return f"It was due by {due}. It has been overdue since {due}, for {length}."
        hours_left = _count(max(1, _whole_hours(due_at - fired)), "hour")
        return f"It is due by {due}. That is in {hours_left}."
    due = f"the end of {long_date(deadline.due_date)}"
    if action.state is AlertState.OVERDUE:
        since = long_date(deadline.due_date + timedelta(days=1))
        length = _count(max(1, (fired.date() - deadline.due_date).days), "day")
        return f"It was due by {due}. It has been overdue since {since}, for {length}."
    days_left = max(0, (deadline.due_date - fired.date()).days)
    when = {0: "today", 1: "tomorrow"}.get(days_left, f"in {_count(days_left, 'day')}")
    return f"It is due by {due}. That is {when}."


def _urgency(action: NotifyAction) -> tuple[bool, int, datetime, str]:
    # Overdue first, then the highest level, then the earliest deadline; the key breaks ties.
    overdue = action.state is AlertState.OVERDUE
    return (not overdue, -action.level, _local(action.deadline.due_at), action.key)


def _digest_line(action: NotifyAction) -> str:
    """A digest's line for one alert: state, level and when it is (or was) due."""
    deadline = action.deadline
    if deadline.unit is Unit.HOURS:
        due_at = _local(deadline.due_at)
        due = f"{clock_time(due_at)} on {long_date(due_at.date())}"
    else:
        due = f"the end of {long_date(deadline.due_date)}"
    level = f"escalation level {action.level}: {_one_line(action.level_name)}"
    if action.state is AlertState.OVERDUE:
        return f"Overdue, {level}. It was due by {due}."
    return f"Due soon, {level}. It is due by {due}."


def _ladder(action: NotifyAction, recipient_role: str, covering_for: str | None) -> str:
    sentences = [f"This is escalation level {action.level}: {_one_line(action.level_name)}."]
    if len(action.covers_levels) > 1:
        levels = _and_list([str(level) for level in sorted(action.covers_levels)])
        sentences.append(f"It covers levels {levels}, which fell due at the same time.")
    you = f"You are getting this as {_human(recipient_role)}"
    if covering_for:
        you += f", covering for {_one_line(covering_for)}"
    sentences.append(you + ".")
    others = [_human(role) for role in action.roles if role != recipient_role]
    if others:
        sentences.append(f"Also told: {_and_list(list(dict.fromkeys(others)))}.")
    else:
        sentences.append("No other role has been told by this alert.")
    return " ".join(sentences)


def _text(sections: tuple[_Section, ...]) -> str:
    blocks: list[str] = []
    for section in sections:
        block = "\n\n".join(section.paragraphs)
        if section.heading:
            block = f"{section.heading}\n{block}"
        if section.link:
            block = f"{block}\n{section.link}"
        blocks.append(block)
    return "\n\n".join(blocks) + "\n"


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links or mentions and wants these three escaped; Teams renders them.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html(title: str, sections: tuple[_Section, ...]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{html.escape(title)}</title></head>',
        "<body>",
    ]
    for section in sections:
        if section.heading:
            parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts.extend(
            f"<p>{html.escape(paragraph).replace(chr(10), '<br>')}</p>"
            for paragraph in section.paragraphs
        )
        if section.link:
            href = html.escape(section.link, quote=True)
            parts.append(f'<p><a href="{href}">{html.escape(section.link)}</a></p>')
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts) + "\n"


def _local(moment: datetime) -> datetime:
    # A naive instant is taken as UTC, the convention of Temporal and the database.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(LOCAL_ZONE)


def _one_line(value: str) -> str:
    # Subjects and headers must stay one line; a stray newline would also be header injection.
    return " ".join(_CONTROL_CHARACTERS.sub(" ", value).split())


def _human(code: str) -> str:
    return _one_line(code.replace("_", " ").replace("-", " "))


def _whole_hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)


def _count(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"


def _and_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
