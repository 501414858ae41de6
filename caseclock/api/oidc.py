"""OpenID Connect bearer tokens: JWTs verified against the issuer's published keys (JWKS).

The key set is fetched from ``settings.auth.oidc_jwks_url`` and cached; a token signed by a
key the cache does not know triggers one refetch (at most every ``min_refresh``), so the
issuer can rotate keys without a restart and a flood of unknown key ids cannot turn the
API into a proxy hammering the issuer. Only asymmetric algorithms are accepted, each bound
to its key: an unsigned token (``alg: none``) or one signed with a public key used as an
HMAC secret is refused.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

from caseclock.settings import AuthSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
JWKS_TTL_SECONDS = 600.0
JWKS_MIN_REFRESH_SECONDS = 30.0
JWKS_TIMEOUT_SECONDS = 5.0
# Clock skew tolerated between the issuer and this server.
LEEWAY_SECONDS = 30


class OidcError(Exception):
    """A bearer JWT was refused; the message says why, without quoting the token."""


@dataclass(frozen=True)
class OidcIdentity:
    """Who a verified token says the caller is."""

    subject: str
    roles: frozenset[str]
    staff_code: str | None


class JwksCache:
    """The issuer's signing keys, fetched on demand and kept for a while.

    Args:
        url: Where the issuer publishes its JSON Web Key Set.
        ttl: Seconds a fetched key set is trusted.
        min_refresh: Seconds between fetches caused by unknown key ids.
        clock: A monotonic clock, replaceable in tests.

    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = JWKS_TTL_SECONDS,
        min_refresh: float = JWKS_MIN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._log = structlog.get_logger(__name__)

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key with this id (or the only key, when the token names none).

        Raises:
            OidcError: If no such key is published, or the key set cannot be fetched.

        """
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > self._ttl
            may_refresh = self._fetched_at is None or now - self._fetched_at > self._min_refresh
            if stale or (self._find(kid) is None and may_refresh):
                await self._fetch(now)
            found = self._find(kid)
        if found is None:
            raise OidcError("the token is signed by a key the issuer does not publish")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            keys = list(self._keys.values())
            return keys[0] if len(keys) == 1 else None
        return self._keys.get(kid)

    async def _fetch(self, now: float) -> None:
        try:
            async with httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS) as http:
                response = await http.get(self._url)
                response.raise_for_status()
                data: Any = response.json()
        except (httpx.HTTPError, ValueError) as error:
            self._log.warning("jwks_fetch_failed", error_type=type(error).__name__)
            if not self._keys:
                raise OidcError("the issuer's keys cannot be fetched just now") from error
            return  # keep serving with the keys we have
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError:
                continue  # a key type or algorithm this server does not use
            if key.algorithm_name in ALGORITHMS:
                keys[entry.get("kid")] = key
        self._keys = keys
        self._fetched_at = now
        self._log.info("jwks_fetched", keys=len(keys))


class OidcVerifier:
    """Verifies people's bearer JWTs: signature, expiry, issuer and audience.

    Args:
        settings: The auth settings (issuer, audience, claims).
        jwks: The issuer's keys.

    """

    def __init__(self, settings: AuthSettings, jwks: JwksCache) -> None:
        self._settings = settings
        self._jwks = jwks

    async def verify(self, token: str) -> OidcIdentity:
        """The identity in a valid token.

        Raises:
            OidcError: If the token is malformed, unsigned, signed by an unknown key,
                expired, not yet valid, or for another issuer or audience.

        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise OidcError("the bearer token is neither an API token nor a JWT") from error
        if header.get("alg") not in ALGORITHMS:
            raise OidcError("the token's signing algorithm is not accepted")
        kid = header.get("kid")
        key = await self._jwks.key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self._settings.oidc_audience,
                issuer=self._settings.oidc_issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise OidcError("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise OidcError("the token is for another audience") from error
        except jwt.InvalidIssuerError as error:
            raise OidcError("the token is from another issuer") from error
        except jwt.InvalidSignatureError as error:
            raise OidcError("the token's signature does not verify") from error
        except jwt.PyJWTError as error:
            raise OidcError(f"the token is invalid ({type(error).__name__})") from error
        return OidcIdentity(
            subject=str(claims["sub"]),
            roles=_roles(claims.get(self._settings.roles_claim)),
            staff_code=_staff_code(claims.get(self._settings.staff_claim)),
        )


def _roles(value: object) -> frozenset[str]:
    # Issuers send roles as a list or as one space-separated string.
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def _staff_code(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
