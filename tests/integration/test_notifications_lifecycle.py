"""Notifications for proposals' whole life, on the real broker, delivered to a real SMTP server (aiosmtpd).

Submissions and awards go through the calls and grants RPCs; the events whose producing RPCs are still being
built (screening, evaluation, ranking, rejection, contract, payments, reports, amendment, closure, EC report) are
published with kombu to `<producer>.events` exactly as the producer will (make_event validates the contract).
"""
import email
import email.policy
import os
import re
import subprocess
import sys
import urllib.request
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from kombu import Connection, Exchange

from services.common.errors import Conflict, NotFound
from services.common.events import make_event
from services.notifications.schedule import report_due_dates
from tests.support import flows
from tests.support.infra import REPO, eventually, free_port
from tests.support.system import TEST_SECRET, System

HERE = Path(__file__).resolve().parent / "notifications_smtp"
sys.path.insert(0, str(HERE))
from smtp_servers import Mailbox  # noqa: E402
from stub_reporting import report_bytes  # noqa: E402

pytestmark = pytest.mark.integration

UTC = timezone.utc
APPROVERS = ("farid.finance@undp.org", "claire.approver@undp.org")
EC_CONTACT = "jean-marc.lefevre@ec.europa.eu"
NNBSP, NBSP = "\u202f", "\u00a0"


class SmtpServer:
    """A real SMTP server on a fixed localhost port that can be stopped and started again."""

    def __init__(self):
        self.port = free_port()
        self.mailbox = Mailbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self.controller.start()

    def stop(self):
        self.controller.stop()
        self.controller = None

    def mails(self, to=None, kind=None):
        """[(envelope recipient, parsed message)] received so far, optionally for one address and kind."""
        found = []
        for _sender, rcpt_tos, content in list(self.mailbox.received):
            msg = email.message_from_bytes(content, policy=email.policy.default)
            for rcpt in rcpt_tos:
                if (to is None or rcpt == to) and (kind is None or msg["X-JMDI-Kind"] == kind):
                    found.append((rcpt, msg))
        return found


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    if server.controller is not None:
        server.stop()


@pytest.fixture(scope="module")
def system(smtp):
    env = {
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TIMEOUT": "5",
        "SMTP_FROM": "JMDI Programme <jmdi@undp.org>",
        "FINANCE_APPROVER_EMAILS": f"Farid Benali <{APPROVERS[0]}>, {APPROVERS[1]}",
        "EC_REPORT_RECIPIENTS": f"Jean-Marc Lefèvre <{EC_CONTACT}>",
        "NOTIFICATIONS_DELIVERY_SECONDS": "0.3", "NOTIFICATION_RETRY_SECONDS": "0.3",
        "NOTIFICATION_RETRY_MAX_SECONDS": "1.5", "NOTIFICATION_MAX_ATTEMPTS": "12",
        "REPORTING_RPC_TIMEOUT_SECONDS": "5",
        "REPORT_REMINDER_INTERVAL_SECONDS": "0.5", "REPORT_REMINDER_DAYS": "30,7",
        "MAX_WORKERS": "4",  # smaller connection pools: PostgreSQL's 100 connections are shared on this machine
    }
    with System(extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": system.client("maria.pm", ["programme_manager"]),
        "committee": system.client("steering.committee", ["committee"]),
        "approver": system.client("farid.finance", ["finance_approver"]),
        "auditor": system.client("aude.auditor", ["auditor"]),
    }


@pytest.fixture(scope="module")
def opened_call(system, staff):
    staff["pm"].calls.load_programme(programme=flows.programme())
    staff["pm"].calls.create_call(**flows.call())
    return staff["pm"].calls.open_call(call_id="JMDI-2008")


# --- helpers -------------------------------------------------------------------------------------------------

def publish(system, producer: str, event_type: str, data: dict = None, event=None):
    """Publish an event the way the producer's outbox relay does (persistent JSON on its topic exchange)."""
    event = event or make_event(event_type, data, producer=producer, actor="test")
    exchange = Exchange(f"{producer}.events", type="topic", durable=True)
    with Connection(system.amqp_uri) as conn:
        conn.Producer().publish(event.body, exchange=exchange, routing_key=event_type, serializer="json",
                                delivery_mode=2, declare=[exchange], message_id=event.event_id)
    return event


def submit(staff, n: int, language: str) -> dict:
    return staff["pm"].calls.submit_proposal(**flows.proposal(n, language=language))


def rank(system, proposals):
    """The committee's ranking of each window, as calls publishes it (grants awards ranked proposals only)."""
    windows = {}
    for proposal in proposals:
        windows.setdefault(proposal["window"], []).append(proposal)
    for window, ranked in windows.items():
        publish(system, "calls", "ranking_published", {
            "call_id": "JMDI-2008", "window": window, "threshold": Decimal("65.00"), "reserve": [],
            "main": [{"proposal_id": p["proposal_id"], "reference": p["reference"], "rank": n,
                      "score": Decimal("80.00") - n, "country": p["target_country"],
                      "ec_amount_requested_eur": p["ec_amount_requested_eur"]} for n, p in enumerate(ranked, 1)],
            "published_at": datetime.now(UTC)})


def award(system, staff, *proposals, amount: str = "150000.00") -> list[dict]:
    rank(system, proposals)

    def attempt(proposal):
        try:
            return staff["committee"].grants.award_grant(proposal_id=proposal["proposal_id"], amount_eur=amount,
                                                         decision_reference="SC-2009-01", decision_date="2009-06-15")
        except NotFound:  # grants has not heard of the proposal yet
            return None
        except Conflict as refused:  # ... or of its ranking
            if refused.rule == "award.not_ranked":
                return None
            raise
    return [eventually(lambda: attempt(p), 60, message="award") for p in proposals]


def contract(system, grant: dict, start: date, months: int, amount: str = "150000.00"):
    end = report_due_dates(start, months)[-1].period_end
    schedule = [{"number": 1, "kind": "pre_financing", "planned_amount_eur": "96000.00", "condition": None,
                 "due_date": start + timedelta(days=30)},
                {"number": 2, "kind": "further_pre_financing", "planned_amount_eur": "24000.00",
                 "condition": "interim_report:1", "due_date": start + timedelta(days=470)},
                {"number": 3, "kind": "balance", "planned_amount_eur": "30000.00", "condition": "final_report",
                 "due_date": end + timedelta(days=135)}]
    return publish(system, "grants", "contract_signed", {
        "grant_id": grant["grant_id"], "reference": grant["reference"], "start_date": start, "end_date": end,
        "duration_months": months, "amount_eur": amount, "schedule": schedule,
        "signed_at": datetime(start.year, start.month, start.day, 10, 0, tzinfo=UTC) - timedelta(days=14)})


def lead(n: int) -> str:
    return f"lead{n}@example.org"


def partner(n: int) -> str:
    return f"partner{n}@example.org"


def kinds_for(smtp, address: str) -> list[str]:
    return sorted(msg["X-JMDI-Kind"] for _rcpt, msg in smtp.mails(to=address))


def body(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def deliveries(staff, **filters):
    return staff["pm"].notifications.list_deliveries(**filters)


def all_sent(staff, **filters):
    found = deliveries(staff, **filters)
    return found if found and all(d["status"] == "sent" for d in found) else None


def metric(system, name: str, **labels) -> float:
    with urllib.request.urlopen(system.metrics_url("notifications"), timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def outbox_count(system, event_type: str) -> int:
    return system.scalar("notifications", f"SELECT count(*) FROM outbox WHERE event_type = '{event_type}'")


# --- the whole life of proposals, in French and English --------------------------------------------------------

LIFE = {"fr": 1, "en": 2}  # proposal number per lead language (co-applicants write in English)
REJECTED = 3


def test_a_proposals_whole_life_reaches_its_applicants_in_their_language(system, staff, smtp, opened_call):
    proposals = {lang: submit(staff, n, lang) for lang, n in LIFE.items()}
    rejected = submit(staff, REJECTED, "en")
    for lang, proposal in proposals.items():
        ref = dict(proposal_id=proposal["proposal_id"], reference=proposal["reference"], call_id="JMDI-2008")
        publish(system, "calls", "proposal_screened", {**ref, "outcome": "clear", "hits": []})
        publish(system, "calls", "proposal_evaluated", {**ref, "stage": "concept_note", "score": Decimal("38.50"),
                                                        "max_score": 50, "threshold": Decimal("30.00"),
                                                        "passed": True})
    publish(system, "grants", "proposal_rejected", {
        "proposal_id": rejected["proposal_id"], "reference": rejected["reference"], "call_id": "JMDI-2008",
        "reasons": ["the full application scored 58/100, below the 65/100 needed for the award list"],
        "decision_reference": "SC-2009-01"})
    grants = dict(zip(proposals, award(system, staff, *proposals.values())))
    for lang, grant in grants.items():
        contract(system, grant, date(2009, 9, 1), 24)
        publish(system, "grants", "tranche_paid", {
            "payment_id": f"pay-{lang}-1", "grant_id": grant["grant_id"], "reference": grant["reference"],
            "tranche_number": 1, "amount_eur": "96000.00", "value_date": date(2009, 10, 6),
            "bank_reference": f"BNK-{lang}", "approved_by": "farid.finance"})
    fr, en = grants["fr"], grants["en"]
    ids = ", ".join(f"'{g['grant_id']}'" for g in grants.values())
    eventually(lambda: system.scalar("notifications", f"SELECT count(*) FROM report_dues WHERE grant_id IN ({ids})")
               == 4, message="contracts recorded")  # interim and final report of each grant
    publish(system, "grants", "payment_requested", {
        "payment_id": "pay-fr-2", "grant_id": fr["grant_id"], "reference": fr["reference"], "tranche_number": 2,
        "amount_eur": "24000.00", "requested_by": "claire.finance", "requested_at": datetime(2010, 11, 16, 9, 5,
                                                                                             tzinfo=UTC)})
    expenditure = {"human_resources": "60000.00", "travel": "10000.00"}
    for lang, outcome in (("fr", "accepted"), ("en", "returned")):
        grant = grants[lang]
        report = dict(report_id=f"report-{lang}-1", grant_id=grant["grant_id"], reference=grant["reference"],
                      kind="interim")
        publish(system, "grants", "report_submitted", {
            **report, "number": 1, "period_start": date(2009, 9, 1), "period_end": date(2010, 8, 31),
            "expenditure": expenditure, "total_eur": "70000.00", "submitted_at": datetime(2010, 10, 20, tzinfo=UTC)})
        # the decision waits for the submission to be recorded (as staff would, reading the report first)
        eventually(lambda: system.scalar("notifications", f"SELECT count(*) FROM report_dues WHERE report_id = "
                                                          f"'{report['report_id']}'"), message="report recorded")
        publish(system, "grants", "report_accepted", {
            **report, "outcome": outcome, "reason": "" if outcome == "accepted" else
            "Les relevés bancaires du poste 2 (Voyages) manquent." if lang == "fr" else
            "Bank statements for heading 2 (Travel) are missing.",
            "expenditure": expenditure, "total_eur": "70000.00", "decided_at": datetime(2010, 11, 12, tzinfo=UTC)})
    publish(system, "grants", "grant_amended", {
        "grant_id": fr["grant_id"], "reference": fr["reference"], "amendment_id": "am-1", "kind": "extension",
        "amount_eur": "150000.00", "duration_months": 27, "reason": "Prolongation de trois mois"})
    for grant in grants.values():
        publish(system, "grants", "grant_closed", {
            "grant_id": grant["grant_id"], "reference": grant["reference"], "kind": "final_payment",
            "paid_eur": "145789.45", "accepted_expenditure_eur": "145789.45", "recovery_eur": "0.00",
            "closed_at": datetime(2011, 12, 20, 15, 0, tzinfo=UTC)})

    life = ["award", "contract_signed", "evaluation_result", "grant_closed", "screening_result",
            "submission_receipt", "tranche_paid"]
    expected = {
        lead(1): sorted(life + ["grant_amended", "report_accepted"]),
        lead(2): sorted(life + ["report_returned"]),
        partner(1): ["contract_signed", "grant_amended", "grant_closed"],  # what binds the whole consortium
        partner(2): ["contract_signed", "grant_closed"],
        lead(REJECTED): ["rejection", "submission_receipt"],
        APPROVERS[0]: ["payment_requested"], APPROVERS[1]: ["payment_requested"],
    }
    eventually(lambda: all(kinds_for(smtp, address) == kinds for address, kinds in expected.items()), 90,
               message=f"every message delivered: {({a: kinds_for(smtp, a) for a in expected})}")

    # each message once, with the notification's stable Message-ID, and staff can see it was sent
    received = smtp.mails()
    assert len({msg["Message-ID"] for _rcpt, msg in received}) == len(received)
    for lang, proposal in proposals.items():
        listed = eventually(lambda: all_sent(staff, proposal_id=proposal["proposal_id"]), message="listed sent")
        ids = {d["message_id"] for d in listed}
        assert ids <= {msg["Message-ID"] for _rcpt, msg in received}
    assert {d["template"] for d in deliveries(staff, grant_id=fr["grant_id"], recipient=partner(1))} == {
        "contract_signed", "grant_amended", "grant_closed"}
    eventually(lambda: outbox_count(system, "notification_sent") == len(received), message="notification_sent")
    assert metric(system, "jmdi_emails_total", template="award", outcome="sent") == 2

    def only(address, kind):
        (_rcpt, msg), = smtp.mails(to=address, kind=kind)
        return msg

    # French lead: French texts, French money and dates
    msg = only(lead(1), "submission_receipt")
    assert msg["Content-Language"] == "fr" and proposals["fr"]["reference"] in msg["Subject"]
    assert msg["Subject"].startswith("Appel à propositions JMDI JMDI-2008 : accusé de réception")
    msg = only(lead(1), "tranche_paid")
    assert msg["Subject"] == f"Subvention {fr['reference']} : versement de la tranche 1 (96{NNBSP}000,00{NBSP}€)"
    assert "Date de valeur :  6 octobre 2009" in body(msg)
    assert f"Total versé à ce jour : 96{NNBSP}000,00{NBSP}€ sur une subvention maximale de 150{NNBSP}000,00{NBSP}€" \
        in body(msg)
    msg = only(lead(1), "report_accepted")
    assert f"Le préfinancement suivant, soit 24{NNBSP}000,00{NBSP}€" in body(msg)
    msg = only(lead(1), "grant_amended")
    assert "avenant n° 1" in msg["Subject"] and "Prolongation de trois mois" in body(msg)
    assert "L'action prend désormais fin le 30 novembre 2011." in body(msg)
    assert "prévu vers le 1er octobre 2009" in body(only(lead(1), "contract_signed"))
    # English lead and co-applicants
    msg = only(lead(2), "award")
    assert msg["Content-Language"] == "en"
    assert msg["Subject"] == f"JMDI grant awarded to proposal {en['reference']} (grant {en['reference']})"
    assert "Maximum grant amount:    EUR 150,000.00" in body(msg)
    msg = only(lead(2), "report_returned")
    assert "Bank statements for heading 2 (Travel) are missing." in body(msg) and "by 12 December 2010" in body(msg)
    assert only(partner(1), "contract_signed")["Content-Language"] == "en"
    assert "administrative and eligibility check passed" in only(lead(2), "screening_result")["Subject"]
    msg = only(lead(REJECTED), "rejection")
    assert "below the 65/100 needed for the award list" in body(msg)
    msg = only(APPROVERS[0], "payment_requested")
    assert msg["Subject"] == f"Approval required: payment of EUR 24,000.00 on grant {fr['reference']} (tranche 2)"
    assert "Dear Farid Benali," in body(msg) and "Requested by:     claire.finance, on 16 November 2010" in body(msg)


def test_a_redelivered_event_and_a_restarted_service_send_nothing_twice(system, staff, smtp, opened_call):
    proposal = submit(staff, 4, "fr")
    eventually(lambda: smtp.mails(to=lead(4), kind="submission_receipt"), message="receipt")
    evaluated = make_event("proposal_evaluated", {
        "proposal_id": proposal["proposal_id"], "reference": proposal["reference"], "call_id": "JMDI-2008",
        "stage": "full_application", "score": Decimal("71.00"), "max_score": 100, "threshold": Decimal("65.00"),
        "passed": True}, producer="calls", actor="test")
    duplicates_before = metric(system, "jmdi_inbox_duplicates_total", event_type="proposal_evaluated")
    publish(system, "calls", "proposal_evaluated", event=evaluated)
    publish(system, "calls", "proposal_evaluated", event=evaluated)  # the broker delivers it again
    eventually(lambda: metric(system, "jmdi_inbox_duplicates_total", event_type="proposal_evaluated")
               > duplicates_before, message="duplicate seen")
    eventually(lambda: all_sent(staff, proposal_id=proposal["proposal_id"]), message="sent")
    (_rcpt, msg), = smtp.mails(to=lead(4), kind="evaluation_result")
    assert "Note obtenue :   71 / 100" in body(msg)
    (delivery,) = deliveries(staff, proposal_id=proposal["proposal_id"], template="evaluation_result")
    assert delivery["source_event_id"] == evaluated.event_id and msg["Message-ID"] == delivery["message_id"]

    before = len(smtp.mails())
    system.restart("notifications")
    publish(system, "calls", "proposal_evaluated", event=evaluated)  # and once more after the restart
    eventually(lambda: metric(system, "jmdi_inbox_duplicates_total", event_type="proposal_evaluated") >= 1,
               message="duplicate seen after restart")
    # a message planned after the restart goes out, and nothing sent before it goes out again
    publish(system, "calls", "proposal_screened", {
        "proposal_id": proposal["proposal_id"], "reference": proposal["reference"], "call_id": "JMDI-2008",
        "outcome": "clear"})
    eventually(lambda: smtp.mails(to=lead(4), kind="screening_result"), message="screening after restart")
    assert len(smtp.mails()) == before + 1
    assert len(smtp.mails(to=lead(4), kind="evaluation_result")) == 1


def test_mail_held_while_the_smtp_server_is_down_is_delivered_once_when_it_is_back(system, staff, smtp,
                                                                                  opened_call):
    retried_before = metric(system, "jmdi_emails_total", outcome="retried")
    smtp.stop()
    try:
        proposals = [submit(staff, n, lang) for n, lang in ((5, "fr"), (6, "en"))]
        (grant,) = award(system, staff, proposals[0])

        def retrying():
            found = [d for p in proposals for d in deliveries(staff, proposal_id=p["proposal_id"])]
            return len(found) == 3 and all(d["status"] == "pending" and d["attempts"] >= 2 for d in found)

        eventually(retrying, 60, message="retried while the server is down")
        assert metric(system, "jmdi_emails_total", outcome="retried") >= retried_before + 3
        pending = deliveries(staff, proposal_id=proposals[0]["proposal_id"])
        assert all("connection refused" in d["last_error"].lower() for d in pending)
    finally:
        smtp.start()
    eventually(lambda: all(all_sent(staff, proposal_id=p["proposal_id"]) for p in proposals), 60,
               message="delivered once back")
    assert kinds_for(smtp, lead(5)) == ["award", "submission_receipt"]
    assert kinds_for(smtp, lead(6)) == ["submission_receipt"]
    (delivery,) = deliveries(staff, grant_id=grant["grant_id"])
    (_rcpt, msg), = smtp.mails(to=lead(5), kind="award")
    assert msg["Message-ID"] == delivery["message_id"] and delivery["attempts"] >= 3


def test_a_refused_message_fails_is_reported_and_can_be_sent_again(system, staff, smtp, opened_call):
    smtp.mailbox.refuse.add(lead(7))
    failed_events = outbox_count(system, "notification_failed")
    proposal = submit(staff, 7, "en")
    (failed,) = eventually(lambda: deliveries(staff, recipient=lead(7), status="failed"), 60, message="failed")
    assert failed["attempts"] == 1 and "550" in failed["last_error"]  # permanent: not retried
    assert outbox_count(system, "notification_failed") == failed_events + 1
    assert metric(system, "jmdi_emails_total", template="submission_receipt", outcome="failed") >= 1
    assert staff["auditor"].notifications.list_deliveries(status="failed", recipient=lead(7))  # auditors see it

    smtp.mailbox.refuse.discard(lead(7))  # the address was fixed on the server
    reset = staff["pm"].notifications.retry_notification(notification_id=failed["notification_id"])
    assert reset["status"] == "pending" and reset["attempts"] == 0
    eventually(lambda: all_sent(staff, proposal_id=proposal["proposal_id"]), message="sent after retry")
    (_rcpt, msg), = smtp.mails(to=lead(7))
    assert msg["Message-ID"] == failed["message_id"]
    with pytest.raises(Conflict) as refused:
        staff["pm"].notifications.retry_notification(notification_id=failed["notification_id"])
    assert refused.value.rule == "notification.already_sent"
    with pytest.raises(NotFound):
        staff["pm"].notifications.retry_notification(notification_id="no-such-notification")


def _start_with_due(months: int, kind: str, due: date) -> date:
    """A contract start whose report of `kind` (the first one) falls due on `due`."""
    day = due - timedelta(days=31 * (months + 4))
    while day < due:
        if next(r for r in report_due_dates(day, months) if r.kind == kind).due_date == due:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"no start date gives a {kind} report due on {due}")


def test_report_reminders_go_out_days_before_and_on_the_due_date_once(system, staff, smtp, opened_call):
    today = datetime.now(UTC).date()
    soon, due_today = submit(staff, 8, "fr"), submit(staff, 9, "en")
    grant_soon, grant_today = award(system, staff, soon, due_today)
    contract(system, grant_soon, _start_with_due(24, "interim", today + timedelta(days=7)), 24)
    contract(system, grant_today, _start_with_due(12, "final", today), 12)

    (_rcpt, msg), = eventually(lambda: smtp.mails(to=lead(8), kind="report_due"), 60, message="7-day reminder")
    assert msg["Subject"].startswith(f"Subvention {grant_soon['reference']} : rapport intermédiaire attendu le ")
    assert msg["Subject"].endswith("(dans 7 jours)")
    (_rcpt, msg), = eventually(lambda: smtp.mails(to=lead(9), kind="report_due"), 60, message="due-day reminder")
    assert msg["Subject"] == f"Grant {grant_today['reference']}: final report due today"
    assert not smtp.mails(to=partner(8), kind="report_due")  # reports are the lead applicant's task

    # the reminder timer keeps ticking (its lease is renewed) without reminding twice
    lease = "SELECT expires_at FROM leases WHERE name = 'notifications.report_reminders'"
    seen = system.scalar("notifications", lease)
    eventually(lambda: system.scalar("notifications", lease) > seen + timedelta(seconds=1), message="ticks")
    assert staff["pm"].notifications.send_due_reminders() == {"planned": 0}
    assert len(smtp.mails(kind="report_due")) == 2


def test_the_ec_report_is_sent_with_its_file_fetched_from_reporting(system, staff, smtp, opened_call):
    generated = publish(system, "reporting", "report_generated", {
        "report_id": "RPT-2010-Q1", "kind": "quarterly", "period": "2010-Q1", "format": "xlsx",
        "filename": "jmdi-RPT-2010-Q1.xlsx", "sha256": "0" * 64, "size": 2048,
        "generated_at": datetime(2010, 4, 2, 8, 0, tzinfo=UTC)})

    # reporting has no get_report (for this service) yet: the message waits, retrying the attachment step
    def retrying():
        (found,) = deliveries(staff, template="ec_report") or [None]
        return found if found and found["attempts"] >= 2 and found["status"] == "pending" else None

    waiting = eventually(retrying, 60, message="attachment retried")
    assert "get_report" in waiting["last_error"] and waiting["source_event_id"] == generated.event_id
    assert not smtp.mails(to=EC_CONTACT)

    system.processes["reporting"].stop()
    stub = subprocess.Popen([sys.executable, str(HERE / "stub_reporting.py")], cwd=REPO,
                            env={**os.environ, "AMQP_URI": system.amqp_uri, "JMDI_SECRET": TEST_SECRET},
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        (_rcpt, msg), = eventually(lambda: smtp.mails(to=EC_CONTACT), 60, message="EC report delivered")
    finally:
        stub.terminate()
        stub.wait(30)
    assert msg["Subject"] == "JMDI - quarterly report (1 January 2010 to 31 March 2010)"
    assert "Dear Jean-Marc Lefèvre," in body(msg)
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "jmdi-RPT-2010-Q1.xlsx"
    assert attachment.get_content() == report_bytes("RPT-2010-Q1")
    assert re.match(r"<notification-[0-9a-f-]{36}@jmdi\.local>", msg["Message-ID"])
