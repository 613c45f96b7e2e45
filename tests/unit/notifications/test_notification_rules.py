"""Pure rules of the notifications service: report deadlines, reminder stages, retries, settings, contexts."""

import base64
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from services.grants.domain.reports import report_due_dates as grants_due_dates
from services.notifications import contexts
from services.notifications.dispatch import AttachmentUnavailable, decode_report
from services.notifications.messages import render
from services.notifications.domain.schedule import (
    RetryPolicy,
    parse_reminder_days,
    reminder_key,
    reminder_stage,
    report_due_dates,
)
from services.notifications.settings import NotificationSettings, parse_recipients

D = dt.date
UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "start,months",
    [
        (D(2009, 3, 1), 36),
        (D(2009, 1, 31), 24),
        (D(2010, 2, 28), 13),
        (D(2009, 10, 1), 12),
        (D(2009, 10, 1), 18),
        (D(2012, 2, 29), 30),
    ],
)
def test_report_deadlines_agree_with_grants(start, months):
    ours = [(r.kind, r.period_end, r.due_date) for r in report_due_dates(start, months)]
    assert ours == [tuple(r) for r in grants_due_dates(start, months)]


def test_report_deadlines_example():
    assert report_due_dates(D(2009, 3, 1), 36) == [
        ("interim", 1, D(2010, 2, 28), D(2010, 4, 29)),
        ("interim", 2, D(2011, 2, 28), D(2011, 4, 29)),
        ("final", 1, D(2012, 2, 29), D(2012, 5, 31)),
    ]


def test_reminder_stages():
    days = parse_reminder_days("30, 7")
    assert days == (30, 7, 0)
    due = D(2010, 4, 29)
    stage = {
        offset: reminder_stage(due, due - dt.timedelta(days=offset), days) for offset in (45, 31, 30, 10, 7, 1, 0, -1)
    }
    assert stage == {45: None, 31: None, 30: 30, 10: 30, 7: 7, 1: 7, 0: 0, -1: None}
    assert parse_reminder_days("") == (0,)
    with pytest.raises(ValueError):
        parse_reminder_days("7 days")


def test_reminder_keys_are_stable_uuids_and_change_with_the_due_date():
    key = reminder_key("g1", "interim", 1, D(2010, 4, 29), 7)
    assert key == reminder_key("g1", "interim", 1, D(2010, 4, 29), 7) and len(key) == 36
    assert key != reminder_key("g1", "interim", 1, D(2010, 5, 29), 7)
    assert key != reminder_key("g1", "interim", 1, D(2010, 4, 29), 0)


def test_retry_policy_backs_off_exponentially_then_gives_up():
    policy = RetryPolicy(max_attempts=5, base_seconds=30, cap_seconds=100)
    assert [policy.after_failure(n, temporary=True) for n in range(1, 6)] == [30, 60, 100, 100, None]
    assert policy.after_failure(1, temporary=False) is None  # a permanent refusal is not retried
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_settings_from_config(tmp_path):
    settings = NotificationSettings.from_config(
        {
            "SMTP_HOST": "smtp.undp.org",
            "SMTP_PORT": 587,
            "SMTP_STARTTLS": True,
            "SMTP_PASSWORD": 1234,
            "MAIL_FOLDER": "var/mail",
            "FINANCE_APPROVER_EMAILS": "Farid <farid@undp.org>, a@undp.org, A@undp.org",
            "EC_REPORT_RECIPIENTS": "",
            "REPORT_REMINDER_DAYS": 14,
            "NOTIFICATION_MAX_ATTEMPTS": "3",
        }
    )
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.starttls, settings.smtp.password) == (
        "smtp.undp.org",
        587,
        True,
        "1234",
    )
    assert [(p.name, p.email) for p in settings.finance_approvers] == [
        ("Farid", "farid@undp.org"),
        ("a@undp.org", "a@undp.org"),
    ]
    assert settings.ec_report_recipients == () and settings.reminder_days == (14, 0)
    assert settings.retry.max_attempts == 3 and settings.smtp.mail_dir.endswith("var/mail")
    for bad in (
        {"NOTIFICATIONS_STAFF_LANGUAGE": "de"},
        {"NOTIFICATION_MAX_ATTEMPTS": "many"},
        {"NOTIFICATIONS_TEMPLATE_DIR": str(tmp_path / "missing")},
        {"SMTP_PORT": "smtp"},
    ):
        with pytest.raises(Exception):
            NotificationSettings.from_config(bad)
    with pytest.raises(ValueError):
        parse_recipients("not an address", "EC_REPORT_RECIPIENTS")


def test_report_periods():
    fallback = D(2010, 4, 2)
    assert contexts.report_period("2010-Q1", fallback) == (D(2010, 1, 1), D(2010, 3, 31))
    assert contexts.report_period("2010-02", fallback) == (D(2010, 2, 1), D(2010, 2, 28))
    assert contexts.report_period("2010", fallback) == (D(2010, 1, 1), D(2010, 12, 31))
    assert contexts.report_period("2010-03-31", fallback) == (D(2010, 3, 31), D(2010, 3, 31))
    assert contexts.report_period("2010-01-01/2010-06-30", fallback) == (D(2010, 1, 1), D(2010, 6, 30))
    assert contexts.report_period("spring", fallback) == (fallback, fallback)


GRANT = SimpleNamespace(
    reference="JMDI-2009-MA-0001",
    title="Diaspora savings",
    lead_organisation="AMD",
    amount=Decimal("150000.00"),
    paid=Decimal("96000.00"),
    amendments=1,
    end_date=D(2011, 11, 30),
    proposal_id="p1",
    schedule=[
        {"number": 2, "planned_amount_eur": "24000.00", "condition": "interim_report:1"},
        {"number": 3, "planned_amount_eur": "30000.00", "condition": "final_report"},
    ],
)


def test_contexts_render_in_both_languages():
    decided = dt.datetime(2010, 11, 12, 9, 0, tzinfo=UTC)
    accepted = contexts.report_accepted({"kind": "interim", "decided_at": decided}, GRANT, 1)
    assert accepted["next_tranche_amount"] == Decimal("24000.00")
    assert "next_tranche_amount" not in contexts.report_accepted(
        {"kind": "interim", "decided_at": decided}, GRANT, None
    )
    # the balance after a final report is closure's to establish from the accepted expenditure, not the
    # contract's planned last tranche (EUR 30,000 here, when the accepted expenditure may earn less)
    final = contexts.report_accepted({"kind": "final", "decided_at": decided}, GRANT, None)
    assert "next_tranche_amount" not in final
    amended = contexts.grant_amended(
        {"amount_eur": Decimal("150000.00"), "reason": "Three more months"},
        GRANT,
        Decimal("150000.00"),
        D(2011, 8, 31),
        decided,
    )
    assert "new_amount" not in amended and amended["new_end_date"] == D(2011, 11, 30)
    signed = contexts.contract_signed(
        {
            "signed_at": decided,
            "start_date": D(2009, 9, 1),
            "end_date": D(2011, 8, 31),
            "amount_eur": Decimal("150000.00"),
            "schedule": [{"number": 1, "planned_amount_eur": Decimal("96000.00"), "due_date": None}],
        },
        GRANT,
    )
    for lang in ("en", "fr"):
        for kind, context in (("report_accepted", accepted), ("grant_amended", amended), ("contract_signed", signed)):
            subject, body = render(kind, lang, {**context, "recipient_name": "AMD"})
            assert GRANT.reference in subject
    assert (
        "1. EUR 96,000.00 - pre-financing paid"
        in render("contract_signed", "en", {**signed, "recipient_name": "AMD"})[1]
    )
    generated = {
        "kind": "quarterly",
        "period": "2010-Q1",
        "filename": "r.xlsx",
        "generated_at": dt.datetime(2010, 4, 2, 8, 0, tzinfo=UTC),
    }
    assert contexts.ec_report(generated, "fr")["report_title"] == "rapport trimestriel"
    assert contexts.ec_report(generated, "en")["report_title"] == "quarterly report"


def test_the_report_file_is_decoded_from_reportings_reply():
    reply = {
        "filename": "jmdi-2010-Q1.xlsx",
        "mimetype": "application/x",
        "content_base64": base64.b64encode(b"\x00\x01data").decode(),
    }
    assert decode_report(reply) == ("jmdi-2010-Q1.xlsx", b"\x00\x01data", "application/x")
    for bad in (None, {"filename": "x"}, {"filename": "x", "content_base64": "not base64!"}):
        with pytest.raises(AttachmentUnavailable):
            decode_report(bad)


def test_the_termination_notice_names_the_effective_date_and_the_final_report_in_both_languages():
    terminated = contexts.grant_terminated(
        {
            "effective_date": D(2010, 3, 31),
            "reason": "The lead applicant was dissolved.",
            "amount_eur": Decimal("150000.00"),
            "paid_eur": Decimal("40000.00"),
            "final_report_period_start": D(2009, 7, 1),
            "final_report_due": D(2010, 6, 30),
        },
        GRANT,
    )
    subject, body = render("grant_terminated", "en", {**terminated, "recipient_name": "AMD"})
    assert subject == f"Grant {GRANT.reference}: early termination of the grant contract on 31 March 2010"
    assert "from 1 July 2009 to 31 March 2010 by 30 June 2010" in body
    assert "Reason for the termination: The lead applicant was dissolved." in body
    subject, body = render("grant_terminated", "fr", {**terminated, "recipient_name": "AMD"})
    assert subject.startswith(f"Subvention {GRANT.reference} : résiliation anticipée") and "31 mars 2010" in subject
    assert "au plus tard le 30 juin 2010" in body
