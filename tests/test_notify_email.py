"""Email delivery against a real SMTP server (aiosmtpd) on loopback."""

import html
import io
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.core.deadline import Deadline
from caseclock.notify.email import (
    KEY_HEADER,
    EmailDeliveryError,
    EmailNotConfiguredError,
    EmailSender,
    message_id,
)
from caseclock.notify.message import AlertMessage, render_alert
from caseclock.settings import SmtpSettings
from caseclock.units import Counting, Unit

SENDER = "caseclock@alerts.example.gov.uk"
RECIPIENT = "sam.patel@council.example.gov.uk"
KEY = "CASE-0001/assessment/1/2"
PASSWORD = "correct-horse-battery"  # noqa: S105 - test server's password, nothing real


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mailbox:
    """An aiosmtpd handler that keeps every envelope, or refuses with a fixed reply."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse_with: str | None = None

    async def handle_DATA(  # noqa: N802 - the hook name aiosmtpd looks up
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def last(self) -> EmailMessage:
        content = self.envelopes[-1].original_content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def make_action() -> NotifyAction:
    deadline = Deadline(
        rule_id="cfa-45",
        rule_title="Child and family assessment",
        definition_id="cin",
        definition_version="3",
        start_event_type="referral_accepted",
        start_event_id="EV-0001",
        start_date=date(2020, 11, 16),
        amount=45,
        unit=Unit.WORKING_DAYS,
        counting=Counting.DAY_AFTER_IS_DAY_1,
        calendar_id="england-and-wales-2021.1",
        due_date=date(2021, 1, 14),
        due_at=datetime(2021, 1, 14, 23, 59, 59, tzinfo=UTC),
    )
    return NotifyAction(
        key=KEY,
        case_ref="CASE-0001",
        clock_id="assessment",
        clock_title="Child and family assessment",
        occurrence=1,
        level=2,
        level_name="team manager",
        covers_levels=(2,),
        roles=("social_worker", "team_manager"),
        state=AlertState.OVERDUE,
        fire_at=datetime(2021, 1, 18, 9, tzinfo=UTC),
        deadline=deadline,
        what_to_do="Complete the assessment and record the outcome.",
    )


@pytest.fixture(scope="module")
def alert() -> AlertMessage:
    return render_alert(
        make_action(), "Sam Patel", "team_manager", None, "https://caseclock.example.gov.uk"
    )


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def plain_settings(port: int, **overrides: Any) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, sender=SENDER, timeout_seconds=5, **overrides)


async def test_delivers_the_alert_to_the_recipient(
    mailbox: tuple[Mailbox, int], alert: AlertMessage
) -> None:
    handler, port = mailbox

    await EmailSender(plain_settings(port)).send(RECIPIENT, alert, KEY)

    envelope = handler.envelopes[-1]
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == [RECIPIENT]
    mail = handler.last()
    assert mail["To"] == RECIPIENT
    assert mail["From"] == SENDER
    assert mail["Subject"] == alert.subject
    assert mail[KEY_HEADER] == KEY
    assert mail["Auto-Submitted"] == "auto-generated"
    text_part = mail.get_body(preferencelist=("plain",))
    html_part = mail.get_body(preferencelist=("html",))
    assert isinstance(text_part, EmailMessage)
    assert isinstance(html_part, EmailMessage)
    text = text_part.get_content()
    assert "Case CASE-0001: Child and family assessment is overdue." in text
    assert make_action().deadline.explain() in text
    assert "https://caseclock.example.gov.uk/escalations/CASE-0001/assessment/1/2" in text
    assert "Child and family assessment" in html_part.get_content()


async def test_carries_nothing_but_the_alert(
    mailbox: tuple[Mailbox, int], alert: AlertMessage
) -> None:
    handler, port = mailbox

    await EmailSender(plain_settings(port)).send(RECIPIENT, alert, KEY)

    mail = handler.last()
    assert set(mail.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        KEY_HEADER,
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    }
    text_part = mail.get_body(preferencelist=("plain",))
    assert isinstance(text_part, EmailMessage)
    assert text_part.get_content().replace("\r\n", "\n") == alert.text_body
    raw = handler.envelopes[-1].original_content
    assert isinstance(raw, bytes)
    assert PASSWORD.encode() not in raw


async def test_message_id_is_derived_from_key_and_recipient(
    mailbox: tuple[Mailbox, int], alert: AlertMessage
) -> None:
    handler, port = mailbox
    sender = EmailSender(plain_settings(port))

    await sender.send(RECIPIENT, alert, KEY)
    await sender.send(RECIPIENT.upper(), alert, KEY)
    await sender.send("jo.bloggs@council.example.gov.uk", alert, KEY)
    await sender.send(RECIPIENT, alert, "CASE-0001/assessment/1/3")

    ids = [
        message_from_bytes(envelope.original_content or b"", policy=policy.default)["Message-ID"]
        for envelope in handler.envelopes
    ]
    assert ids[0] == message_id(KEY, RECIPIENT, "alerts.example.gov.uk")
    assert ids[0].endswith("@alerts.example.gov.uk>")
    assert ids[1] == ids[0]
    assert len({ids[0], ids[2], ids[3]}) == 3


async def test_refusal_raises_with_the_reply_code(
    mailbox: tuple[Mailbox, int], alert: AlertMessage
) -> None:
    handler, port = mailbox
    handler.refuse_with = "451 4.3.0 Try again later"

    with pytest.raises(
        EmailDeliveryError, match=r"refused alert CASE-0001/assessment/1/2: 451"
    ) as info:
        await EmailSender(plain_settings(port)).send(RECIPIENT, alert, KEY)

    assert info.value.smtp_code == 451


async def test_unreachable_server_raises(alert: AlertMessage) -> None:
    with pytest.raises(EmailDeliveryError, match="failed") as info:
        await EmailSender(plain_settings(free_port())).send(RECIPIENT, alert, KEY)

    assert info.value.smtp_code is None


async def test_email_switched_off_raises_a_distinct_error(alert: AlertMessage) -> None:
    sender = EmailSender(SmtpSettings(host=""))

    assert not sender.enabled
    with pytest.raises(EmailNotConfiguredError, match="not configured"):
        await sender.send(RECIPIENT, alert, KEY)


def test_login_without_starttls_is_refused() -> None:
    settings = SmtpSettings(host="127.0.0.1", username="alerts", password=SecretStr(PASSWORD))

    with pytest.raises(ValueError, match="STARTTLS is off"):
        EmailSender(settings)


def test_header_injection_through_the_key_is_refused(alert: AlertMessage) -> None:
    with pytest.raises(ValueError, match="control character"):
        EmailSender(plain_settings(25)).compose(RECIPIENT, alert, "CASE-0001\r\nBcc: x@y.z")


# STARTTLS and AUTH, against a server with a self-signed certificate for 127.0.0.1.


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def check_password(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    accepted = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"alerts"
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False makes aiosmtpd answer 535 itself; the default leaves the client waiting.
    return AuthResult(success=accepted, handled=False)


@pytest.fixture
def secure_mailbox(certificate: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int]]:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*certificate)
    handler = Mailbox()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=check_password,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield handler, port
    controller.stop()


def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


async def test_starttls_and_login(
    secure_mailbox: tuple[Mailbox, int], certificate: tuple[Path, Path], alert: AlertMessage
) -> None:
    handler, port = secure_mailbox
    settings = plain_settings(port, starttls=True, username="alerts", password=SecretStr(PASSWORD))

    await EmailSender(settings, tls_context=trusting(certificate)).send(RECIPIENT, alert, KEY)

    assert handler.envelopes[-1].rcpt_tos == [RECIPIENT]
    assert handler.last()[KEY_HEADER] == KEY


async def test_wrong_password_raises(
    secure_mailbox: tuple[Mailbox, int], certificate: tuple[Path, Path], alert: AlertMessage
) -> None:
    _, port = secure_mailbox
    settings = plain_settings(port, starttls=True, username="alerts", password=SecretStr("nope"))

    with pytest.raises(EmailDeliveryError, match="535") as info:
        await EmailSender(settings, tls_context=trusting(certificate)).send(RECIPIENT, alert, KEY)

    assert info.value.smtp_code == 535


async def test_untrusted_certificate_raises(
    secure_mailbox: tuple[Mailbox, int], alert: AlertMessage
) -> None:
    _, port = secure_mailbox
    settings = plain_settings(port, starttls=True, username="alerts", password=SecretStr(PASSWORD))

    with pytest.raises(EmailDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        await EmailSender(settings).send(RECIPIENT, alert, KEY)


# The email written directly is the email EmailMessage writes, byte for byte.

DATE = "Mon, 18 Jan 2021 09:00:00 +0000"
BOUNDARY = "===============1234567890123456789=="
_words = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABC0123456789 .,:;'()=?<>&\"-_/éłß€"),
    max_size=30,
)


def written_by_email_message(
    sender: EmailSender, to: str, message: AlertMessage, key: str
) -> bytes:
    mail = sender.compose(to, message, key, date=DATE)
    mail.set_boundary(BOUNDARY)
    # What smtplib.SMTP.send_message sends: SMTPUTF8 for an address beyond ASCII.
    utf8 = policy.SMTPUTF8 if not to.isascii() else None
    with io.BytesIO() as out:
        BytesGenerator(out, policy=utf8).flatten(mail, linesep="\r\n")
        return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    subject=st.lists(_words, min_size=1, max_size=8).map(" ".join),
    lines=st.lists(
        st.one_of(_words, st.text(max_size=120), st.just("From here on"), st.just("x" * 79)),
        max_size=25,
    ),
    key=st.from_regex(r"[A-Za-z0-9/_-]{1,90}", fullmatch=True),
    to=st.sampled_from(
        [RECIPIENT, "a.b+c@x.org", "Jo Bloggs <jo@x.org>", "odd..dots@x.org", "ünï@x.org"]
    ),
)
def test_the_email_on_the_wire_is_what_email_message_writes(
    subject: str, lines: list[str], key: str, to: str
) -> None:
    text = "\n".join(lines) + "\n"
    message = AlertMessage(
        subject=" ".join(subject.split()) or "Alert",
        text_body=text,
        html_body=f"<p>{html.escape(text)}</p>\n",
        webhook_json={},
    )
    sender = EmailSender(plain_settings(25))

    wire, _ = sender.wire_bytes(to, message, key, date=DATE, boundary=BOUNDARY)

    assert wire == written_by_email_message(sender, to, message, key)


def test_an_ordinary_alert_is_written_directly(alert: AlertMessage) -> None:
    sender = EmailSender(plain_settings(25))

    fast = sender._fast_bytes(RECIPIENT, alert, KEY, DATE, BOUNDARY)

    assert fast is not None
    assert fast == written_by_email_message(sender, RECIPIENT, alert, KEY)
