"""Build a case's opening events one by one, each with where its date came from.

Event ids are derived from the case reference, the list and the column (and the event type,
as one date can stand for several events), so importing the same files again produces the
same ids and the core treats the events as repeats.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

from caseclock.core.events import CaseEvent
from caseclock.importer.columns import LISTS
from caseclock.importer.models import Row

# Who an imported event says recorded it (a code, as the read model expects).
IMPORTED_BY = "annex-a-import"


@dataclass(frozen=True)
class Fact:
    """A date read from one cell of one row."""

    on: date
    row: Row
    field: str

    @property
    def heading(self) -> str:
        """The Annex A heading of the cell."""
        return LISTS[self.row.list_number].column(self.field).heading

    def describe(self) -> str:
        """``Date of referral 2026-01-05 (list 3, referrals.csv:12)``."""
        return (
            f"{self.heading} {self.on.isoformat()} "
            f"(list {self.row.list_number.value}, {self.row.where})"
        )


def fact(row: Row | None, field_name: str) -> Fact | None:
    """The fact in a row's date cell, if the row exists and the cell is filled."""
    if row is None:
        return None
    on = row.date(field_name)
    return None if on is None else Fact(on, row, field_name)


class RejectedCaseError(Exception):
    """A case cannot be translated: the row at fault and why."""

    def __init__(self, row: Row, reason: str) -> None:
        self.row = row
        self.reason = reason
        super().__init__(f"{row.where}: {reason}")


@dataclass(frozen=True)
class Planned:
    """An event and the fact it was dated from (``synthesised`` if the lists do not date it)."""

    event: CaseEvent
    source: Fact
    synthesised: bool


@dataclass
class Chain:
    """The opening events of one case, in the order they are added."""

    case_ref: str
    recorded_at: datetime
    planned: list[Planned] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, event_type: str, source: Fact, outcome: str | None = None, why: str | None = None
    ) -> None:
        """Add an event dated from ``source``; ``why`` says why it was synthesised."""
        digest = hashlib.sha256(self.case_ref.encode()).hexdigest()[:8]
        event_id = f"imp.{digest}.L{source.row.list_number.value}.{source.field}.{event_type}"
        event = CaseEvent(
            event_id=event_id,
            type=event_type,
            effective_date=source.on,
            recorded_at=self.recorded_at,
            recorded_by=IMPORTED_BY,
            outcome=outcome,
        )
        self.planned.append(Planned(event, source, synthesised=why is not None))
        if why is not None:
            label = event_type if outcome is None else f"{event_type}:{outcome}"
            self.notes.append(f"{label} synthesised on {source.describe()}: {why}")

    def note(self, text: str) -> None:
        """Say something about the translation in the case's report."""
        self.notes.append(text)

    def ordered(self) -> list[Planned]:
        """The events by date; events of one day keep the order of the path."""
        return sorted(self.planned, key=lambda planned: planned.event.effective_date)
