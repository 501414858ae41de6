"""API tokens: issued once, stored as a hash, found by their public id, revocable.

A token reads ``cc_<id>_<secret>``: ``id`` is 12 hex characters kept in clear so that a
presented token is looked up by primary key, and ``secret`` is 32 random bytes
(URL-safe base64). Only the SHA-256 of the secret is stored. A slow password hash adds
nothing for a 256-bit random secret, and a fast hash keeps every request cheap; the
comparison is constant-time.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.db.deliveries import NO_UPDATE, utc_now
from caseclock.db.models import ApiToken

TOKEN_PREFIX = "cc_"  # noqa: S105 (the public prefix of every token, not a secret)
LAST_USED_RESOLUTION = timedelta(minutes=1)
_TOKEN = re.compile(r"^cc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class TokenView(BaseModel):
    """A token as listed: everything but the secret, which is never kept."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: str
    label: str
    staff_code: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None


class IssuedToken(BaseModel):
    """A newly issued token: ``token`` is shown this once and cannot be recovered."""

    model_config = ConfigDict(frozen=True)

    token: str
    view: TokenView


class UnknownTokenError(LookupError):
    """No token has this id."""

    def __init__(self, token_id: str) -> None:
        super().__init__(f"no API token has the id {token_id!r}")
        self.token_id = token_id


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_token(value: str) -> bool:
    """Whether a bearer value is shaped like a Caseclock API token (not a JWT)."""
    return value.startswith(TOKEN_PREFIX)


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        id=row.id,
        role=row.role,
        label=row.label,
        staff_code=row.staff_code,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
    )


class TokenStore:
    """Issue, verify, list and revoke API tokens.

    Args:
        session_factory: Sessions for the read-model database.
        now: The clock, replaceable in tests.

    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory
        self._now = now

    async def issue(
        self, role: str, label: str, staff_code: str | None, created_by: str
    ) -> IssuedToken:
        """Create a token; the returned ``token`` is the only copy of the secret."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = ApiToken(
            id=token_id,
            secret_hash=_hash(secret),
            role=role,
            label=label,
            staff_code=staff_code,
            created_at=self._now(),
            created_by=created_by,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return IssuedToken(token=f"{TOKEN_PREFIX}{token_id}_{secret}", view=_view(row))

    async def verify(self, token: str) -> TokenView | None:
        """The token's view if it is well formed, known, unrevoked and its secret matches."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        token_id, secret = match.groups()
        async with self._sessions() as session:
            row = await session.get(ApiToken, token_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        now = self._now()
        # Written at most once a minute per token: a write per request would contend for
        # SQLite's write lock with the worker.
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            await self._mark_used(token_id, now)
        return _view(row)

    async def _mark_used(self, token_id: str, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id)
                .values(last_used_at=now)
                .execution_options(**NO_UPDATE)
            )

    async def list_tokens(self) -> list[TokenView]:
        """Every token, newest first, without secrets."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id)
            )
            return [_view(row) for row in rows]

    async def revoke(self, token_id: str, revoked_by: str) -> TokenView:
        """Revoke a token; revoking it again keeps the first revocation.

        Raises:
            UnknownTokenError: If no token has this id.

        """
        async with self._sessions.begin() as session:
            await session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=self._now(), revoked_by=revoked_by)
                .execution_options(**NO_UPDATE)
            )
            row = await session.get(ApiToken, token_id)
            if row is None:
                raise UnknownTokenError(token_id)
            await session.refresh(row)
            return _view(row)
