"""Deliver an alert by email over SMTP (stdlib ``smtplib``, run in a worker thread).

Each message carries a ``Message-ID`` derived from the idempotency key and the recipient,
so a retried activity produces the same id and a mail system that de-duplicates by
``Message-ID`` drops the repeat. ``X-Caseclock-Key`` carries the key itself for audit.
"""

import asyncio
import hashlib
import smtplib
import ssl
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from caseclock.notify.message import AlertMessage
from caseclock.settings import SmtpSettings

KEY_HEADER = "X-Caseclock-Key"


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

    @property
    def enabled(self) -> bool:
        """Whether email is configured at all (``smtp.host`` is set)."""
        return bool(self._settings.host)

    def compose(self, to_address: str, message: AlertMessage, idempotency_key: str) -> EmailMessage:
        """Build the email for one recipient without sending it.

        Args:
            to_address: The recipient's address.
            message: The rendered alert.
            idempotency_key: The notify action's key.

        Returns:
            A multipart/alternative email with text and HTML parts.

        Raises:
            ValueError: The key or address contains a line break or control character.

        """
        for name, value in (("idempotency key", idempotency_key), ("address", to_address)):
            if not value.isprintable():
                msg = f"{name} {value!r} contains a control character; refusing to build headers"
                raise ValueError(msg)
        mail = EmailMessage(policy=policy.SMTP)
        mail["From"] = self._settings.sender
        mail["To"] = to_address
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = message_id(idempotency_key, to_address, self._domain)
        mail[KEY_HEADER] = idempotency_key
        # RFC 3834: tells out-of-office responders not to answer an automatic message.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text_body)
        mail.add_alternative(message.html_body, subtype="html")
        return mail

    async def send(self, to_address: str, message: AlertMessage, idempotency_key: str) -> None:
        """Send one alert to one recipient.

        Args:
            to_address: The recipient's address.
            message: The rendered alert.
            idempotency_key: The notify action's key; fixes the ``Message-ID``.

        Raises:
            EmailNotConfiguredError: Email is switched off.
            EmailDeliveryError: The server was unreachable or refused the message.

        """
        if not self.enabled:
            msg = (
                f"email is not configured (CASECLOCK_SMTP__HOST is empty); alert {idempotency_key}"
            )
            raise EmailNotConfiguredError(msg)
        mail = self.compose(to_address, message, idempotency_key)
        await asyncio.to_thread(self._deliver, mail, to_address, idempotency_key)

    def _deliver(self, mail: EmailMessage, to_address: str, idempotency_key: str) -> None:
        settings = self._settings
        where = f"{settings.host}:{settings.port}"
        try:
            with smtplib.SMTP(
                settings.host, settings.port, timeout=settings.timeout_seconds
            ) as smtp:
                smtp.ehlo()
                if settings.starttls:
                    smtp.starttls(context=self._tls_context)
                    smtp.ehlo()
                if settings.username:
                    smtp.login(settings.username, settings.password.get_secret_value())
                smtp.send_message(mail, from_addr=settings.sender, to_addrs=[to_address])
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            reply = error.decode(errors="replace") if isinstance(error, bytes) else error
            msg = f"SMTP server {where} refused alert {idempotency_key}: {exc.smtp_code} {reply}"
            raise EmailDeliveryError(msg, smtp_code=exc.smtp_code) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            msg = f"SMTP server {where} refused the recipient of alert {idempotency_key}: {codes}"
            raise EmailDeliveryError(msg, smtp_code=codes[0] if codes else None) from exc
        except (smtplib.SMTPException, OSError) as exc:
            msg = f"SMTP delivery of alert {idempotency_key} via {where} failed: {exc!r}"
            raise EmailDeliveryError(msg) from exc
