"""The delivery ledger and the in-app inbox: who has been sent which alert, on which channel.

One row per (escalation key, recipient, channel). A sender claims a row before sending and
marks it sent or failed after. A claim is a lease: if the sender dies mid-send, the claim
runs out and a retry may take it, so an alert is never lost; the price is that a sender
killed after sending but before marking may send once more after the lease. That is the
at-least-once floor of any side effect outside the database.
"""

from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from typing import Any, NamedTuple, TypeVar

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
# The channel that is only a database row: claimed and marked sent in one transaction.
INBOX = "inbox"
# Values bound in one IN list: well under SQLite's (32,766) and asyncpg's (32,767) limits.
IN_LIST_CHUNK = 500

_T = TypeVar("_T")


def chunked(items: Sequence[_T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size``."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class DeliveryStatus(StrEnum):
    """Where one delivery (escalation, recipient, channel) stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class DeliveryKey(NamedTuple):
    """One delivery: an escalation, a member of staff, a channel."""

    escalation_key: str
    staff_code: str
    channel: str


class ClaimState(StrEnum):
    """What a batch claim found for one delivery."""

    CLAIMED = "claimed"
    """This sender holds the claim (under lease) and must send, then mark it."""
    SENT_NOW = "sent_now"
    """A database-only channel (the inbox): delivered and marked sent in the claim."""
    ALREADY_SENT = "already_sent"
    IN_PROGRESS = "in_progress"
    """Another sender holds a live claim."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A batch claim's answer for one delivery; ``delivery_id`` is set when CLAIMED."""

    state: ClaimState
    delivery_id: int | None = None


def _first_status(channel: str) -> str:
    return (DeliveryStatus.SENT if channel == INBOX else DeliveryStatus.PENDING).value


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

    @property
    def claim_lease(self) -> timedelta:
        """How long a delivery claim holds before another sender may take it."""
        return self._claim_lease

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

    async def _claim_deliveries(
        self, session: AsyncSession, wanted: Collection[DeliveryKey], now: datetime
    ) -> dict[DeliveryKey, Claim]:
        """Claim many deliveries inside the caller's write transaction.

        Their escalations must be written already (in this transaction). New deliveries are
        inserted claimed (``ON CONFLICT DO NOTHING RETURNING``); failed ones and those whose
        claim ran out are claimed again; inbox deliveries are inserted or claimed as sent,
        with their inbox items, since the row and its "sent" commit together.
        """
        until = now + self._claim_lease
        order = sorted(set(wanted))  # one order for every sender: no lock-order deadlocks
        rows = [
            {
                "escalation_key": want.escalation_key,
                "staff_code": want.staff_code,
                "channel": want.channel,
                "status": _first_status(want.channel),
                "attempts": 1,
                "claimed_until": None if want.channel == INBOX else until,
                "sent_at": now if want.channel == INBOX else None,
            }
            for want in order
        ]
        claims: dict[DeliveryKey, Claim] = {}
        if rows:
            insert = (
                insert_for(session, Delivery)
                .on_conflict_do_nothing(index_elements=DELIVERY_KEY)
                .returning(
                    Delivery.id, Delivery.escalation_key, Delivery.staff_code, Delivery.channel
                )
                # NULLs as values: else the ORM groups rows by their non-NULL columns, and
                # inbox and email rows alternating would make one statement per row.
                .execution_options(render_nulls=True)
            )
            for row in await session.execute(insert, rows):
                key = DeliveryKey(row.escalation_key, row.staff_code, row.channel)
                state = ClaimState.SENT_NOW if key.channel == INBOX else ClaimState.CLAIMED
                claims[key] = Claim(state, row.id)
        rest = [want for want in order if want not in claims]
        if rest:
            claims |= await self._claim_existing(session, rest, now, until)
        inbox = [key for key, claim in claims.items() if claim.state is ClaimState.SENT_NOW]
        if inbox:
            items = insert_for(session, InboxItem).on_conflict_do_nothing(
                index_elements=["staff_code", "escalation_key"]
            )
            await session.execute(
                items,
                [
                    {"staff_code": key.staff_code, "escalation_key": key.escalation_key}
                    | {"created_at": now}
                    for key in inbox
                ],
            )
        return claims

    async def _claim_existing(
        self, session: AsyncSession, rest: Sequence[DeliveryKey], now: datetime, until: datetime
    ) -> dict[DeliveryKey, Claim]:
        """Deliveries already in the ledger: sent, claimed elsewhere, or ours again."""
        found = await self._ledger_rows(session, rest)
        claims: dict[DeliveryKey, Claim] = {}
        retry: dict[int, DeliveryKey] = {}
        for key in rest:
            if key not in found:  # pragma: no cover - the insert just met it
                claims[key] = Claim(ClaimState.IN_PROGRESS)
                continue
            row_id, status, claimed_until = found[key]
            if status == DeliveryStatus.SENT:
                claims[key] = Claim(ClaimState.ALREADY_SENT)
            elif claimed_until is not None and claimed_until >= now:
                claims[key] = Claim(ClaimState.IN_PROGRESS)
            else:
                retry[row_id] = key
        inbox_ids = [row_id for row_id, key in retry.items() if key.channel == INBOX]
        other_ids = [row_id for row_id, key in retry.items() if key.channel != INBOX]
        sent_now = {"status": DeliveryStatus.SENT.value, "claimed_until": None, "sent_at": now}
        sent_now["last_error"] = None
        pending = {"status": DeliveryStatus.PENDING.value, "claimed_until": until}
        taken: set[int] = set()
        for ids, values in ((inbox_ids, sent_now), (other_ids, pending)):
            for id_chunk in chunked(sorted(ids)):
                again = (
                    update(Delivery)
                    .where(
                        Delivery.id.in_(id_chunk),
                        Delivery.status != DeliveryStatus.SENT.value,
                        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
                    )
                    .values(attempts=Delivery.attempts + 1, **values)
                    .returning(Delivery.id)
                    .execution_options(**NO_UPDATE)
                )
                taken.update((await session.execute(again)).scalars())
        for row_id, key in retry.items():
            if row_id not in taken:  # changed under us since the read: leave it alone
                claims[key] = Claim(ClaimState.IN_PROGRESS)
            elif key.channel == INBOX:
                claims[key] = Claim(ClaimState.SENT_NOW, row_id)
            else:
                claims[key] = Claim(ClaimState.CLAIMED, row_id)
        return claims

    @staticmethod
    async def _ledger_rows(
        session: AsyncSession, wanted: Sequence[DeliveryKey]
    ) -> dict[DeliveryKey, tuple[int, str, datetime | None]]:
        """Id, status and claim of each wanted delivery that is in the ledger."""
        found: dict[DeliveryKey, tuple[int, str, datetime | None]] = {}
        wanted_set = set(wanted)
        for chunk in chunked(sorted({want.escalation_key for want in wanted})):
            query = select(
                Delivery.id,
                Delivery.escalation_key,
                Delivery.staff_code,
                Delivery.channel,
                Delivery.status,
                Delivery.claimed_until,
            ).where(Delivery.escalation_key.in_(chunk))
            for row in await session.execute(query):
                key = DeliveryKey(row.escalation_key, row.staff_code, row.channel)
                if key in wanted_set:
                    found[key] = (row.id, row.status, row.claimed_until)
        return found

    async def mark_batch(self, sent: Sequence[int], failed: Mapping[int, str]) -> None:
        """Record the outcome of claimed deliveries, by id, in one transaction.

        Sent ones keep their first sent time; failed ones release their claim and keep the
        error, unless they were sent meanwhile.
        """
        if not sent and not failed:
            return
        now = self._now()
        by_error: dict[str, list[int]] = {}
        for row_id, error in failed.items():
            by_error.setdefault(error[:MAX_ERROR_LENGTH], []).append(row_id)
        async with self._sessions.begin() as session:
            for chunk in chunked(sorted(sent)):
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(chunk))
                    .values(
                        status=DeliveryStatus.SENT.value,
                        sent_at=func.coalesce(Delivery.sent_at, now),
                        claimed_until=None,
                        last_error=None,
                    )
                    .execution_options(**NO_UPDATE)
                )
            for error, ids in by_error.items():
                for chunk in chunked(sorted(ids)):
                    await session.execute(
                        update(Delivery)
                        .where(Delivery.id.in_(chunk), Delivery.status != DeliveryStatus.SENT.value)
                        .values(
                            status=DeliveryStatus.FAILED.value, claimed_until=None, last_error=error
                        )
                        .execution_options(**NO_UPDATE)
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

    async def delivery_rows(self, keys: Sequence[str]) -> dict[DeliveryKey, tuple[str, int]]:
        """Status and attempts of every delivery of these escalations (tests, benchmarks)."""
        found: dict[DeliveryKey, tuple[str, int]] = {}
        async with self._sessions() as session:
            for chunk in chunked(sorted(set(keys))):
                query = select(
                    Delivery.escalation_key,
                    Delivery.staff_code,
                    Delivery.channel,
                    Delivery.status,
                    Delivery.attempts,
                ).where(Delivery.escalation_key.in_(chunk))
                for row in await session.execute(query):
                    key = DeliveryKey(row.escalation_key, row.staff_code, row.channel)
                    found[key] = (row.status, row.attempts)
        return found

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
