"""Events as the core receives them, and the rejection a person gets for an invalid one."""

import hashlib
from datetime import date
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")]
FieldValue = int | str | date


class CaseEvent(BaseModel):
    """Something that happened to a case, as recorded by a case system or a person.

    ``effective_date`` is when it happened (often days before it was recorded);
    ``effective_at`` adds the time, needed for clocks counted in hours. ``event_id`` is the
    sender's idempotency key: sending the same event twice applies it once.
    """

    model_config = ConfigDict(frozen=True)

    event_id: EventId
    type: Annotated[str, Field(max_length=64)]
    effective_date: date
    effective_at: AwareDatetime | None = None
    recorded_at: AwareDatetime
    recorded_by: Annotated[str, Field(min_length=1, max_length=64)]
    outcome: str | None = None
    data: dict[str, FieldValue] = {}


def event_fingerprint(event: CaseEvent) -> str:
    """``type#digest`` of what an event says happened (not who recorded it, or when).

    Kept per event id so a resend is recognised and a reused id for other facts refused.
    """
    facts = event.model_dump_json(
        include={"type", "effective_date", "effective_at", "outcome", "data"}
    )
    return f"{event.type}#{hashlib.sha256(facts.encode()).hexdigest()[:16]}"


class Rejection(BaseModel):
    """Why an event cannot be applied: the field at fault (if any) and what to do about it."""

    model_config = ConfigDict(frozen=True)

    field: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class EventRejectedError(Exception):
    """An event is invalid for this case now. Nothing was changed."""

    def __init__(self, event_type: str, rejections: list[Rejection]) -> None:
        self.event_type = event_type
        self.rejections = rejections
        super().__init__(f"{event_type} rejected: " + "; ".join(str(r) for r in rejections))
