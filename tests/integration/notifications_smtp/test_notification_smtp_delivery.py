"""SmtpTransport against a real aiosmtpd server on localhost (no SMTP mocks)."""

import email
import email.policy
import socket
import time

import pytest

from smtp_servers import Mailbox, free_port
from notification_samples import context
from services.notifications.delivery import (
    PermanentDeliveryError,
    SmtpSettings,
    SmtpTransport,
    TemporaryDeliveryError,
    backoff_delays,
    send_with_retries,
    transport_from_settings,
)
from services.notifications.messages import build_message

SENDER = "JMDI Programme <noreply@jmdi.local>"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def settings_for(port, **overrides):
    return SmtpSettings(**{"host": "127.0.0.1", "port": port, "sender": SENDER, "timeout": 5, **overrides})


def ec_report(to="jean-marc.lefevre@ec.europa.eu", key="report_generated.9f8e.ec"):
    data = bytes(range(256)) * 40  # binary content must arrive byte for byte
    msg = build_message(
        "ec_report",
        "fr",
        context("ec_report"),
        to=to,
        sender=SENDER,
        attachments=[("jmdi-financial-report-2010Q1.xlsx", data, XLSX)],
        message_id=key,
    )
    return msg, data


def test_message_is_received_with_subject_body_and_attachment(smtp_server):
    controller, mailbox = smtp_server()
    msg, data = ec_report()
    result = SmtpTransport(settings_for(controller.port)).send(msg)

    assert result.transport == "smtp" and result.refused == {}
    assert result.message_id == "<report_generated.9f8e.ec@jmdi.local>"
    ((mail_from, rcpt_tos, content),) = mailbox.received
    assert mail_from == "noreply@jmdi.local"
    assert rcpt_tos == ["jean-marc.lefevre@ec.europa.eu"]
    received = email.message_from_bytes(content, policy=email.policy.default)
    assert received["Subject"].strip() == "JMDI - quarterly financial report (du 1er janvier 2010 au 31 mars 2010)"
    assert received["Message-ID"] == "<report_generated.9f8e.ec@jmdi.local>"
    body = received.get_body(("plain",)).get_content()
    assert "Veuillez trouver ci-joint le rapport « quarterly financial report »" in body
    assert "Montant engagé :           9\u202f215\u202f340,00\u00a0€" in body
    (attachment,) = list(received.iter_attachments())
    assert attachment.get_filename() == "jmdi-financial-report-2010Q1.xlsx"
    assert attachment.get_content_type() == XLSX
    assert attachment.get_content() == data


def test_every_kind_goes_through_smtp_in_both_languages(smtp_server):
    from services.notifications.messages import KINDS

    controller, mailbox = smtp_server()
    transport = transport_from_settings(
        env={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port), "SMTP_TIMEOUT": "5"}
    )
    assert isinstance(transport, SmtpTransport)
    for kind in KINDS:
        for lang in ("en", "fr"):
            transport.send(
                build_message(
                    kind, lang, context(kind), "amina@amd-taroudant.ma", SENDER, message_id=f"evt-{kind}-{lang}"
                )
            )
    ids = {email.message_from_bytes(c)["Message-ID"] for _f, _t, c in mailbox.received}
    assert len(ids) == 2 * len(KINDS)


def test_a_resent_message_keeps_its_message_id(smtp_server):
    controller, mailbox = smtp_server()
    transport = SmtpTransport(settings_for(controller.port))
    transport.send(ec_report(key="evt-1.ec")[0])
    transport.send(ec_report(key="evt-1.ec")[0])  # a retry after an ambiguous failure
    ids = [email.message_from_bytes(c)["Message-ID"] for _f, _t, c in mailbox.received]
    assert ids == ["<evt-1.ec@jmdi.local>", "<evt-1.ec@jmdi.local>"]  # the duplicate is recognisable


def test_server_down_is_temporary():
    port = free_port()  # nobody listens there
    with pytest.raises(TemporaryDeliveryError) as info:
        SmtpTransport(settings_for(port)).send(ec_report()[0])
    assert info.value.code is None and isinstance(info.value.__cause__, ConnectionRefusedError)


def test_silent_server_times_out_as_temporary():
    with socket.socket() as listener:  # accepts TCP connections but never says hello
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        started = time.monotonic()
        with pytest.raises(TemporaryDeliveryError):
            SmtpTransport(settings_for(listener.getsockname()[1], timeout=0.5)).send(ec_report()[0])
        assert time.monotonic() - started < 5


def test_recipient_refused_with_550_is_permanent(smtp_server):
    controller, mailbox = smtp_server(Mailbox(rcpt_reply="550 5.1.1 Recipient address rejected: user unknown"))
    with pytest.raises(PermanentDeliveryError) as info:
        SmtpTransport(settings_for(controller.port)).send(ec_report()[0])
    assert info.value.code == 550
    assert info.value.recipients == ["jean-marc.lefevre@ec.europa.eu"]
    assert mailbox.received == []


def test_recipient_deferred_with_451_is_temporary(smtp_server):
    controller, mailbox = smtp_server(Mailbox(rcpt_reply="451 4.3.0 Temporary local problem, try again later"))
    with pytest.raises(TemporaryDeliveryError) as info:
        SmtpTransport(settings_for(controller.port)).send(ec_report()[0])
    assert info.value.code == 451
    assert mailbox.received == []


def test_one_recipient_refused_among_several_is_reported_not_raised(smtp_server):
    controller, mailbox = smtp_server(Mailbox(refuse={"left@ec.europa.eu"}))
    msg, _ = ec_report(to="reporting@ec.europa.eu, left@ec.europa.eu")
    result = SmtpTransport(settings_for(controller.port)).send(msg)
    assert list(result.refused) == ["left@ec.europa.eu"] and result.refused["left@ec.europa.eu"][0] == 550
    assert mailbox.received[0][1] == ["reporting@ec.europa.eu"]


def test_retry_with_backoff_until_the_server_is_back(smtp_server):
    port = free_port()
    attempts = []

    def sleep(seconds):  # the relay comes back during the second wait
        attempts.append(seconds)
        if len(attempts) == 2:
            controller, mailbox = smtp_server(Mailbox())
            assert controller  # started on another port: point the transport there
            transport.settings = settings_for(controller.port)
            state["mailbox"] = mailbox

    state = {}
    transport = SmtpTransport(settings_for(port))
    send_with_retries(transport, ec_report()[0], backoff_delays(0.01, 2, 5, 1), sleep=sleep)
    assert attempts == [0.01, 0.02]
    assert len(state["mailbox"].received) == 1


def test_login_success_and_failure(smtp_server, authenticator):
    controller, mailbox = smtp_server(authenticator=authenticator, auth_require_tls=False)
    plaintext = {"allow_plaintext_auth": True}  # this relay offers no TLS
    SmtpTransport(settings_for(controller.port, user="jmdi", password="s3cret", **plaintext)).send(ec_report()[0])
    assert len(mailbox.received) == 1
    with pytest.raises(PermanentDeliveryError) as info:
        SmtpTransport(settings_for(controller.port, user="jmdi", password="wrong", **plaintext)).send(ec_report()[0])
    assert info.value.code == 535


def test_a_login_without_tls_is_refused_unless_allowed(smtp_server, authenticator):
    controller, mailbox = smtp_server(authenticator=authenticator, auth_require_tls=False)
    with pytest.raises(PermanentDeliveryError, match="without TLS refused"):
        SmtpTransport(settings_for(controller.port, user="jmdi", password="s3cret")).send(ec_report()[0])
    assert mailbox.received == []


def test_starttls_required_but_not_offered_is_permanent(smtp_server):
    controller, _ = smtp_server()
    with pytest.raises(PermanentDeliveryError):
        SmtpTransport(settings_for(controller.port, starttls=True)).send(ec_report()[0])
