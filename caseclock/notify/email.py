"""Deliver an alert by email over SMTP (stdlib ``smtplib``, run in a worker thread).

A batch of emails goes over one SMTP session; sessions are kept open (a few, briefly) for
the next batch. A connection the server dropped while idle is opened again before the
message is sent (a drop before ``MAIL FROM`` cannot have delivered anything); a drop after
it fails that email only, for the caller to retry.

Each message carries a ``Message-ID`` derived from the idempotency key and the recipient,
so a retried activity produces the same id and a mail system that de-duplicates by
``Message-ID`` drops the repeat. ``X-Caseclock-Key`` carries the key itself for audit.

A digest (many alerts to one recipient in one email) goes over the same sessions; its
``Message-ID`` is derived from the recipient and the sorted keys it covers, which
``X-Caseclock-Keys`` lists.
"""

import asyncio
import binascii
import hashlib
import io
import random
import re
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy, quoprimime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from caseclock.notify.message import AlertMessage, EmailContent
from caseclock.settings import SmtpSettings

KEY_HEADER = "X-Caseclock-Key"
# The keys a digest covers, sorted, separated by spaces.
KEYS_HEADER = "X-Caseclock-Keys"
# Open SMTP sessions kept for the next batch, and how long one may sit idle before reuse.
MAX_IDLE_SESSIONS = 4
# Sessions one batch sends over at once, and the emails that justify one more session.
MAX_PARALLEL_SESSIONS = 3
EMAILS_PER_SESSION = 16
IDLE_SECONDS = 30.0
# Plain header values (printable ASCII, single spaces), addresses and domains that
# EmailMessage writes back unchanged, and the digits of its MIME boundaries.
_PLAIN_HEADER = re.compile(r"[!-~]+(?: [!-~]+)*")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_DOT_ATOM_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@" + _DOMAIN.pattern)
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
_SUBJECT_CACHE = 4096
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_MAX_LINE = policy.SMTP.max_line_length or 78
_SNIFF_LINES = 10  # lines email.contentmanager looks at to choose QP or base64
SMTP_OK = 250
SMTP_WILL_FORWARD = 251
SMTP_CLOSING = 421
# Errors after which the server answered and the session was reset: it can carry the next.
_ANSWERED = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)


class EmailError(Exception):
    """Base class for email delivery problems."""


class EmailNotConfiguredError(EmailError):
    """Email is switched off (``smtp.host`` is empty); retrying will not help."""


class EmailDeliveryError(EmailError):
    """The SMTP server could not be reached or refused the message; the caller retries.

    Attributes:
        smtp_code: The server's reply code when it answered (4xx: try again later, 5xx:
            refused), or ``None`` when the connection itself failed.

    """

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One alert email to send: the recipient, the rendered alert, the notify action's key."""

    to_address: str
    message: AlertMessage
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class DigestEmail:
    """One digest email to send: the recipient, the rendered digest, the keys it covers."""

    to_address: str
    message: EmailContent
    keys: tuple[str, ...]


def message_id(idempotency_key: str, to_address: str, domain: str) -> str:
    """Derive a stable ``Message-ID`` for one alert to one recipient.

    Args:
        idempotency_key: The notify action's key.
        to_address: The recipient's address; compared case-insensitively.
        domain: The right-hand side of the id, normally the sender's domain.

    Returns:
        An RFC 5322 message id such as ``<3f2a...@caseclock.example>``.

    """
    seed = f"{idempotency_key}\n{to_address.strip().lower()}".encode()
    return f"<{hashlib.sha256(seed).hexdigest()[:40]}@{domain}>"


def digest_message_id(keys: Sequence[str], to_address: str, domain: str) -> str:
    """Derive a stable ``Message-ID`` for a digest of these alerts to one recipient.

    The same keys (in any order) to the same address give the same id, so a resend of the
    same digest is recognisable; a different set of keys gives another id, and none is the
    id of a single alert.

    Args:
        keys: The notify actions' keys the digest covers.
        to_address: The recipient's address; compared case-insensitively.
        domain: The right-hand side of the id, normally the sender's domain.

    Returns:
        An RFC 5322 message id such as ``<digest-3f2a...@caseclock.example>``.

    """
    covered = "\n".join(sorted(set(keys)))
    seed = f"digest\n{covered}\n\n{to_address.strip().lower()}".encode()
    # As long as a single alert's id (40 characters), so the header stays on one line as often.
    return f"<digest-{hashlib.sha256(seed).hexdigest()[:33]}@{domain}>"


class EmailSender:
    """Send alert emails through the configured SMTP server.

    Args:
        settings: SMTP host, port, credentials, STARTTLS switch, sender and timeout.
        tls_context: TLS context for STARTTLS; defaults to the system's trusted CAs with
            hostname checks. Pass one to trust a private CA.

    Raises:
        ValueError: A username is set without STARTTLS, which would send the password
            across the network in clear.

    """

    def __init__(self, settings: SmtpSettings, tls_context: ssl.SSLContext | None = None) -> None:
        if settings.username and not settings.starttls:
            msg = (
                "SMTP username is set but STARTTLS is off: the password would cross the network "
                "in clear; set CASECLOCK_SMTP__STARTTLS=true"
            )
            raise ValueError(msg)
        self._settings = settings
        self._tls_context = tls_context or ssl.create_default_context()
        domain = parseaddr(settings.sender)[1].rpartition("@")[2]
        self._domain = domain or "caseclock.invalid"
        self._lock = threading.Lock()
        self._idle: list[tuple[smtplib.SMTP, float]] = []
        # The From line as EmailMessage writes it (the fast path needs a plain sender).
        simple = _DOT_ATOM_ADDRESS.fullmatch(settings.sender) and _DOMAIN.fullmatch(self._domain)
        self._from_line = _header("From", settings.sender) if simple else None
        self._subject_lines: dict[str, bytes] = {}

    @property
    def enabled(self) -> bool:
        """Whether email is configured at all (``smtp.host`` is set)."""
        return bool(self._settings.host)

    def compose(
        self,
        to_address: str,
        message: AlertMessage,
        idempotency_key: str,
        *,
        date: str | None = None,
    ) -> EmailMessage:
        """Build the email for one recipient without sending it.

        Args:
            to_address: The recipient's address.
            message: The rendered alert.
            idempotency_key: The notify action's key.
            date: The ``Date`` header (RFC 5322 form); now if not given.

        Returns:
            A multipart/alternative email with text and HTML parts.

        Raises:
            ValueError: The key or address contains a line break or control character.

        """
        _check_printable(to_address, idempotency_key)
        mail = EmailMessage(policy=policy.SMTP)
        mail["From"] = self._settings.sender
        mail["To"] = to_address
        mail["Subject"] = message.subject
        mail["Date"] = date or format_datetime(datetime.now(UTC))
        mail["Message-ID"] = message_id(idempotency_key, to_address, self._domain)
        mail[KEY_HEADER] = idempotency_key
        # RFC 3834: tells out-of-office responders not to answer an automatic message.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text_body)
        mail.add_alternative(message.html_body, subtype="html")
        return mail

    def compose_digest(
        self,
        to_address: str,
        message: EmailContent,
        keys: Sequence[str],
        *,
        date: str | None = None,
    ) -> EmailMessage:
        """Build the digest email for one recipient without sending it.

        Args:
            to_address: The recipient's address.
            message: The rendered digest.
            keys: The notify actions' keys it covers; they fix the ``Message-ID``.
            date: The ``Date`` header (RFC 5322 form); now if not given.

        Returns:
            A multipart/alternative email with text and HTML parts.

        Raises:
            ValueError: A key or the address contains a control character, or a key a
                space (the keys header separates them with spaces), or there is no key.

        """
        if not keys:
            msg = "a digest covers at least one alert"
            raise ValueError(msg)
        for key in keys:
            _check_printable(to_address, key)
            if " " in key:
                msg = f"idempotency key {key!r} contains a space; refusing to list it"
                raise ValueError(msg)
        mail = EmailMessage(policy=policy.SMTP)
        mail["From"] = self._settings.sender
        mail["To"] = to_address
        mail["Subject"] = message.subject
        mail["Date"] = date or format_datetime(datetime.now(UTC))
        mail["Message-ID"] = digest_message_id(keys, to_address, self._domain)
        mail[KEYS_HEADER] = " ".join(sorted(set(keys)))
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text_body)
        mail.add_alternative(message.html_body, subtype="html")
        return mail

    def wire_bytes(
        self,
        to_address: str,
        message: AlertMessage,
        idempotency_key: str,
        *,
        date: str | None = None,
        boundary: str | None = None,
    ) -> tuple[bytes, list[str]]:
        """The email as sent: the bytes ``smtplib`` would send for :meth:`compose`'s message.

        An alert in plain ASCII headers (the usual case) is written directly, byte for byte
        what ``EmailMessage`` and its generator write (tests/test_notify_email.py checks
        it), at a fraction of the cost; anything else goes through :meth:`compose`.

        Returns:
            The message bytes and the ``MAIL FROM`` options they need.

        Raises:
            ValueError: The key or address contains a line break or control character.

        """
        _check_printable(to_address, idempotency_key)
        date = date or format_datetime(datetime.now(UTC))
        fast = self._fast_bytes(to_address, message, idempotency_key, date, boundary)
        if fast is not None:
            return fast, []
        mail = self.compose(to_address, message, idempotency_key, date=date)
        if boundary is not None:
            mail.set_boundary(boundary)
        return _flatten(mail, (self._settings.sender, to_address))

    def _fast_bytes(
        self,
        to_address: str,
        message: AlertMessage,
        key: str,
        date: str,
        boundary: str | None,
    ) -> bytes | None:
        """:meth:`compose`'s message flattened, written directly; None where it cannot be."""
        if not _DOT_ATOM_ADDRESS.fullmatch(to_address) or self._from_line is None:
            return None
        text = _encode_body(message.text_body)
        html = _encode_body(message.html_body)
        if text is None or html is None:
            return None
        subject = self._subject_lines.get(message.subject)
        if subject is None:
            if len(self._subject_lines) >= _SUBJECT_CACHE:
                self._subject_lines.clear()
            subject = self._subject_lines[message.subject] = _header("Subject", message.subject)
        (text_cte, text_body), (html_cte, html_body) = text, html
        while boundary is None or f"--{boundary}".encode() in text_body + html_body:
            boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="  # noqa: S311 - a MIME boundary, not a secret
        mark = boundary.encode("ascii")
        return b"".join(
            (
                self._from_line,
                _header("To", to_address),
                subject,
                _header("Date", date),
                _header("Message-ID", message_id(key, to_address, self._domain)),
                _header(KEY_HEADER, key),
                b"Auto-Submitted: auto-generated\r\n",
                b"MIME-Version: 1.0\r\n",
                b'Content-Type: multipart/alternative;\r\n boundary="' + mark + b'"\r\n',
                b"\r\n--" + mark + b"\r\n",
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: " + text_cte + b"\r\n\r\n",
                text_body,
                b"\r\n--" + mark + b"\r\n",
                b'Content-Type: text/html; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: " + html_cte + b"\r\n",
                b"MIME-Version: 1.0\r\n\r\n",
                html_body,
                b"\r\n--" + mark + b"--\r\n",
            )
        )

    async def send(self, to_address: str, message: AlertMessage, idempotency_key: str) -> None:
        """Send one alert to one recipient.

        Args:
            to_address: The recipient's address.
            message: The rendered alert.
            idempotency_key: The notify action's key; fixes the ``Message-ID``.

        Raises:
            EmailNotConfiguredError: Email is switched off.
            EmailDeliveryError: The server was unreachable or refused the message.
            ValueError: The key or address contains a line break or control character.

        """
        [error] = await self.send_many([OutgoingEmail(to_address, message, idempotency_key)])
        if error is not None:
            raise error

    async def send_many(
        self, emails: Sequence[OutgoingEmail | DigestEmail], *, start_by: float | None = None
    ) -> list[Exception | None]:
        """Send many alert and digest emails over a few SMTP sessions (one for a small batch).

        Args:
            emails: The emails to send: single alerts and digests alike.
            start_by: A ``time.monotonic()`` instant after which no email is started (the
                caller's claims run out); those left get an :class:`EmailDeliveryError`.

        Returns:
            For each email in order, None if the server accepted it, else the error
            (:class:`EmailNotConfiguredError`, :class:`EmailDeliveryError`, or
            ``ValueError`` for a control character in a key or the address).

        """
        if not emails:
            return []
        if not self.enabled:
            return [
                EmailNotConfiguredError(
                    f"email is not configured (CASECLOCK_SMTP__HOST is empty); {_what(email)}"
                )
                for email in emails
            ]
        # A few sessions side by side, each sending its share in order: the round trips of
        # one overlap with those of the others.
        sessions = min(MAX_PARALLEL_SESSIONS, -(-len(emails) // EMAILS_PER_SESSION))
        shares = [emails[start::sessions] for start in range(sessions)]
        sent = await asyncio.gather(
            *(asyncio.to_thread(self._send_all, share, start_by) for share in shares)
        )
        results: list[Exception | None] = [None] * len(emails)
        for start, outcome in enumerate(sent):
            results[start::sessions] = outcome
        return results

    def close(self) -> None:
        """Close the SMTP sessions kept open for the next batch."""
        with self._lock:
            idle, self._idle = self._idle, []
        for smtp, _ in idle:
            _quit(smtp)

    # In the worker thread ---------------------------------------------------------------

    def _send_all(
        self, emails: Sequence[OutgoingEmail | DigestEmail], start_by: float | None
    ) -> list[Exception | None]:
        results: list[Exception | None] = []
        smtp: smtplib.SMTP | None = None
        reused = False
        cannot_connect: Exception | None = None
        try:
            for email in emails:
                what = _what(email)
                if start_by is not None and time.monotonic() > start_by:
                    msg = (
                        f"email of {what} not started: the delivery claim would run out "
                        "first; it is retried later"
                    )
                    results.append(EmailDeliveryError(msg))
                    continue
                try:
                    wire = self._wire(email)
                except ValueError as exc:
                    results.append(exc)
                    continue
                if cannot_connect is not None:
                    # One failed connection fails the rest of the batch, without a wait each.
                    results.append(self._error(cannot_connect, what))
                    continue
                if smtp is None:
                    try:
                        smtp, reused = self._session()
                    except (smtplib.SMTPException, OSError) as exc:
                        cannot_connect = exc
                        results.append(self._error(exc, what))
                        continue
                try:
                    smtp = self._transmit(smtp, reused, wire, email.to_address)
                except (smtplib.SMTPException, OSError) as exc:
                    results.append(self._error(exc, what))
                    if smtp.sock is None or not isinstance(exc, _ANSWERED):
                        smtp.close()
                        smtp = None
                    continue
                reused = True
                results.append(None)
        finally:
            if smtp is not None:
                self._release(smtp)
        return results

    def _wire(self, email: OutgoingEmail | DigestEmail) -> tuple[bytes, list[str]]:
        """The bytes and ``MAIL FROM`` options of one email, single alert or digest."""
        if isinstance(email, OutgoingEmail):
            return self.wire_bytes(email.to_address, email.message, email.idempotency_key)
        mail = self.compose_digest(email.to_address, email.message, email.keys)
        return _flatten(mail, (self._settings.sender, email.to_address))

    def _session(self) -> tuple[smtplib.SMTP, bool]:
        """An open session: an idle one if there is a fresh one, else a new one."""
        now = time.monotonic()
        stale: list[smtplib.SMTP] = []
        found: smtplib.SMTP | None = None
        with self._lock:
            while self._idle and found is None:
                smtp, since = self._idle.pop()
                if now - since < IDLE_SECONDS:
                    found = smtp
                else:
                    stale.append(smtp)
        for smtp in stale:
            _quit(smtp)
        if found is not None:
            return found, True
        return self._connect(), False

    def _release(self, smtp: smtplib.SMTP) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_SESSIONS:
                self._idle.append((smtp, time.monotonic()))
                return
        _quit(smtp)

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        try:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=self._tls_context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _transmit(
        self, smtp: smtplib.SMTP, reused: bool, wire: tuple[bytes, list[str]], to_address: str
    ) -> smtplib.SMTP:
        """Send one message; returns the session it went over (a new one after a drop).

        Raises:
            smtplib.SMTPException, OSError: As ``smtplib`` raises them.

        """
        sender = self._settings.sender
        flat, options = wire[0], list(wire[1])
        if smtp.does_esmtp and smtp.has_extn("size"):
            options.append(f"size={len(flat)}")
        try:
            code, reply = smtp.mail(sender, options)
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            code, reply = SMTP_CLOSING, b"connection dropped while idle"
        if code == SMTP_CLOSING and reused:  # nothing was sent: a new session may send it
            smtp.close()
            smtp = self._connect()
            code, reply = smtp.mail(sender, options)
        if code != SMTP_OK:
            _reset(smtp, code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = smtp.rcpt(to_address)
        if code not in (SMTP_OK, SMTP_WILL_FORWARD):
            _reset(smtp, code)
            raise smtplib.SMTPRecipientsRefused({to_address: (code, reply)})
        code, reply = smtp.data(flat)
        if code != SMTP_OK:
            _reset(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
        return smtp

    def _error(self, exc: Exception, what: str) -> EmailDeliveryError:
        """The delivery error for what ``smtplib`` raised, naming the server and the email."""
        settings = self._settings
        where = f"{settings.host}:{settings.port}"
        if isinstance(exc, smtplib.SMTPResponseException):
            error = exc.smtp_error
            reply = error.decode(errors="replace") if isinstance(error, bytes) else error
            msg = f"SMTP server {where} refused {what}: {exc.smtp_code} {reply}"
            failure = EmailDeliveryError(msg, smtp_code=exc.smtp_code)
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            msg = f"SMTP server {where} refused the recipient of {what}: {codes}"
            failure = EmailDeliveryError(msg, smtp_code=codes[0] if codes else None)
        else:
            msg = f"SMTP delivery of {what} via {where} failed: {exc!r}"
            failure = EmailDeliveryError(msg)
        failure.__cause__ = exc
        return failure


def _what(email: OutgoingEmail | DigestEmail) -> str:
    """The email as errors name it: "alert <key>", or "a digest of <n> alerts"."""
    if isinstance(email, OutgoingEmail):
        return f"alert {email.idempotency_key}"
    return f"a digest of {len(email.keys)} alerts"


def _check_printable(to_address: str, idempotency_key: str) -> None:
    for name, value in (("idempotency key", idempotency_key), ("address", to_address)):
        if not value.isprintable():
            msg = f"{name} {value!r} contains a control character; refusing to build headers"
            raise ValueError(msg)


def _header(name: str, value: str) -> bytes:
    """A header line as ``EmailMessage`` (policy SMTP) writes it; directly when it is plain."""
    if (
        len(name) + 2 + len(value) <= _MAX_LINE
        and _PLAIN_HEADER.fullmatch(value)
        and "=?" not in value  # an encoded word would be decoded, then written again
    ):
        return f"{name}: {value}\r\n".encode("ascii")
    return policy.SMTP.fold_binary(*policy.SMTP.header_store_parse(name, value))


def _encode_body(text: str) -> tuple[bytes, bytes] | None:
    """Transfer encoding and wire bytes of a utf-8 text part, as ``set_content`` chooses them.

    The same heuristic as ``email.contentmanager`` under policy SMTP: 7bit when every line
    is ASCII and short enough, else quoted-printable or base64, whichever the first ten lines
    say is shorter. None for 8bit (short non-ASCII lines), which the slow path writes.
    """
    limit = _MAX_LINE
    lines = text.encode("utf-8").splitlines()
    if max((len(line) for line in lines), default=0) <= limit:
        body = b"\n".join(lines) + b"\n"
        if not body.isascii():
            return None
        return b"7bit", _mangle_from(body.replace(b"\n", b"\r\n"))
    sniff = b"\r\n".join(lines[:_SNIFF_LINES]) + b"\r\n"
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), limit)
    if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        embedded = b"\r\n".join(lines) + b"\r\n"
        step = limit // 4 * 3
        chunks = (embedded[i : i + step] for i in range(0, len(embedded), step))
        data = b"".join(binascii.b2a_base64(chunk) for chunk in chunks)
        return b"base64", data.replace(b"\n", b"\r\n")
    if len(lines) > _SNIFF_LINES:
        normal = (b"\n".join(lines) + b"\n").decode("latin-1")
        sniff_qp = quoprimime.body_encode(normal, limit)
    return b"quoted-printable", _mangle_from(sniff_qp.encode("ascii").replace(b"\n", b"\r\n"))


def _mangle_from(body: bytes) -> bytes:
    # smtplib's generator writes a line starting "From " as ">From " (mbox quoting).
    return _FROM_LINE.sub(b">From ", body) if b"From " in body else body


def _flatten(mail: EmailMessage, addresses: tuple[str, ...]) -> tuple[bytes, list[str]]:
    """The message's bytes and MAIL options, as ``smtplib.SMTP.send_message`` makes them."""
    with io.BytesIO() as out:
        if all(address.isascii() for address in addresses):
            BytesGenerator(out).flatten(mail, linesep="\r\n")
            return out.getvalue(), []
        # An address beyond ASCII needs SMTPUTF8, as send_message would ask for it.
        BytesGenerator(out, policy=policy.SMTPUTF8).flatten(mail, linesep="\r\n")
        return out.getvalue(), ["SMTPUTF8", "BODY=8BITMIME"]


def _reset(smtp: smtplib.SMTP, code: int) -> None:
    if code == SMTP_CLOSING:
        smtp.close()
        return
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        smtp.close()  # the refusal is what the caller reports, not the failed reset


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
