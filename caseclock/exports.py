"""Exports from the read model as CSV: escalations and clock occurrences.

Columns are codes, references, dates and the definition's own titles. Acknowledgement notes
are free text written by people and may mention a child, so they are never exported.
"""

import csv
from collections.abc import Iterable
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.db.models import Clock
from caseclock.db.views import ClockView, EscalationView, clock_view

ESCALATION_COLUMNS = [
    "key",
    "case_ref",
    "team",
    "clock_id",
    "clock_title",
    "occurrence",
    "level",
    "level_name",
    "state",
    "roles",
    "fire_at",
    "due_at",
    "acknowledged_at",
    "acknowledged_by",
]
CLOCK_COLUMNS = [
    "case_ref",
    "team",
    "clock_id",
    "occurrence",
    "title",
    "status",
    "start_date",
    "due_date",
    "due_at",
    "levels_fired",
    "closed_on",
    "explanation",
]


async def list_all_clocks(
    sessions: async_sessionmaker[AsyncSession],
    team: str | None = None,
    status: str | None = None,
) -> list[ClockView]:
    """Every clock occurrence (optionally one team's, or one status), soonest due first."""
    query = select(Clock).order_by(Clock.due_at, Clock.case_ref, Clock.clock_id, Clock.occurrence)
    if team is not None:
        query = query.where(Clock.team_code == team)
    if status is not None:
        query = query.where(Clock.status == status)
    async with sessions() as session:
        return [clock_view(row) for row in await session.scalars(query)]


def write_escalations_csv(rows: Iterable[EscalationView], out: TextIO) -> int:
    """Write escalations as CSV; returns how many rows were written."""
    writer = csv.writer(out)
    writer.writerow(ESCALATION_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(
            [
                row.key,
                row.case_ref,
                row.team,
                row.clock_id,
                row.clock_title,
                row.occurrence,
                row.level,
                row.level_name,
                row.state.value,
                " ".join(row.roles),
                row.fire_at.isoformat(),
                row.due_at.isoformat(),
                row.acknowledged_at.isoformat() if row.acknowledged_at else "",
                row.acknowledged_by or "",
            ]
        )
        count += 1
    return count


def write_clocks_csv(rows: Iterable[ClockView], out: TextIO) -> int:
    """Write clock occurrences as CSV; returns how many rows were written."""
    writer = csv.writer(out)
    writer.writerow(CLOCK_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(
            [
                row.case_ref,
                row.team,
                row.clock_id,
                row.occurrence,
                row.title,
                row.status.value,
                row.start_date.isoformat(),
                row.due_date.isoformat(),
                row.due_at.isoformat(),
                " ".join(str(level) for level in row.levels_fired),
                row.closed_on.isoformat() if row.closed_on else "",
                row.explanation,
            ]
        )
        count += 1
    return count
