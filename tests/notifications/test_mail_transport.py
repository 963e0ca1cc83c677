"""SmtpTransport against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest

from notifications.base import TransportError, delivery_key
from notifications.mail import SmtpTransport
from notifications.render import render_message


def transport(port: int, tls: str = "none") -> SmtpTransport:
    return SmtpTransport("127.0.0.1", port, tls=tls, sender="ติดตาม <tidtam@sakaeo.example.go.th>",
                         timeout=5)


def test_thai_subject_and_body_arrive_decoded(smtp_sink, make_message, message_context):
    sink, port = smtp_sink
    subject, body = render_message("reminder", **message_context)
    message = make_message(channel="email", recipient="somchai@example.go.th",
                           subject=subject, body=body)
    transport(port).send(message)

    [raw] = sink.messages
    assert raw.isascii()  # RFC 2047 headers and base64 bodies: safe on any relay
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["Subject"] == subject
    assert received["Subject"].startswith("แจ้งเตือน")
    assert "9 ส.ค. 2567" in received["Subject"]
    assert received["To"] == "somchai@example.go.th"
    assert received["From"].addresses[0].display_name == "ติดตาม"
    assert received["Message-ID"] == (
        f"<{delivery_key(message.idempotency_key)}@sakaeo.example.go.th>")
    plain = received.get_body(preferencelist=("plain",)).get_content()
    assert plain.strip() == body
    assert "9 สิงหาคม 2567" in plain


def test_html_alternative_is_escaped_and_linked(smtp_sink, make_message, message_context):
    sink, port = smtp_sink
    subject, body = render_message("reminder", **message_context)
    transport(port).send(make_message(channel="email", recipient="a@example.go.th",
                                      subject=subject, body=body))
    received = email.message_from_bytes(sink.messages[0], policy=email.policy.default)
    assert received.get_content_type() == "multipart/alternative"
    html = received.get_body(preferencelist=("html",)).get_content()
    assert "จัดประชุมกลไกขับเคลื่อน &amp; จัดทำแผน" in html
    assert '<a href="https://tidtam.example.go.th/items/42"' in html


# name, rcpt reply, data reply, permanent, text the reason must contain
REFUSALS = [
    ("550 unknown mailbox", "550 5.1.1 No such user here", None, True,
     "permanent: the mail server will not take this address, so this message is not retried"),
    ("451 greylisted", "451 4.7.1 Greylisted, try again later", None, False,
     "SMTP recipient deferred"),
    ("554 rejected content", None, "554 5.7.1 Message rejected", True,
     "permanent: refused by the mail server, not retried"),
    ("452 out of storage", None, "452 4.3.1 Insufficient system storage", False, "SMTP 452"),
]


@pytest.mark.parametrize(("rcpt_reply", "data_reply", "permanent", "text"),
                         [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_reply_codes_decide_retry(smtp_sink, make_message, rcpt_reply, data_reply, permanent,
                                  text):
    """A refusal about this one message never holds the rest of the mail queue back."""
    sink, port = smtp_sink
    sink.rcpt_reply, sink.data_reply = rcpt_reply, data_reply
    with pytest.raises(TransportError) as caught:
        transport(port).send(make_message(channel="email", recipient="x@example.go.th"))
    assert caught.value.permanent is permanent
    assert not caught.value.channel_down
    assert (rcpt_reply or data_reply).split()[0] in caught.value.message
    assert text in caught.value.message
    assert sink.messages == []


def test_refused_connection_is_transient_and_the_server_is_down(make_message, closed_port):
    with pytest.raises(TransportError) as caught:
        transport(closed_port).send(make_message(channel="email", recipient="x@example.go.th"))
    assert not caught.value.permanent
    assert caught.value.channel_down
    assert "ConnectionRefusedError" in caught.value.message


def test_a_silent_server_times_out_as_transient(make_message):
    """A server that accepts the connection but never greets: a timeout, retried later."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        slow = SmtpTransport("127.0.0.1", listener.getsockname()[1], tls="none", timeout=0.3)
        with pytest.raises(TransportError) as caught:
            slow.send(make_message(channel="email", recipient="x@example.go.th"))
    assert not caught.value.permanent and caught.value.channel_down
    assert "timed out" in caught.value.message.lower() or "Timeout" in caught.value.message


def test_starttls_missing_on_server_is_permanent(smtp_sink, make_message):
    """Sending in clear text when STARTTLS was asked for would leak; no retry fixes it."""
    sink, port = smtp_sink
    with pytest.raises(TransportError) as caught:
        transport(port, tls="starttls").send(
            make_message(channel="email", recipient="x@example.go.th"))
    assert caught.value.permanent
    assert sink.messages == []


def test_header_injection_is_refused_before_connecting(make_message, closed_port):
    with pytest.raises(TransportError) as caught:
        transport(closed_port).send(
            make_message(channel="email", recipient="x@example.go.th\nBcc: y@example.com"))
    assert caught.value.permanent


def test_the_helo_name_is_the_configured_one_and_never_looked_up_per_message(
        smtp_sink, make_message, monkeypatch):
    """TIDTAM_SMTP_HELO is what the server sees; without it the name is looked up once per
    process (socket.getfqdn can stall for seconds where DNS is slow), not per connection."""
    from notifications import mail
    from tidtam.infra.settings import Settings

    sink, port = smtp_sink
    helo = Settings(smtp_helo="tidtam.sakaeo.example.go.th").smtp_helo
    SmtpTransport("127.0.0.1", port, tls="none", helo=helo).send(
        make_message(channel="email", recipient="somchai@example.go.th"))
    assert sink.helos == ["tidtam.sakaeo.example.go.th"]

    lookups = []
    monkeypatch.setattr(mail.socket, "getfqdn", lambda *a: lookups.append(a) or "pump.example")
    mail.default_helo.cache_clear()
    try:
        for _ in range(3):
            SmtpTransport("127.0.0.1", port, tls="none").send(
                make_message(channel="email", recipient="somchai@example.go.th"))
    finally:
        mail.default_helo.cache_clear()
    assert sink.helos[1:] == ["pump.example"] * 3
    assert len(lookups) == 1


@pytest.mark.parametrize("bad", ["two words", "x\r\nMAIL FROM:<a@b>", ""])
def test_a_helo_name_that_is_not_a_host_name_is_refused(bad):
    from pydantic import ValidationError

    from tidtam.infra.settings import Settings

    with pytest.raises(ValidationError):
        Settings(smtp_helo=bad)
