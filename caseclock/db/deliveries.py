"""The delivery ledger and the in-app inbox: who has been sent which alert, on which channel.

One row per (escalation key, recipient, channel). A sender claims a row before sending and
marks it sent or failed after. A claim is a lease: if the sender dies mid-send, the claim
runs out and a retry may take it, so an alert is never lost; the price is that a sender
killed after sending but before marking may send once more after the lease. That is the
at-least-once floor of any side effect outside the database.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.db import UnknownEscalationError
from caseclock.db.engine import insert_for
from caseclock.db.models import Case, Delivery, Escalation, InboxItem
from caseclock.db.views import InboxItemView, escalation_view

# A sender holds a delivery claim this long; its activity's start-to-close timeout must be
# shorter, so that a claim outlives every sender that might still be sending it.
DEFAULT_CLAIM_LEASE = timedelta(minutes=5)
MAX_ERROR_LENGTH = 2000
# Bulk UPDATEs here never touch objects loaded in the session; skip the ORM's bookkeeping.
NO_UPDATE = {"synchronize_session": False}
DELIVERY_KEY = ["escalation_key", "staff_code", "channel"]


class DeliveryStatus(StrEnum):
    """Where one delivery (escalation, recipient, channel) stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def utc_now() -> datetime:
    """The current instant, timezone-aware (the default clock of the read model)."""
    return datetime.now(UTC)


class DeliveryLedger:
    """Delivery claims, their outcome, and the inbox.

    Args:
        session_factory: Sessions for the read-model database.
        claim_lease: How long a delivery claim holds before another sender may take it.
        now: The clock, replaceable in tests.

    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        claim_lease: timedelta = DEFAULT_CLAIM_LEASE,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory
        self._claim_lease = claim_lease
        self._now = now
        self._log = structlog.get_logger(__name__)

    @asynccontextmanager
    async def _escalation_write(self, key: str) -> AsyncIterator[AsyncSession]:
        """A write transaction about one escalation; a missing one becomes an error."""
        try:
            async with self._sessions.begin() as session:
                yield session
        except IntegrityError as exc:
            async with self._sessions() as session:
                if await session.get(Escalation, key) is None:
                    raise UnknownEscalationError(key) from exc
            raise

    async def claim_delivery(self, key: str, staff_code: str, channel: str) -> bool:
        """Claim the right to send one alert to one person on one channel.

        True for exactly one caller: the first for a new delivery, or the first after a
        failure or after an earlier claim's lease ran out. False if the delivery was sent,
        or another sender holds a live claim.

        Raises:
            UnknownEscalationError: If no escalation has this key.

        """
        now = self._now()
        until = now + self._claim_lease
        async with self._escalation_write(key) as session:
            new = (
                insert_for(session, Delivery)
                .values(
                    escalation_key=key,
                    staff_code=staff_code,
                    channel=channel,
                    status=DeliveryStatus.PENDING.value,
                    attempts=1,
                    claimed_until=until,
                )
                .on_conflict_do_nothing(index_elements=DELIVERY_KEY)
                .returning(Delivery.id)
            )
            if (await session.execute(new)).first() is not None:
                return True
            again = (
                update(Delivery)
                .where(
                    Delivery.escalation_key == key,
                    Delivery.staff_code == staff_code,
                    Delivery.channel == channel,
                    Delivery.status != DeliveryStatus.SENT.value,
                    or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
                )
                .values(
                    status=DeliveryStatus.PENDING.value,
                    attempts=Delivery.attempts + 1,
                    claimed_until=until,
                )
                .returning(Delivery.id)
                .execution_options(**NO_UPDATE)
            )
            return (await session.execute(again)).first() is not None

    async def mark_delivered(self, key: str, staff_code: str, channel: str) -> None:
        """Record a delivery as sent (the first sent time is kept).

        Raises:
            UnknownEscalationError: If no escalation has this key.

        """
        now = self._now()
        async with self._escalation_write(key) as session:
            stmt = insert_for(session, Delivery).values(
                escalation_key=key,
                staff_code=staff_code,
                channel=channel,
                status=DeliveryStatus.SENT.value,
                attempts=1,
                sent_at=now,
            )
            set_: dict[str, Any] = {
                "status": DeliveryStatus.SENT.value,
                "sent_at": func.coalesce(Delivery.sent_at, stmt.excluded.sent_at),
                "claimed_until": None,
                "last_error": None,
            }
            await session.execute(
                stmt.on_conflict_do_update(index_elements=DELIVERY_KEY, set_=set_)
            )

    async def mark_failed(self, key: str, staff_code: str, channel: str, error: str) -> None:
        """Record a failed send and release the claim; a sent delivery stays sent.

        Raises:
            UnknownEscalationError: If no escalation has this key.

        """
        error = error[:MAX_ERROR_LENGTH]
        async with self._escalation_write(key) as session:
            stmt = insert_for(session, Delivery).values(
                escalation_key=key,
                staff_code=staff_code,
                channel=channel,
                status=DeliveryStatus.FAILED.value,
                attempts=1,
                last_error=error,
            )
            set_: dict[str, Any] = {
                "status": DeliveryStatus.FAILED.value,
                "claimed_until": None,
                "last_error": error,
            }
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=DELIVERY_KEY,
                    set_=set_,
                    where=Delivery.status != DeliveryStatus.SENT.value,
                )
            )

    async def delivery_sent(self, key: str, staff_code: str, channel: str) -> bool:
        """Whether this delivery has been marked sent (to tell "done" from "claimed elsewhere")."""
        query = select(Delivery.status).where(
            Delivery.escalation_key == key,
            Delivery.staff_code == staff_code,
            Delivery.channel == channel,
        )
        async with self._sessions() as session:
            return await session.scalar(query) == DeliveryStatus.SENT.value

    async def delivery_counts(self) -> dict[str, int]:
        """Sent deliveries per escalation key (for tests and benchmarks)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery.escalation_key, func.count())
                .where(Delivery.status == DeliveryStatus.SENT.value)
                .group_by(Delivery.escalation_key)
            )
            return dict(rows.all())

    async def add_inbox_item(self, staff_code: str, key: str) -> None:
        """Put an alert in a member of staff's inbox (once).

        Raises:
            UnknownEscalationError: If no escalation has this key.

        """
        async with self._escalation_write(key) as session:
            stmt = insert_for(session, InboxItem).values(
                staff_code=staff_code, escalation_key=key, created_at=self._now()
            )
            await session.execute(
                stmt.on_conflict_do_nothing(index_elements=["staff_code", "escalation_key"])
            )

    async def mark_inbox_read(self, staff_code: str, key: str) -> None:
        """Mark an inbox item read (the first read time is kept)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(InboxItem)
                .where(
                    InboxItem.staff_code == staff_code,
                    InboxItem.escalation_key == key,
                    InboxItem.read_at.is_(None),
                )
                .values(read_at=self._now())
                .execution_options(**NO_UPDATE)
            )

    async def inbox(self, staff_code: str) -> list[InboxItemView]:
        """A member of staff's inbox, newest first."""
        query = (
            select(InboxItem, Escalation, Case.team_code)
            .join(Escalation, InboxItem.escalation_key == Escalation.key)
            .join(Case, Escalation.case_ref == Case.case_ref)
            .where(InboxItem.staff_code == staff_code)
            .order_by(InboxItem.created_at.desc(), InboxItem.id.desc())
        )
        async with self._sessions() as session:
            rows = await session.execute(query)
            return [
                InboxItemView(
                    staff_code=item.staff_code,
                    created_at=item.created_at,
                    read_at=item.read_at,
                    escalation=escalation_view(escalation, team_code),
                )
                for item, escalation, team_code in rows
            ]
