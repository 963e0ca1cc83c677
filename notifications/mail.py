"""Email over SMTP: UTF-8 Thai subject and body, plain text plus an HTML alternative.

Named ``mail`` on purpose: a module called ``email`` would shadow the standard library.
"""

from __future__ import annotations

import email.utils
import smtplib
import socket
import ssl
from email.message import EmailMessage
from functools import cache
from typing import TYPE_CHECKING, Literal

from notifications.base import TransportError, delivery_key
from notifications.render import render_email_html

if TYPE_CHECKING:
    from models.outbox import OutboxMessage

TlsMode = Literal["starttls", "ssl", "none"]


@cache
def default_helo() -> str:
    """This machine's name for HELO/EHLO, looked up once per process.

    ``smtplib.SMTP`` without ``local_hostname`` calls ``socket.getfqdn()`` on every connection,
    and where DNS is slow each call stalls for seconds: one look-up per process, not per e-mail.
    """
    return socket.getfqdn() or "localhost"


class SmtpTransport:
    """One SMTP session per message: simple, and enough for a province's daily volume.

    ``helo``: the name given in HELO/EHLO (``TIDTAM_SMTP_HELO``); None: ``default_helo()``.
    """

    def __init__(self, host: str, port: int, user: str | None = None,
                 password: str | None = None, tls: TlsMode = "starttls",
                 sender: str = "tidtam <tidtam@localhost>", timeout: float = 30,
                 helo: str | None = None) -> None:
        if tls not in ("starttls", "ssl", "none"):
            raise ValueError(f"tls must be starttls, ssl or none, not {tls!r}")
        self.host, self.port, self.timeout = host, port, timeout
        self.user, self.password = user, password
        self.tls, self.sender = tls, sender
        self.helo = helo or default_helo()

    def send(self, message: OutboxMessage) -> None:
        """Deliver to the relay; a 4xx or a network failure is worth retrying, a 5xx is not."""
        try:
            email_message = build_email(message, self.sender)
        except ValueError as exc:  # e.g. a newline in the address: no retry will fix it
            raise TransportError(f"cannot build the email: {exc}", permanent=True) from exc
        try:
            self._deliver(email_message, message.recipient)
        except (smtplib.SMTPException, OSError) as exc:
            raise smtp_error(exc) from exc

    def _deliver(self, email_message: EmailMessage, recipient: str) -> None:
        context = ssl.create_default_context()
        smtp_class = smtplib.SMTP_SSL if self.tls == "ssl" else smtplib.SMTP
        extra = {"context": context} if self.tls == "ssl" else {}
        with smtp_class(self.host, self.port, local_hostname=self.helo, timeout=self.timeout,
                        **extra) as smtp:
            if self.tls == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(email_message, to_addrs=[recipient])


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    """A multipart/alternative message; base64 bodies keep Thai safe on 7-bit relays."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = message.recipient
    mail["Date"] = email.utils.formatdate()
    mail["Message-ID"] = message_id(message.idempotency_key, sender)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies stay away
    mail.set_content(message.body, cte="base64")
    html = getattr(message, "html", None) or render_email_html(message.subject, message.body)
    mail.add_alternative(html, subtype="html", cte="base64")
    return mail


def message_id(idempotency_key: str, sender: str) -> str:
    """The same Message-ID on every retry, so mail clients can fold a duplicate delivery."""
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "tidtam.local"
    return f"<{delivery_key(idempotency_key)}@{domain}>"


def smtp_error(exc: Exception) -> TransportError:
    """Classify an SMTP failure by its reply code (RFC 5321: 4xx transient, 5xx permanent).

    A server that cannot be reached, hangs up, or answers 421 is down for every message, so
    the pump holds the whole email queue back with this one; a 4xx about one recipient or
    one message only delays that message.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        text = "; ".join(f"{addr}: {code} {_decode(reply)}"
                         for addr, (code, reply) in exc.recipients.items())
        if all(code >= 500 for code in codes):
            return TransportError(f"SMTP recipient refused: {text} — permanent: the mail server "
                                  "will not take this address, so this message is not retried",
                                  permanent=True)
        return TransportError(f"SMTP recipient deferred: {text}")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"SMTP {exc.smtp_code}: {_decode(exc.smtp_error)}"
        if exc.smtp_code >= 500:
            return TransportError(f"{text} — permanent: refused by the mail server, not retried",
                                  permanent=True)
        return TransportError(text, channel_down=exc.smtp_code == 421)
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return TransportError(f"SMTP setup: {exc}", permanent=True)
    return TransportError(f"SMTP connection: {type(exc).__name__}: {exc}", channel_down=True)


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
