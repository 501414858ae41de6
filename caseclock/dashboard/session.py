"""People's sessions: a cookie signed with ``settings.auth.session_secret``, and CSRF tokens.

The cookie holds who signed in (staff code, roles, how), when the session ends, and the
session's CSRF token; it is signed with HMAC-SHA256 under a key derived from the session
secret for this purpose only, so a value signed for something else (a sign-in form token, a
message shown after a redirect) is never accepted as a session. The cookie is ``HttpOnly``
and ``SameSite=Lax``, and ``Secure`` with the ``__Host-`` prefix outside development.

Sessions are stateless: signing out removes the cookie from the browser; a copy taken
before cannot be revoked, so a session lasts a working day at most (:data:`SESSION_HOURS`).
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from caseclock.api.auth import Principal, Role

SESSION_HOURS = 8
FLASH_SECONDS = 120
SIGN_IN_FORM_SECONDS = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs small JSON values with a key derived from a secret and a purpose.

    Args:
        secret: The session secret.
        purpose: What the values are for; values signed for one purpose fail for another.

    """

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, data: dict[str, Any], lifetime: int, now: float | None = None) -> str:
        """``data`` with an expiry ``lifetime`` seconds on, as ``payload.signature``."""
        expires = int((time.time() if now is None else now) + lifetime)
        payload = _b64(json.dumps({**data, "exp": expires}, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, value: str | None, now: float | None = None) -> dict[str, Any] | None:
        """The data of a value this signer signed and that has not expired, else None."""
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int):
            return None
        if data["exp"] <= (time.time() if now is None else now):
            return None
        return data


@dataclass(frozen=True)
class Session:
    """A signed-in person: who, with which roles, how they signed in, and the CSRF token."""

    actor: str
    staff_code: str | None
    roles: frozenset[Role]
    via: str
    name: str
    csrf: str

    @property
    def principal(self) -> Principal:
        """The person as the API's scoping and audit code knows callers."""
        return Principal(
            actor=self.actor, roles=self.roles, staff_code=self.staff_code, via=self.via
        )

    def has(self, *roles: Role) -> bool:
        """Whether the person holds any of these roles."""
        return bool(self.roles.intersection(roles))

    def to_data(self) -> dict[str, Any]:
        """What the cookie carries."""
        return {
            "actor": self.actor,
            "staff": self.staff_code,
            "roles": sorted(role.value for role in self.roles),
            "via": self.via,
            "name": self.name,
            "csrf": self.csrf,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "Session | None":
        """The session a verified cookie describes, or None if it is not one."""
        try:
            return cls(
                actor=str(data["actor"]),
                staff_code=None if data["staff"] is None else str(data["staff"]),
                roles=frozenset(Role(role) for role in data["roles"]),
                via=str(data["via"]),
                name=str(data["name"]),
                csrf=str(data["csrf"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def new_session(principal: Principal, name: str) -> Session:
    """A fresh session for someone who just signed in, with a new CSRF token."""
    return Session(
        actor=principal.actor,
        staff_code=principal.staff_code,
        roles=principal.roles,
        via=principal.via,
        name=name,
        csrf=secrets.token_urlsafe(32),
    )


class SessionCookies:
    """Reads and writes the session cookie, the sign-in form cookie and flash messages.

    Args:
        secret: ``settings.auth.session_secret``.
        secure: Whether cookies are ``Secure`` (and the session's name ``__Host-``).

    """

    def __init__(self, secret: str, secure: bool) -> None:
        self._sessions = Signer(secret, "caseclock.dashboard.session")
        self._forms = Signer(secret, "caseclock.dashboard.sign-in-form")
        self._flashes = Signer(secret, "caseclock.dashboard.flash")
        self.secure = secure
        self.session_name = "__Host-caseclock-session" if secure else "caseclock_session"
        self.form_name = "__Host-caseclock-sign-in" if secure else "caseclock_sign_in"
        self.flash_name = "__Host-caseclock-flash" if secure else "caseclock_flash"

    def _set(self, response: Response, name: str, value: str, lifetime: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=lifetime,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def _clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")

    # The session ----------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        """The request's valid session, or None."""
        data = self._sessions.unsign(request.cookies.get(self.session_name))
        return None if data is None else Session.from_data(data)

    def start(self, response: Response, session: Session) -> None:
        """Sign a session into the response's cookie."""
        lifetime = SESSION_HOURS * 3600
        self._set(
            response, self.session_name, self._sessions.sign(session.to_data(), lifetime), lifetime
        )
        self._clear(response, self.form_name)

    def end(self, response: Response) -> None:
        """Remove the session cookie."""
        self._clear(response, self.session_name)

    # The sign-in form (before there is a session): a double-submit token --------------

    def form_token(self, request: Request) -> tuple[str, str | None]:
        """The sign-in form's CSRF token, and a cookie to set (None: the browser has it)."""
        data = self._forms.unsign(request.cookies.get(self.form_name))
        if data is not None and isinstance(data.get("token"), str):
            return str(data["token"]), None
        token = secrets.token_urlsafe(32)
        return token, self._forms.sign({"token": token}, SIGN_IN_FORM_SECONDS)

    def set_form_cookie(self, response: Response, value: str) -> None:
        """Give the browser the sign-in form's token cookie."""
        self._set(response, self.form_name, value, SIGN_IN_FORM_SECONDS)

    def form_token_ok(self, request: Request, submitted: str) -> bool:
        """Whether a submitted sign-in form carries the token its cookie holds."""
        data = self._forms.unsign(request.cookies.get(self.form_name))
        expected = data.get("token") if data is not None else None
        return isinstance(expected, str) and hmac.compare_digest(
            expected.encode(), submitted.encode()
        )

    # Flash messages: a success banner shown once after a redirect ----------------------

    def flash(self, response: Response, kind: str, text: str) -> None:
        """Show a message on the next page (``kind``: success or information)."""
        value = self._flashes.sign({"kind": kind, "text": text}, FLASH_SECONDS)
        self._set(response, self.flash_name, value, FLASH_SECONDS)

    def read_flash(self, request: Request) -> dict[str, str] | None:
        """The message to show on this page, if any (clear it with :meth:`clear_flash`)."""
        data = self._flashes.unsign(request.cookies.get(self.flash_name))
        if data is None:
            return None
        return {"kind": str(data.get("kind", "success")), "text": str(data.get("text", ""))}

    def clear_flash(self, request: Request, response: Response) -> None:
        """Remove a flash message the browser sent, once it has been shown."""
        if self.flash_name in request.cookies:
            self._clear(response, self.flash_name)


def csrf_ok(session: Session, submitted: str | None) -> bool:
    """Whether a form posted in a session carries that session's CSRF token."""
    return submitted is not None and hmac.compare_digest(session.csrf.encode(), submitted.encode())
