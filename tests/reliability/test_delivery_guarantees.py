"""No event lost, none applied twice: proven with real service processes, kill -9 and a real broker."""

import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.common.values.errors import Conflict
from tests.support import flows
from tests.support.bus import event_body, publish
from tests.support.infra import eventually
from tests.support.system import System

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def pm(system):
    client = system.client("maria.pm", ["programme_manager"])
    client.calls.load_programme(programme=flows.programme())
    client.calls.create_call(**flows.call())
    client.calls.open_call(call_id="JMDI-2008")
    return client


def submit_many(system, start: int, count: int, threads: int = 4, during=None) -> list[str]:
    """Submit `count` proposals from several staff sessions at once; `during` runs once a third are in. Returns
    the clients' own record: the ids of the proposals whose submission was acknowledged."""
    client = system.client("maria.pm", ["programme_manager"])
    done = []
    trigger = threading.Event()

    def worker(offset):
        for n in range(start + offset, start + count, threads):
            done.append(client.calls.submit_proposal(**flows.proposal(n))["proposal_id"])
            if len(done) >= count // 3:
                trigger.set()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    if during is not None:
        trigger.wait(120)
        during()
    for w in workers:
        w.join()
    assert len(done) == count
    return done


def produced(system) -> int:
    """Every event the producers committed (reporting consumes all of calls' and grants' events)."""
    return system.outbox_events("calls") + system.outbox_events("grants")


def applied_exactly_once(system, service: str, acknowledged: list[str]):
    """Against the clients' record, not the services' own bookkeeping: every acknowledged proposal reached the
    consumers, and each was planned one receipt (a key no constraint guards)."""
    expected = produced(system)
    eventually(lambda: system.inbox_count(service) >= expected, 90, 0.5, f"{service} caught up")
    ids = "', '".join(acknowledged)
    held = {
        "calls": f"SELECT count(*) FROM proposals WHERE id IN ('{ids}')",
        "grants": f"SELECT count(*) FROM proposals WHERE proposal_id IN ('{ids}')",
        "reporting": f"SELECT count(*) FROM proposal_facts WHERE proposal_id IN ('{ids}')",
        "notifications": f"SELECT count(DISTINCT proposal_id) FROM notifications WHERE proposal_id IN ('{ids}')",
    }
    eventually(
        lambda: all(system.scalar(s, q) == len(acknowledged) for s, q in held.items()),
        90,
        0.5,
        "every acknowledged proposal everywhere",
    )
    receipts = system.scalar(
        "notifications",
        f"SELECT count(*) FROM notifications WHERE template = 'submission_receipt' AND proposal_id IN ('{ids}')",
    )
    assert receipts == len(acknowledged)  # one per proposal (the lead): none planned twice
    assert system.pending_outbox("calls") == 0


def test_kill9_of_a_consumer_in_the_middle_of_the_flow_loses_nothing_and_duplicates_nothing(system, pm):
    acknowledged = submit_many(system, 1000, 120, during=lambda: system.kill9("reporting"))
    assert system.processes["reporting"].proc.returncode == -9  # the fault happened
    system.start("reporting")
    system.wait_ready("reporting")
    applied_exactly_once(system, "reporting", acknowledged)


def test_kill9_of_the_producer_between_commit_and_publish_loses_nothing(system, pm):
    killed = []

    def kill_and_restart():
        system.kill9("calls")
        killed.append(system.processes["calls"].proc.returncode)
        system.start("calls")  # requests sent meanwhile wait in its queue; the one in flight is redelivered

    acknowledged = submit_many(system, 2000, 120, during=kill_and_restart)
    assert killed == [-9]  # the fault happened (its exact window is hit on purpose in test_crash_points.py)
    system.wait_ready("calls")
    # rows committed but not yet published before the kill are sent by the restarted relay
    eventually(lambda: system.pending_outbox("calls") == 0, 60, 0.5, "calls outbox drained")
    applied_exactly_once(system, "reporting", acknowledged)
    expected_submissions = system.count_rows("calls", "proposals")
    eventually(lambda: system.count_rows("grants", "proposals") == expected_submissions, 60, 0.5, "grants copies")


def test_a_redelivered_event_is_acknowledged_and_not_applied_again(system, pm):
    proposal = flows.proposal(3000)
    body = event_body(
        "proposal_submitted",
        {
            **{k: v for k, v in proposal.items() if k not in ("idempotency_key",)},
            "proposal_id": "dup-3000",
            "reference": "JMDI-DUP-3000",
            "programme_id": "JMDI",
            "applicant_type": "civil_society_organisation",
            "lead_organisation": proposal["applicants"][0]["name"],
            "budget": {k: Decimal(v) for k, v in proposal["budget"].items()},
            "total_eligible_cost_eur": Decimal(proposal["total_eligible_cost_eur"]),
            "ec_amount_requested_eur": Decimal(proposal["ec_amount_requested_eur"]),
            "co_financing_eur": Decimal(proposal["co_financing_eur"]),
            "submitted_at": datetime.now(timezone.utc),
        },
    )
    consumers = ("grants", "reporting", "notifications")
    eventually(
        lambda: system.scalar("notifications", "SELECT count(*) FROM notifications WHERE status = 'pending'") == 0,
        90,
        0.5,
        "earlier e-mails sent",
    )
    applied = {
        s: _metric(system, s, "jmdi_events_handled_total", event_type="proposal_submitted", outcome="applied")
        for s in consumers
    }
    duplicates = {s: _metric(system, s, "jmdi_inbox_duplicates_total") for s in consumers}
    sent = _metric(system, "notifications", "jmdi_emails_total", template="submission_receipt", outcome="sent")
    publish(system.amqp_uri, body, times=3)
    for service in consumers:
        eventually(
            lambda: _metric(system, service, "jmdi_inbox_duplicates_total") >= duplicates[service] + 2,
            60,
            0.5,
            f"{service} saw the duplicates",
        )
        # counted by the services' own counters of applications and messages sent, which no key constrains
        assert (
            _metric(system, service, "jmdi_events_handled_total", event_type="proposal_submitted", outcome="applied")
            == applied[service] + 1
        ), service
    eventually(
        lambda: (
            _metric(system, "notifications", "jmdi_emails_total", template="submission_receipt", outcome="sent")
            >= sent + 1
        ),
        60,
        0.5,
        "the receipt sent",
    )
    assert (
        _metric(system, "notifications", "jmdi_emails_total", template="submission_receipt", outcome="sent") == sent + 1
    )


def test_a_poison_event_is_dead_lettered_the_others_flow_and_replay_applies_it_once(system, pm):
    ops = system.client("ops.pm", ["programme_manager"])
    proposal = flows.proposal(4000, call_id="GHOST-CALL")
    poison = event_body(
        "proposal_submitted",
        {
            **{k: v for k, v in proposal.items() if k != "idempotency_key"},
            "proposal_id": "ghost-4000",
            "reference": "JMDI-GHOST-4000",
            "programme_id": "JMDI",
            "applicant_type": "civil_society_organisation",
            "lead_organisation": "Ghost",
            "budget": {k: Decimal(v) for k, v in proposal["budget"].items()},
            "total_eligible_cost_eur": Decimal(proposal["total_eligible_cost_eur"]),
            "ec_amount_requested_eur": Decimal(proposal["ec_amount_requested_eur"]),
            "co_financing_eur": Decimal(proposal["co_financing_eur"]),
            "submitted_at": datetime.now(timezone.utc),
        },
    )
    publish(system.amqp_uri, poison)
    # grants cannot budget a proposal of a call it never saw opened: retried, then kept as a dead letter
    letters = eventually(lambda: ops.grants.list_dead_letters(), 60, 0.5, "dead letter")
    assert [(l["event_id"], l["status"], l["attempts"]) for l in letters] == [(poison["event_id"], "held", 3)]
    assert "proposal.unknown_call" in letters[0]["error"]
    # ... while everything else keeps flowing
    before = system.count_rows("grants", "proposals")
    pm.calls.submit_proposal(**flows.proposal(4001))
    eventually(lambda: system.count_rows("grants", "proposals") == before + 1, 60, 0.5, "others flow")
    assert 'jmdi_dead_letters{service="grants"} 1.0' in _metrics(system, "grants")

    # the fix: the call's opening reaches grants; replaying the letter now applies it, once
    publish(
        system.amqp_uri,
        event_body(
            "call_opened",
            {
                "call_id": "GHOST-CALL",
                "programme_id": "JMDI",
                "programme_name": "JMDI",
                "envelope_eur": Decimal("15000000"),
                "rule_profile": "ec_prag",
                "title": "Late call",
                "deadline": datetime.now(timezone.utc) + timedelta(days=3),
                "min_grant_eur": Decimal("50000"),
                "max_grant_eur": Decimal("200000"),
                "max_ec_share": Decimal("0.9"),
                "windows": [{"window": w, "name": w, "allocation_eur": Decimal("100000")} for w in flows.WINDOWS],
            },
        ),
    )
    eventually(lambda: system.scalar("grants", "SELECT count(*) FROM calls WHERE call_id = 'GHOST-CALL'") == 1, 60)
    assert ops.grants.replay_dead_letter(id=letters[0]["id"]) == {"id": letters[0]["id"], "outcome": "applied"}
    assert system.scalar("grants", "SELECT count(*) FROM proposals WHERE proposal_id = 'ghost-4000'") == 1
    with pytest.raises(Conflict) as again:
        ops.grants.replay_dead_letter(id=letters[0]["id"])
    assert again.value.rule == "dead_letter.not_held"
    assert ops.grants.list_dead_letters() == []


def test_events_published_while_a_consumer_has_never_run_wait_for_it():
    with System(services=("calls", "grants")) as partial:
        pm = partial.client("maria.pm", ["programme_manager"])
        pm.calls.load_programme(programme=flows.programme())
        pm.calls.create_call(**flows.call())
        pm.calls.open_call(call_id="JMDI-2008")
        for n in range(25):
            pm.calls.submit_proposal(**flows.proposal(n))
        eventually(lambda: partial.pending_outbox("calls") == 0, 60, 0.5, "published")
        partial.start("reporting")  # first start ever: its database is migrated now
        partial.wait_ready("reporting")
        expected = partial.outbox_events("calls")
        assert expected == 26
        eventually(lambda: partial.count_rows("reporting", "event_archive") == expected, 60, 0.5, "all applied")
        assert partial.inbox_count("reporting") == expected


def _metrics(system, service) -> str:
    with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
        return response.read().decode()


def _metric(system, service, name: str, **labels) -> float:
    """A counter summed over the series whose labels include `labels`."""
    total = 0.0
    for line in _metrics(system, service).splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
