"""A case's timeline: every dated fact in order, and the same facts laid out on a time axis.

:func:`build_timeline` is pure: from what the read model holds about a case (its events,
stages, clocks, alerts, acknowledgements and reassignments) it makes the list a person
reads (:class:`Entry`, oldest first) and the geometry of the picture drawn above it
(:class:`TimelineChart`, an SVG whose text alternative is the list itself).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from caseclock.calendar import LONDON
from caseclock.casework import CaseRecord
from caseclock.core.actions import ClockStatus
from caseclock.dashboard.labels import Labels, humanise
from caseclock.dashboard.queries import Reassignment
from caseclock.db.views import ClockView

WIDTH = 960
LABEL_WIDTH = 300
RIGHT_PAD = 24
TOP = 34
ROW = 26
BAR = 14
LABEL_CHARS = 38
MAX_CLOCK_ROWS = 40
# Days shown after today, so deadlines just ahead are on the picture.
AHEAD_DAYS = 30
# Facts of the same moment, in the order they follow from one another.
KINDS = ("event", "stage", "deadline", "alert", "acknowledgement", "reassignment")


@dataclass(frozen=True)
class Entry:
    """One dated fact about the case, for the list."""

    on: date
    order: datetime
    kind: str  # event, stage, deadline, alert, acknowledgement, reassignment
    title: str
    detail: str = ""
    tag: str = ""
    tag_colour: str = ""
    note: str = ""


@dataclass(frozen=True)
class Segment:
    """A coloured bar on a row of the picture; ``style`` names its CSS class."""

    x: float
    y: float
    width: float
    height: float
    style: str
    label: str = ""
    title: str = ""


@dataclass(frozen=True)
class Marker:
    """A point on a row: an event, a deadline or an alert (``kind``)."""

    x: float
    y: float
    kind: str
    title: str


@dataclass(frozen=True)
class RowLabel:
    """A row's name at the left of the picture (``full`` when shortened)."""

    y: float
    text: str
    full: str


@dataclass
class TimelineChart:
    """Everything the SVG template draws, in its own coordinates."""

    width: int
    height: int
    left: int
    right: int
    ticks: list[tuple[float, str]] = field(default_factory=list)
    rows: list[RowLabel] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    today_x: float = 0.0
    first: date | None = None
    last: date | None = None
    hidden_clocks: int = 0


def _local_day(instant: datetime) -> date:
    return instant.astimezone(LONDON).date()


def _due_day(clock: ClockView) -> date:
    return _local_day(clock.due_at - timedelta(microseconds=1))


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1].rstrip() + "\u2026"


def clock_state(clock: ClockView, now: datetime) -> tuple[str, str]:
    """A clock's state in words and its tag colour."""
    if clock.status is ClockStatus.MET:
        return "Met", "green"
    if clock.status is ClockStatus.MET_LATE:
        return "Met late", "orange"
    if clock.status is ClockStatus.CANCELLED:
        return "Cancelled", "grey"
    if clock.due_at <= now:
        return "Overdue", "red"
    return "Running", "blue"


def entries(
    record: CaseRecord,
    reassignments: list[Reassignment],
    labels: Labels,
    names: dict[str, str],
    now: datetime,
) -> list[Entry]:
    """Every dated fact about the case, oldest first."""
    case = record.case
    key = f"{case.definition_id}@{case.definition_version}"

    def who(code: str | None) -> str:
        return f"{names.get(code, code)} ({code})" if code else "nobody"

    found: list[Entry] = []
    event_order = {e.event_id: e.effective_at or e.recorded_at for e in record.events}
    for event in record.events:
        title = labels.event(key, event.type)
        if event.outcome:
            title += f": {labels.outcome(event.outcome)}"
        found.append(
            Entry(
                on=event.effective_date,
                order=event.effective_at or event.recorded_at,
                kind="event",
                title=title,
                detail=f"Recorded by {who(event.recorded_by)}; event {event.event_id}",
            )
        )
    for stage in record.stage_history:
        if labels.is_initial(key, stage.track, stage.stage):
            continue
        found.append(
            Entry(
                on=stage.entered_on,
                order=event_order.get(
                    stage.event_id, datetime.combine(stage.entered_on, datetime.min.time(), LONDON)
                ),
                kind="stage",
                title=f"{labels.track(key, stage.track)}: "
                f"{labels.stage(key, stage.track, stage.stage)}",
                detail=f"After event {stage.event_id}",
            )
        )
    clocks = [*record.open_clocks, *record.met_clocks, *record.cancelled_clocks]
    for clock in clocks:
        state, colour = clock_state(clock, now)
        closed = f"; closed on {clock.closed_on:%d/%m/%Y}" if clock.closed_on else ""
        found.append(
            Entry(
                on=_due_day(clock),
                order=clock.due_at,
                kind="deadline",
                title=f"Deadline: {clock.title}",
                detail=f"Started {clock.start_date:%d/%m/%Y}{closed}",
                tag=state,
                tag_colour=colour,
            )
        )
    for alert in record.escalations:
        state = "Overdue" if alert.state.value == "overdue" else "Due soon"
        found.append(
            Entry(
                on=_local_day(alert.created_at),
                order=alert.created_at,
                kind="alert",
                title=f"Alert: {alert.clock_title}",
                detail=f"{humanise(alert.level_name)} (level {alert.level}); sent to "
                + ", ".join(humanise(role).lower() for role in alert.roles),
                tag=state,
                tag_colour="red" if state == "Overdue" else "yellow",
            )
        )
        if alert.acknowledged_at is not None:
            found.append(
                Entry(
                    on=_local_day(alert.acknowledged_at),
                    order=alert.acknowledged_at,
                    kind="acknowledgement",
                    title=f"Acknowledged by {who(alert.acknowledged_by)}",
                    detail=f"Management oversight of the alert: {alert.clock_title}, "
                    f"{humanise(alert.level_name).lower()}",
                    tag="Management oversight",
                    tag_colour="purple",
                    note=alert.acknowledgement_note or "",
                )
            )
    for moved in reassignments:
        found.append(
            Entry(
                on=_local_day(moved.at),
                order=moved.at,
                kind="reassignment",
                title=f"Alert reassigned to {who(moved.to_staff)}",
                detail=f"By {who(moved.from_staff)}; alert {moved.key}",
            )
        )
    return sorted(found, key=lambda entry: (entry.on, entry.order, KINDS.index(entry.kind)))


class _Axis:
    def __init__(self, first: date, last: date, left: int, right: int) -> None:
        self.first, self.last = first, last
        self.left, self.right = left, right
        self.span = max(1, (last - first).days)

    def x(self, day: date) -> float:
        day = min(max(day, self.first), self.last)
        return round(self.left + (day - self.first).days / self.span * (self.right - self.left), 1)


def _month_ticks(axis: _Axis) -> list[tuple[float, str]]:
    ticks = []
    month = date(axis.first.year, axis.first.month, 1)
    months = (axis.last.year - month.year) * 12 + axis.last.month - month.month + 1
    step = max(1, months // 10)
    index = 0
    while month <= axis.last:
        if month >= axis.first and index % step == 0:
            ticks.append((axis.x(month), f"{month:%b %Y}"))
        index += 1
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return ticks


def chart(record: CaseRecord, labels: Labels, now: datetime) -> TimelineChart:
    """The picture of the case over time: stages, events, clocks and alerts."""
    case = record.case
    key = f"{case.definition_id}@{case.definition_version}"
    today = _local_day(now)
    clocks = sorted(
        [*record.open_clocks, *record.met_clocks, *record.cancelled_clocks],
        key=lambda clock: (clock.start_date, clock.due_at),
    )
    starts = [case.opened_on, *(e.effective_date for e in record.events)]
    first = min(starts) - timedelta(days=2)
    last = today + timedelta(days=AHEAD_DAYS)
    axis = _Axis(first, last, LABEL_WIDTH, WIDTH - RIGHT_PAD)
    shown, hidden = clocks[-MAX_CLOCK_ROWS:], max(0, len(clocks) - MAX_CLOCK_ROWS)
    result = TimelineChart(
        width=WIDTH,
        height=TOP + ROW * (2 + len(shown)) + 8,
        left=LABEL_WIDTH,
        right=WIDTH - RIGHT_PAD,
        ticks=_month_ticks(axis),
        today_x=axis.x(today),
        first=first,
        last=last,
        hidden_clocks=hidden,
    )
    # Row 0: the child's path, stage by stage.
    y = TOP
    result.rows.append(RowLabel(y + ROW / 2, "Stage", labels.track(key, "main")))
    main = [stage for stage in record.stage_history if stage.track == "main"]
    for index, stage in enumerate(main):
        end = main[index + 1].entered_on if index + 1 < len(main) else last
        title = labels.stage(key, "main", stage.stage)
        x, x_end = axis.x(stage.entered_on), axis.x(end)
        result.segments.append(
            Segment(
                x,
                y + (ROW - BAR) / 2,
                max(1.0, x_end - x),
                BAR,
                f"cc-stage cc-stage--{index % 2}",
                title if x_end - x > 7 * len(title) else "",
                f"{title} from {stage.entered_on:%d/%m/%Y}",
            )
        )
    # Row 1: events.
    y += ROW
    result.rows.append(RowLabel(y + ROW / 2, "Events", "Events recorded"))
    for event in record.events:
        title = labels.event(key, event.type)
        result.markers.append(
            Marker(
                axis.x(event.effective_date),
                y + ROW / 2,
                "event",
                f"{title} on {event.effective_date:%d/%m/%Y}",
            )
        )
    # Then one row per clock occurrence.
    alerts_by_clock: dict[tuple[str, int], list[tuple[datetime, str, bool]]] = {}
    for alert in record.escalations:
        alerts_by_clock.setdefault((alert.clock_id, alert.occurrence), []).append(
            (alert.created_at, humanise(alert.level_name), alert.acknowledged_at is not None)
        )
    for clock in shown:
        y += ROW
        label = clock.title if clock.occurrence == 1 else f"{clock.title} ({clock.occurrence})"
        result.rows.append(RowLabel(y + ROW / 2, _short(label), label))
        _clock_bars(result, axis, clock, y, today, now)
        for fired, name, acknowledged in alerts_by_clock.get(
            (clock.clock_id, clock.occurrence), []
        ):
            result.markers.append(
                Marker(
                    axis.x(_local_day(fired)),
                    y + ROW / 2,
                    "alert-acknowledged" if acknowledged else "alert",
                    f"Alert: {name} on {_local_day(fired):%d/%m/%Y}"
                    + (" (acknowledged)" if acknowledged else ""),
                )
            )
    return result


def _clock_bars(
    result: TimelineChart, axis: _Axis, clock: ClockView, y: float, today: date, now: datetime
) -> None:
    due_day = _due_day(clock)
    end = clock.closed_on or today
    state, _ = clock_state(clock, now)
    style = {"Met": "met", "Met late": "met", "Cancelled": "cancelled"}.get(state, "running")
    top = y + (ROW - BAR) / 2
    x_start, x_due, x_end = axis.x(clock.start_date), axis.x(due_day), axis.x(end)
    on_time_end = min(x_due, x_end)
    result.segments.append(
        Segment(
            x_start,
            top,
            max(2.0, on_time_end - x_start),
            BAR,
            f"cc-bar cc-bar--{style}",
            title=f"{clock.title}: {state.lower()}, started {clock.start_date:%d/%m/%Y}",
        )
    )
    if x_end > x_due and clock.status is not ClockStatus.CANCELLED:
        result.segments.append(
            Segment(
                x_due,
                top,
                x_end - x_due,
                BAR,
                "cc-bar cc-bar--late",
                title=f"{clock.title}: late from {due_day:%d/%m/%Y}",
            )
        )
    if due_day > axis.last:
        # Due after the end of the picture: an arrow at the edge says so.
        result.markers.append(
            Marker(
                x_due,
                y + ROW / 2,
                "beyond",
                f"Due by the end of {due_day:%d/%m/%Y}, later than this picture shows",
            )
        )
    else:
        result.markers.append(
            Marker(x_due, y + ROW / 2, "due", f"Due by the end of {due_day:%d/%m/%Y}")
        )
