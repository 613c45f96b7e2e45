"""Notifications for proposals' whole life, on the real broker, delivered to a real SMTP server (aiosmtpd).

What staff do goes through the calls and grants RPCs at the gateway: submissions, rejection, awards, contracts,
payments (requested by a finance officer, approved by a finance approver), reports (decided by a second programme
manager), an amendment and closures. A grant that reports on ended periods belongs to a call that closed long ago
(tests/support/history.py), whose call_opened and proposal_submitted the calls service can no longer send; that
call's screening, evaluation and rankings, like the rankings of the live call (its evaluation starts once it has
closed, at the end of today), are published with kombu to `calls.events` exactly as calls sends them (make_event
validates the contract). So are the events a test re-delivers on purpose.
"""

import base64
import email
import email.policy
import re
import sys
import urllib.request
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from kombu import Connection, Exchange

from services.common.contracts.events import make_event
from services.common.values.errors import Conflict, NotFound
from services.notifications.domain.schedule import report_due_dates
from tests.integration.test_grants_service import contracted
from tests.support import flows, history, scenario
from tests.support.infra import eventually, free_port
from tests.support.system import System

HERE = Path(__file__).resolve().parent / "notifications_smtp"
sys.path.insert(0, str(HERE))
from smtp_servers import Mailbox  # noqa: E402

pytestmark = pytest.mark.integration

UTC = timezone.utc
APPROVERS = ("farid.finance@undp.org", "claire.approver@undp.org")
EC_CONTACT = "jean-marc.lefevre@ec.europa.eu"
NNBSP, NBSP = "\u202f", "\u00a0"
PAST = "JMDI-2008-PAST"  # the call of 2008, closed on 2009-03-31


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
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_TIMEOUT": "5",
        "SMTP_FROM": "JMDI Programme <jmdi@undp.org>",
        "FINANCE_APPROVER_EMAILS": f"Farid Benali <{APPROVERS[0]}>, {APPROVERS[1]}",
        "EC_REPORT_RECIPIENTS": f"Jean-Marc Lefèvre <{EC_CONTACT}>",
        "NOTIFICATIONS_DELIVERY_SECONDS": "0.3",
        "NOTIFICATION_RETRY_SECONDS": "0.3",
        "NOTIFICATION_RETRY_MAX_SECONDS": "1.5",
        "NOTIFICATION_MAX_ATTEMPTS": "12",
        "REPORTING_RPC_TIMEOUT_SECONDS": "5",
        "REPORT_REMINDER_INTERVAL_SECONDS": "0.5",
        "REPORT_REMINDER_DAYS": "30,7",
        "MAX_WORKERS": "4",  # smaller connection pools: PostgreSQL's 100 connections are shared on this machine
    }
    with System(extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": system.client("maria.pm", ["programme_manager"]),
        "pm2": system.client("karim.pm", ["programme_manager"]),  # the second person where money moves
        "officer": system.client("omar.officer", ["finance_officer"]),
        "committee": system.client("steering.committee", ["committee"]),
        "approver": system.client("farid.finance", ["finance_approver"]),
        "auditor": system.client("aude.auditor", ["auditor"]),
    }


@pytest.fixture(scope="module")
def opened_call(system, staff):
    staff["pm"].calls.load_programme(programme=flows.programme())
    staff["pm"].calls.create_call(**flows.call())
    return staff["pm"].calls.open_call(call_id="JMDI-2008")


@pytest.fixture(scope="module")
def closed_call(system, staff):
    """A call that closed on 2009-03-31, for grants whose reporting periods have ended (tests/support/history.py:
    the calls service runs calls live, so its call_opened and proposal_submitted are published by the test)."""
    history.past_call(system, PAST)
    return PAST


# --- helpers -------------------------------------------------------------------------------------------------


def publish(system, producer: str, event_type: str, data: dict = None, event=None):
    """Publish an event the way the producer's outbox relay does (persistent JSON on its topic exchange)."""
    event = event or make_event(event_type, data, producer=producer, actor="test")
    exchange = Exchange(f"{producer}.events", type="topic", durable=True)
    with Connection(system.amqp_uri) as conn:
        conn.Producer().publish(
            event.body,
            exchange=exchange,
            routing_key=event_type,
            serializer="json",
            delivery_mode=2,
            declare=[exchange],
            message_id=event.event_id,
        )
    return event


def submit(staff, n: int, language: str) -> dict:
    return staff["pm"].calls.submit_proposal(**flows.proposal(n, language=language))


def award(system, staff, *proposals, amount: str = "150000.00") -> list[dict]:
    """The committee's award of proposals of the live call, dated today."""
    scenario.rank(system, proposals)  # stands in for the evaluation, which starts once the call has closed

    def attempt(proposal):
        try:
            return staff["committee"].grants.award_grant(
                proposal_id=proposal["proposal_id"], amount_eur=amount, decision_reference="SC-2009-01"
            )
        except NotFound:  # grants has not heard of the proposal yet
            return None
        except Conflict as refused:  # ... or of its ranking
            if refused.rule == "award.not_ranked":
                return None
            raise

    return [eventually(lambda: attempt(p), 60, message="award") for p in proposals]


def reject(staff, proposal) -> dict | None:
    """The committee's rejection, once grants has heard of the proposal (None until then)."""
    try:
        return staff["committee"].grants.reject_proposal(
            proposal_id=proposal["proposal_id"],
            decision_reference="SC-2009-01",
            reasons=["the full application scored 58/100, below the 65/100 needed for the award list"],
        )
    except NotFound:
        return None


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
FR_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def french_date(day: date) -> str:
    return f"{'1er' if day.day == 1 else day.day} {FR_MONTHS[day.month - 1]} {day.year}"


def english_date(day: date) -> str:
    return f"{day.day} {EN_MONTHS[day.month - 1]} {day.year}"


def paid(staff, grant_id: str, tranche: int, amount: str, key: str) -> tuple[dict, dict]:
    """A finance officer's request and a finance approver's approval (four eyes): (request, payment)."""
    request = staff["officer"].grants.request_payment(
        grant_id=grant_id, tranche_number=tranche, amount_eur=amount, idempotency_key=key
    )
    return request, staff["approver"].grants.approve_payment(
        payment_id=request["payment_id"], bank_reference=f"BNK-{key}"
    )


def submitted_report(system, staff, grant_id: str, kind: str, expenditure: dict) -> dict:
    """The programme manager submits a report; the decision waits until notifications recorded it (as staff
    would, reading the report first), so the decision's message can say which tranche it unlocks."""
    report = staff["pm"].grants.submit_report(grant_id=grant_id, kind=kind, expenditure=expenditure)
    eventually(
        lambda: system.scalar(
            "notifications", f"SELECT count(*) FROM report_dues WHERE report_id = '{report['report_id']}'"
        ),
        message="report recorded",
    )
    return report


def test_a_proposals_whole_life_reaches_its_applicants_in_their_language(system, staff, smtp, opened_call, closed_call):
    # a grant reports on periods that have ended: the two proposals that live it belong to a call that closed
    # long ago, which the calls service (it runs calls live) can no longer tell: its events are published here
    proposals = {lang: history.past_proposals(system, PAST, [n], language=lang)[0] for lang, n in LIFE.items()}
    for lang, proposal in proposals.items():
        ref = dict(proposal_id=proposal["proposal_id"], reference=proposal["reference"], call_id=PAST)
        # the past call's screening and evaluation, which the calls service never ran
        publish(system, "calls", "proposal_screened", {**ref, "outcome": "clear", "hits": []})
        publish(
            system,
            "calls",
            "proposal_evaluated",
            {
                **ref,
                "stage": "concept_note",
                "score": Decimal("38.50"),
                "max_score": 50,
                "threshold": Decimal("30.00"),
                "passed": True,
            },
        )
    scenario.rank(system, proposals.values(), call_id=PAST)  # stands in for the evaluation's ranking
    rejected = submit(staff, REJECTED, "en")  # a proposal of the live call, rejected by the committee
    eventually(lambda: reject(staff, rejected), 60, message="rejected")
    grants = {lang: history.award(staff, proposal, "150000.00") for lang, proposal in proposals.items()}
    fr, en = grants["fr"], grants["en"]

    # French lead: 21 months from 2009-09-01, EUR 120,000 and 30,000 of EC budget a period -> 96,000 at
    # signature, 24,000 after the interim report, the balance after the final report
    signed = contracted(
        staff, fr, start_date="2009-09-01", duration_months=21, annual_budgets=["120000.00", "30000.00"]
    )
    assert [t["planned_amount_eur"] for t in signed["schedule"]] == ["96000.00", "24000.00", "30000.00"]
    contracted(staff, en, start_date="2009-09-01", duration_months=12)  # 12 months: 120,000 at signature
    ids = ", ".join(f"'{g['grant_id']}'" for g in grants.values())
    eventually(
        lambda: system.scalar("notifications", f"SELECT count(*) FROM report_dues WHERE grant_id IN ({ids})") == 3,
        message="contracts recorded",
    )  # the interim and final reports of one, the final of the other
    _request, first_fr = paid(staff, fr["grant_id"], 1, "96000.00", "fr-1")
    paid(staff, en["grant_id"], 1, "120000.00", "en-1")

    # the interim report accepted by a second programme manager unlocks tranche 2 (90,000 x 80% is more than
    # 70% of the 96,000 paid: in full)
    interim = submitted_report(
        system, staff, fr["grant_id"], "interim", {"human_resources": "80000.00", "travel": "10000.00"}
    )
    staff["pm2"].grants.accept_report(report_id=interim["report_id"])
    second_request, _payment = paid(staff, fr["grant_id"], 2, "24000.00", "fr-2")
    amended = staff["committee"].grants.amend_grant(
        grant_id=fr["grant_id"],
        kind="duration",
        new_duration_months=24,
        reason="Prolongation de trois mois",
        new_annual_budgets=["120000.00", "30000.00"],
    )
    assert amended["end_date"] == "2011-08-31"
    # final report: (90,000 + 75,000) x 80% = 132,000 earned, 120,000 paid -> a balance of 12,000
    final = submitted_report(
        system, staff, fr["grant_id"], "final", {"human_resources": "70000.00", "travel": "5000.00"}
    )
    staff["pm2"].grants.accept_report(report_id=final["report_id"])
    paid(staff, fr["grant_id"], 3, "12000.00", "fr-3")
    assert staff["pm"].grants.close_grant(grant_id=fr["grant_id"])["closure"]["kind"] == "final_payment"

    # English lead: the final report is returned, corrected, accepted; 125,000 x 80% = 100,000 of the 120,000
    # paid -> closed with a recovery order of 20,000
    expenditure = {"human_resources": "115000.00", "travel": "10000.00"}
    returned_report = submitted_report(system, staff, en["grant_id"], "final", expenditure)
    returned = staff["pm2"].grants.return_report(
        report_id=returned_report["report_id"], reason="Bank statements for heading 2 (Travel) are missing."
    )
    corrected = submitted_report(system, staff, en["grant_id"], "final", expenditure)
    staff["pm2"].grants.accept_report(report_id=corrected["report_id"])
    closed = staff["pm"].grants.close_grant(grant_id=en["grant_id"])
    assert (closed["closure"]["kind"], closed["closure"]["recovery_eur"]) == ("recovery", "20000.00")

    life = ["award", "contract_signed", "evaluation_result", "grant_closed", "screening_result", "submission_receipt"]
    expected = {
        lead(1): sorted(life + ["grant_amended"] + ["report_accepted"] * 2 + ["tranche_paid"] * 3),
        lead(2): sorted(life + ["report_accepted", "report_returned", "tranche_paid"]),
        partner(1): ["contract_signed", "grant_amended", "grant_closed"],  # what binds the whole consortium
        partner(2): ["contract_signed", "grant_closed"],
        lead(REJECTED): ["rejection", "submission_receipt"],
        APPROVERS[0]: ["payment_requested"] * 4,
        APPROVERS[1]: ["payment_requested"] * 4,
    }
    eventually(
        lambda: all(kinds_for(smtp, address) == kinds for address, kinds in expected.items()),
        90,
        message=f"every message delivered: { ({a: kinds_for(smtp, a) for a in expected}) }",
    )

    # each message once, with the notification's stable Message-ID, and staff can see it was sent
    received = smtp.mails()
    assert len({msg["Message-ID"] for _rcpt, msg in received}) == len(received)
    for lang, proposal in proposals.items():
        listed = eventually(lambda: all_sent(staff, proposal_id=proposal["proposal_id"]), message="listed sent")
        assert {d["message_id"] for d in listed} <= {msg["Message-ID"] for _rcpt, msg in received}
    assert {d["template"] for d in deliveries(staff, grant_id=fr["grant_id"], recipient=partner(1))} == {
        "contract_signed",
        "grant_amended",
        "grant_closed",
    }
    eventually(lambda: outbox_count(system, "notification_sent") == len(received), message="notification_sent")
    assert metric(system, "jmdi_emails_total", template="award", outcome="sent") == 2

    def only(address, kind, subject=""):
        ((_rcpt, msg),) = [(r, m) for r, m in smtp.mails(to=address, kind=kind) if subject in m["Subject"]]
        return msg

    # French lead: French texts, French money and dates
    msg = only(lead(1), "submission_receipt")
    assert msg["Content-Language"] == "fr" and proposals["fr"]["reference"] in msg["Subject"]
    assert msg["Subject"].startswith(f"Appel à propositions JMDI {PAST} : accusé de réception")
    msg = only(lead(1), "tranche_paid", "tranche 1")
    assert msg["Subject"] == f"Subvention {fr['reference']} : versement de la tranche 1 (96{NNBSP}000,00{NBSP}€)"
    assert f"Date de valeur :  {french_date(date.fromisoformat(first_fr['value_date']))}" in body(msg)
    assert (
        f"Total versé à ce jour : 96{NNBSP}000,00{NBSP}€ sur une subvention maximale de 150{NNBSP}000,00{NBSP}€"
        in body(msg)
    )
    msg = only(lead(1), "report_accepted", "intermédiaire")
    assert f"Le préfinancement suivant, soit 24{NNBSP}000,00{NBSP}€" in body(msg)
    # the final report's acceptance quotes no planned balance (EUR 30,000 in the contract; closure paid 12,000):
    # closure gives the real one
    msg = only(lead(1), "report_accepted", "final")
    assert "Le montant définitif de la subvention va maintenant être établi" in body(msg)
    assert "Le solde" not in body(msg) and f"30{NNBSP}000,00" not in body(msg)
    msg = only(lead(1), "grant_amended")
    assert "avenant n° 1" in msg["Subject"] and "Prolongation de trois mois" in body(msg)
    assert "L'action prend désormais fin le 31 août 2011." in body(msg)
    assert "prévu vers le 1er octobre 2009" in body(only(lead(1), "contract_signed"))
    msg = only(lead(1), "grant_closed")
    assert f"Total versé :                      132{NNBSP}000,00{NBSP}€" in body(msg)
    assert "Montant à recouvrer" not in body(msg)
    # English lead and co-applicants
    msg = only(lead(2), "award")
    assert msg["Content-Language"] == "en"
    assert msg["Subject"] == f"JMDI grant awarded to proposal {en['reference']} (grant {en['reference']})"
    assert "Maximum grant amount:    EUR 150,000.00" in body(msg)
    msg = only(lead(2), "report_returned")
    resubmit_by = datetime.fromisoformat(returned["decided_at"]).date() + timedelta(days=30)
    assert "Bank statements for heading 2 (Travel) are missing." in body(msg)
    assert f"by {english_date(resubmit_by)}" in body(msg)
    msg = only(lead(2), "grant_closed")
    assert "Total paid:             EUR 120,000.00" in body(msg)
    assert "Amount to be recovered: EUR 20,000.00" in body(msg)
    assert only(partner(1), "contract_signed")["Content-Language"] == "en"
    assert "administrative and eligibility check passed" in only(lead(2), "screening_result")["Subject"]
    msg = only(lead(REJECTED), "rejection")
    assert "below the 65/100 needed for the award list" in body(msg)
    msg = only(APPROVERS[0], "payment_requested", "tranche 2")
    assert msg["Subject"] == f"Approval required: payment of EUR 24,000.00 on grant {fr['reference']} (tranche 2)"
    requested_on = english_date(datetime.fromisoformat(second_request["requested_at"]).date())
    assert "Dear Farid Benali," in body(msg) and f"Requested by:     omar.officer, on {requested_on}" in body(msg)


def test_a_redelivered_event_and_a_restarted_service_send_nothing_twice(system, staff, smtp, opened_call):
    proposal = submit(staff, 4, "fr")
    eventually(lambda: smtp.mails(to=lead(4), kind="submission_receipt"), message="receipt")
    evaluated = make_event(
        "proposal_evaluated",
        {
            "proposal_id": proposal["proposal_id"],
            "reference": proposal["reference"],
            "call_id": "JMDI-2008",
            "stage": "full_application",
            "score": Decimal("71.00"),
            "max_score": 100,
            "threshold": Decimal("65.00"),
            "passed": True,
        },
        producer="calls",
        actor="test",
    )
    duplicates_before = metric(system, "jmdi_inbox_duplicates_total", event_type="proposal_evaluated")
    # one event published by hand, to deliver it again on purpose
    publish(system, "calls", "proposal_evaluated", event=evaluated)
    publish(system, "calls", "proposal_evaluated", event=evaluated)  # the broker delivers it again
    eventually(
        lambda: metric(system, "jmdi_inbox_duplicates_total", event_type="proposal_evaluated") > duplicates_before,
        message="duplicate seen",
    )
    eventually(lambda: all_sent(staff, proposal_id=proposal["proposal_id"]), message="sent")
    ((_rcpt, msg),) = smtp.mails(to=lead(4), kind="evaluation_result")
    assert "Note obtenue :   71 / 100" in body(msg)
    (delivery,) = deliveries(staff, proposal_id=proposal["proposal_id"], template="evaluation_result")
    assert delivery["source_event_id"] == evaluated.event_id and msg["Message-ID"] == delivery["message_id"]

    before = len(smtp.mails())
    system.restart("notifications")
    publish(system, "calls", "proposal_evaluated", event=evaluated)  # and once more after the restart
    eventually(
        lambda: metric(system, "jmdi_inbox_duplicates_total", event_type="proposal_evaluated") >= 1,
        message="duplicate seen after restart",
    )
    # a message planned after the restart goes out, and nothing sent before it goes out again
    eventually(lambda: reject(staff, proposal), 60, message="rejected after restart")
    eventually(lambda: smtp.mails(to=lead(4), kind="rejection"), message="rejection after restart")
    assert len(smtp.mails()) == before + 1
    assert len(smtp.mails(to=lead(4), kind="evaluation_result")) == 1


def test_mail_held_while_the_smtp_server_is_down_is_delivered_once_when_it_is_back(system, staff, smtp, opened_call):
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
    eventually(
        lambda: all(all_sent(staff, proposal_id=p["proposal_id"]) for p in proposals), 60, message="delivered once back"
    )
    assert kinds_for(smtp, lead(5)) == ["award", "submission_receipt"]
    assert kinds_for(smtp, lead(6)) == ["submission_receipt"]
    (delivery,) = deliveries(staff, grant_id=grant["grant_id"])
    ((_rcpt, msg),) = smtp.mails(to=lead(5), kind="award")
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
    ((_rcpt, msg),) = smtp.mails(to=lead(7))
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


def test_report_reminders_go_out_days_before_and_on_the_due_date_once(system, staff, smtp, closed_call):
    today = datetime.now(UTC).date()
    # reports fall due a year or more after the start: these grants belong to the call that closed long ago
    soon, due_today = (
        history.past_proposals(system, PAST, [n], language=lang)[0] for n, lang in ((8, "fr"), (9, "en"))
    )
    scenario.rank(system, [soon, due_today], call_id=PAST)  # stands in for the past call's evaluation
    grant_soon, grant_today = (history.award(staff, p, "150000.00") for p in (soon, due_today))
    contracted(
        staff,
        grant_soon,
        start_date=_start_with_due(24, "interim", today + timedelta(days=7)).isoformat(),
        duration_months=24,
    )
    contracted(staff, grant_today, start_date=_start_with_due(12, "final", today).isoformat(), duration_months=12)

    ((_rcpt, msg),) = eventually(lambda: smtp.mails(to=lead(8), kind="report_due"), 60, message="7-day reminder")
    assert msg["Subject"].startswith(f"Subvention {grant_soon['reference']} : rapport intermédiaire attendu le ")
    assert msg["Subject"].endswith("(dans 7 jours)")
    ((_rcpt, msg),) = eventually(lambda: smtp.mails(to=lead(9), kind="report_due"), 60, message="due-day reminder")
    assert msg["Subject"] == f"Grant {grant_today['reference']}: final report due today"
    assert not smtp.mails(to=partner(8), kind="report_due")  # reports are the lead applicant's task

    # the reminder timer keeps ticking (its lease is renewed) without reminding twice
    lease = "SELECT expires_at FROM leases WHERE name = 'notifications.report_reminders'"
    seen = system.scalar("notifications", lease)
    eventually(lambda: system.scalar("notifications", lease) > seen + timedelta(seconds=1), message="ticks")
    assert staff["pm"].notifications.send_due_reminders() == {"planned": 0}
    assert len(smtp.mails(kind="report_due")) == 2


def test_the_ec_report_is_sent_with_its_file_fetched_from_reporting(system, staff, smtp, opened_call):
    # the real reporting service archives the report and announces it; notifications fetches the file from it
    # with its own service identity and mails it to the EC contacts
    def generated():  # once reporting has the programme (its call_opened may still be on its way)
        try:
            return staff["pm"].reporting.generate_report(kind="quarterly", period="2010-Q1")
        except NotFound:
            return None

    made = eventually(generated, 60, 0.5, "the report generated")
    assert made["created"] is True
    ((_rcpt, msg),) = eventually(lambda: smtp.mails(to=EC_CONTACT), 60, message="EC report delivered")
    assert msg["Subject"] == "JMDI - quarterly report (1 January 2010 to 31 March 2010)"
    assert "Dear Jean-Marc Lefèvre," in body(msg)
    (attachment,) = list(msg.iter_attachments())
    archived = staff["auditor"].reporting.get_report(report_id=made["report_id"])
    assert attachment.get_filename() == archived["filename"] == made["filename"]
    assert attachment.get_content() == base64.b64decode(archived["content_base64"])  # byte for byte
    assert re.match(r"<notification-[0-9a-f-]{36}@jmdi\.local>", msg["Message-ID"])
    (delivery,) = deliveries(staff, template="ec_report")
    assert delivery["status"] == "sent" and delivery["message_id"] == msg["Message-ID"]
