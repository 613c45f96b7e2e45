import email
import os
import email.policy
import smtplib
import socket
import ssl
import threading

import pytest

from notification_samples import context
from services.notifications.delivery import (
    DEFAULT_SENDER,
    FolderTransport,
    PermanentDeliveryError,
    SmtpSettings,
    SmtpTransport,
    TemporaryDeliveryError,
    backoff_delays,
    classify_smtp_error,
    send_with_retries,
    transport_from_settings,
)
from services.notifications.messages import build_message

SENDER = "JMDI Programme <noreply@jmdi.local>"


def _message(key=None, kind="tranche_paid"):
    return build_message(kind, "fr", context(kind), "amina@amd-taroudant.ma", SENDER, message_id=key)


def test_settings_from_mapping():
    s = SmtpSettings.from_mapping(
        {
            "SMTP_HOST": "smtp.undp.org",
            "SMTP_PORT": "587",
            "SMTP_USER": "jmdi",
            "SMTP_PASSWORD": "s3cret",
            "SMTP_STARTTLS": "true",
            "SMTP_FROM": "JMDI <jmdi@undp.org>",
            "SMTP_TIMEOUT": "10",
        }
    )
    assert (s.host, s.port, s.user, s.password, s.starttls, s.sender, s.timeout) == (
        "smtp.undp.org",
        587,
        "jmdi",
        "s3cret",
        True,
        "JMDI <jmdi@undp.org>",
        10.0,
    )
    assert "s3cret" not in repr(s)
    d = SmtpSettings.from_mapping({})
    assert (d.host, d.port, d.user, d.starttls, d.sender) == (None, 25, None, False, DEFAULT_SENDER)


def test_a_login_without_tls_is_refused_at_start_unless_allowed():
    plain = {"SMTP_HOST": "relay.example.org", "SMTP_USER": "jmdi", "SMTP_PASSWORD": "p" * 40}
    with pytest.raises(ValueError, match="SMTP_ALLOW_PLAINTEXT_AUTH"):
        SmtpSettings.from_mapping(plain)
    assert SmtpSettings.from_mapping({**plain, "SMTP_STARTTLS": "true"}).starttls
    allowed = SmtpSettings.from_mapping({**plain, "SMTP_ALLOW_PLAINTEXT_AUTH": "true"})
    assert allowed.allow_plaintext_auth and allowed.plaintext_login
    assert not SmtpSettings.from_mapping({"SMTP_HOST": "relay.example.org"}).plaintext_login  # no login at all


def test_the_transport_refuses_a_plaintext_login_before_connecting():
    settings = SmtpSettings(host="127.0.0.1", port=1, user="jmdi", password="p" * 40)
    with pytest.raises(PermanentDeliveryError, match="without TLS refused"):
        SmtpTransport(settings).send(_message("k1"))


@pytest.mark.parametrize(
    "env",
    [
        {"SMTP_PORT": "smtp"},
        {"SMTP_PORT": "70000"},
        {"SMTP_STARTTLS": "maybe"},
        {"SMTP_TIMEOUT": "0"},
        {"SMTP_ALLOW_PLAINTEXT_AUTH": "perhaps"},
        {"MAIL_TRANSPORT": "pigeon"},
    ],
)
def test_bad_settings_fail_at_start(env):
    with pytest.raises(ValueError):
        SmtpSettings.from_mapping(env)


def test_transport_choice(tmp_path):
    assert isinstance(transport_from_settings(env={"SMTP_HOST": "localhost"}), SmtpTransport)
    folder = transport_from_settings(env={"NOTIFICATIONS_MAIL_DIR": str(tmp_path)})
    assert isinstance(folder, FolderTransport) and folder.path == tmp_path
    assert isinstance(transport_from_settings(SmtpSettings(host=None)), FolderTransport)
    forced = transport_from_settings(
        env={"SMTP_HOST": "localhost", "MAIL_TRANSPORT": "folder", "NOTIFICATIONS_MAIL_DIR": str(tmp_path)}
    )
    assert isinstance(forced, FolderTransport)
    with pytest.raises(ValueError):  # smtp named without a relay to talk to
        transport_from_settings(env={"MAIL_TRANSPORT": "smtp"})


def test_the_sink_transport_accepts_a_message_and_keeps_nothing(tmp_path):
    sink = transport_from_settings(
        env={"MAIL_TRANSPORT": "Sink", "SMTP_HOST": "localhost", "NOTIFICATIONS_MAIL_DIR": str(tmp_path)}
    )
    result = sink.send(_message("sunk.key"))
    assert (result.transport, result.path, result.duplicate) == ("sink", None, False)
    assert result.message_id == str(_message("sunk.key")["Message-ID"]) and list(tmp_path.iterdir()) == []


def test_folder_transport_knows_the_messages_written_before_its_markers(tmp_path):
    """A folder filled by an earlier version (no markers): its messages are indexed once, and still count as
    sent; a marker whose file never arrived (a crash between claim and write) does not block the key."""
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "20260101T000000000000Z-old.key.eml").write_bytes(b"x")
    transport = FolderTransport(folder)
    again = transport.send(_message("old.key"))
    assert again.duplicate and again.path.name == "20260101T000000000000Z-old.key.eml"
    lost = folder / ".keys" / "lost.key"
    lost.write_text("20260101T000000000000Z-lost.key.eml")  # claimed long ago, never written
    os.utime(lost, (0, 0))
    written = transport.send(_message("lost.key"))
    assert not written.duplicate and written.path.is_file()
    assert transport.send(_message("lost.key")).path == written.path


def test_folder_transport_writes_eml_atomically(tmp_path):
    msg = _message("evt-42.tranche_paid.amina")
    result = FolderTransport(tmp_path / "mail").send(msg)
    assert result.transport == "folder" and not result.duplicate
    assert result.path.parent == tmp_path / "mail"
    assert result.path.name.endswith("-evt-42.tranche_paid.amina.eml")
    assert result.path.name[:8].isdigit()
    # no temp file left; the only other entry is the folder of key markers (a dot-folder readers ignore)
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == [".keys", result.path.name]
    parsed = email.message_from_bytes(result.path.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == "<evt-42.tranche_paid.amina@jmdi.local>"
    assert "99\u202f973,33\u00a0€" in parsed.get_body(("plain",)).get_content()


def test_folder_transport_recognises_a_duplicate(tmp_path):
    transport = FolderTransport(tmp_path)
    first = transport.send(_message("evt-42:tranche_paid"))
    again = transport.send(_message("evt-42:tranche_paid"))
    assert again.duplicate and again.path == first.path
    other = transport.send(_message("evt-43:tranche_paid"))
    assert not other.duplicate
    assert len(list(tmp_path.glob("*.eml"))) == 2
    # messages without a key never collide
    transport.send(_message())
    transport.send(_message())
    assert len(list(tmp_path.glob("*.eml"))) == 4


def test_folder_transport_concurrent_duplicates_are_not_torn(tmp_path):
    transport = FolderTransport(tmp_path)
    threads = [threading.Thread(target=transport.send, args=(_message(f"evt-{i % 5}"),)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for path in tmp_path.glob("*.eml"):
        assert email.message_from_bytes(path.read_bytes())["Message-ID"]
    assert [p.name for p in tmp_path.glob(".*")] == [".keys"]  # no temp file left, only the key markers
    assert len(list(tmp_path.glob("*.eml"))) == 5  # each key written once


def test_folder_transport_disk_error_is_temporary(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TemporaryDeliveryError):
        FolderTransport(blocker / "mail").send(_message("k"))


def test_backoff_delays():
    assert backoff_delays(30, 2, 6, 600) == [30, 60, 120, 240, 480]
    assert backoff_delays(60, 3, 6, 900) == [60, 180, 540, 900, 900]
    assert backoff_delays(5, 2, 1, 60) == []
    import random

    jittered = backoff_delays(100, 2, 5, 500, jitter=0.2, rng=random.Random(7))
    assert all(lo <= d <= hi for d, (lo, hi) in zip(jittered, [(80, 120), (160, 240), (320, 480), (400, 500)]))
    assert jittered == backoff_delays(100, 2, 5, 500, jitter=0.2, rng=random.Random(7))
    with pytest.raises(ValueError):
        backoff_delays(1, 0.5, 3, 10)
    with pytest.raises(ValueError):
        backoff_delays(1, 2, 0, 10)


@pytest.mark.parametrize(
    "exc, cls, code",
    [
        (ConnectionRefusedError(111, "Connection refused"), TemporaryDeliveryError, None),
        (socket.timeout("timed out"), TemporaryDeliveryError, None),
        (socket.gaierror(-2, "Name or service not known"), TemporaryDeliveryError, None),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TemporaryDeliveryError, None),
        (smtplib.SMTPConnectError(421, b"too busy"), TemporaryDeliveryError, 421),
        (smtplib.SMTPConnectError(554, b"no service"), PermanentDeliveryError, 554),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), PermanentDeliveryError, 535),
        (smtplib.SMTPAuthenticationError(454, b"temporary auth failure"), TemporaryDeliveryError, 454),
        (smtplib.SMTPSenderRefused(451, b"later", "noreply@jmdi.local"), TemporaryDeliveryError, 451),
        (smtplib.SMTPDataError(552, b"too big"), PermanentDeliveryError, 552),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no such user")}), PermanentDeliveryError, 550),
        (
            smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no"), "b@x.org": (452, b"full")}),
            TemporaryDeliveryError,
            452,
        ),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), PermanentDeliveryError, None),
        (ssl.SSLCertVerificationError("certificate verify failed"), PermanentDeliveryError, None),
    ],
)
def test_classification(exc, cls, code):
    err = classify_smtp_error(exc)
    assert type(err) is cls and err.code == code


def test_send_with_retries_follows_the_delays():
    calls, slept = [], []

    class Flaky:
        def send(self, msg):
            calls.append(msg)
            if len(calls) < 3:
                raise TemporaryDeliveryError("451 later", 451)
            return "ok"

    assert send_with_retries(Flaky(), object(), [1, 2, 4], sleep=slept.append) == "ok"
    assert slept == [1, 2]

    class Refusing:
        def send(self, msg):
            calls.append(msg)
            raise PermanentDeliveryError("550 no such user", 550)

    calls.clear()
    with pytest.raises(PermanentDeliveryError):
        send_with_retries(Refusing(), object(), [1, 2], sleep=slept.append)
    assert len(calls) == 1

    class Down:
        def send(self, msg):
            raise TemporaryDeliveryError("refused")

    slept.clear()
    with pytest.raises(TemporaryDeliveryError):
        send_with_retries(Down(), object(), [1, 2], sleep=slept.append)
    assert slept == [1, 2]
