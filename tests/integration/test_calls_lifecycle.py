"""The calls service on the real broker and PostgreSQL, with two calls processes: a programme from its data file,
a call that closes itself at a short deadline (once, whichever replica's sweep gets there), submissions with
screening, withdrawal and concurrency, then evaluation with several assessors and a conflict of interest, up to
the published ranking — and the events reaching the services that consume them."""

import re
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from services.calls.domain import load_profile, load_programme
from services.common.values.errors import Conflict, InvalidInput, NotFound
from tests.support import flows
from tests.support.infra import ServiceProcess, eventually, free_port
from tests.support.system import System

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 45  # long enough to submit on a busy shared machine, short enough to wait for
LIVE, LONG = "JMDI-LIVE", "JMDI-LONG"
PROFILE = load_profile("ec_prag")


@pytest.fixture(scope="module")
def system():
    with System(extra_env={"CALLS_DEADLINE_SWEEP_SECONDS": "1"}) as running:
        yield running


@pytest.fixture(scope="module")
def pm(system):
    return system.client("maria.pm", ["programme_manager"])


@pytest.fixture(scope="module")
def replica(system):
    """A second calls process: RPCs are shared between both, and both run the deadline sweep."""
    log_dir = system.log_dir / "replica"
    log_dir.mkdir(exist_ok=True)
    process = ServiceProcess("calls", {**system.env, "CALLS_METRICS_PORT": str(free_port())}, log_dir).start()
    eventually(
        lambda: (
            "calls started" in process.log_path.read_text(errors="replace")
            if process.running
            else pytest.fail(f"replica exited:\n{process.log_tail()}")
        ),
        90,
        0.3,
        "second calls process started",
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def live(system, pm, replica):
    """The shipped JMDI programme (its 36 months start the day it is loaded), a call with a short deadline, an
    exclusion list, and the call's proposals — submitted at once, before the deadline clock runs out."""
    loaded = pm.calls.load_programme(programme="jmdi")
    expected = shipped_period(datetime.now(timezone.utc).date())
    assert loaded["id"] == "JMDI" and loaded["period"] == expected
    deadline = datetime.now(timezone.utc) + timedelta(seconds=DEADLINE_SECONDS)
    pm.calls.create_call(
        call_id=LIVE,
        programme_id="JMDI",
        title="JMDI call 2008 (live)",
        deadline=deadline.isoformat(),
        windows=[
            {"window": "remittances", "allocation_eur": "400000.00"},
            {"window": "migrants_rights", "allocation_eur": "400000.00"},
        ],
    )
    opened = pm.calls.open_call(call_id=LIVE)
    screening = pm.calls.load_exclusion_list(
        csv="name,registration_number,reason\nStichting Diaspora Partners 6,,early-warning list\n"
        ",REG-MA-00007,bankruptcy\n",
        source="EDES extract 2008-12",
    )
    spec = {  # label: (n, window, country, requested)
        "R1": (1, "remittances", "MA", "150000.00"),
        "R2": (2, "remittances", "SN", "150000.00"),
        "R3": (3, "remittances", "MA", "150000.00"),
        "R4": (4, "remittances", "PH", "120000.00"),
        "R5": (5, "remittances", "GE", "100000.00"),
        "M1": (6, "migrants_rights", "ML", "100000.00"),
        "M2": (7, "migrants_rights", "MA", "100000.00"),
        "M3": (8, "migrants_rights", "SN", "100000.00"),
        "M4": (9, "migrants_rights", "EC", "100000.00"),
    }
    proposals = {
        label: pm.calls.submit_proposal(**flows.proposal(n, call_id=LIVE, window=w, country=c, requested=amount))
        for label, (n, w, c, amount) in spec.items()
    }
    return {"opened": opened, "deadline": deadline, "screening": screening, "proposals": proposals}


def shipped_period(loaded_on: date) -> dict:
    shipped = load_programme("jmdi", loaded_on)
    return {"start": shipped.period_start.isoformat(), "end": shipped.period_end.isoformat()}


def assessor(system, name):
    return system.client(name, ["assessor"])


# --- programmes ------------------------------------------------------------------------------------------------


def test_programmes_are_data_loaded_and_edited_by_rpc(system, pm, live):
    jmdi = pm.calls.get_programme(programme_id="JMDI")
    assert jmdi["ec_contribution"] == "15000000.00" and len(jmdi["eligible_countries"]) == 16
    assert jmdi["version"] == 1 and jmdi["windows"][0]["name_fr"] == "Transfert de fonds des immigrés"
    pm.calls.load_programme(programme=flows.programme("OTHER"))
    assert [p["id"] for p in pm.calls.list_programmes()] == ["JMDI", "OTHER"]

    with pytest.raises(InvalidInput) as bad:
        pm.calls.load_programme(
            programme={
                **flows.programme("BAD"),
                "ec_contribution": 15000000.0,
                "eligible_countries": ["MA", "XX"],
                "colour": "blue",
            }
        )
    assert {"programme.ec_contribution", "programme.eligible_countries.1", "programme.colour"} <= set(bad.value.errors)
    with pytest.raises(InvalidInput):
        pm.calls.load_programme(programme="../../../../etc/passwd")
    with pytest.raises(NotFound):
        pm.calls.load_programme(programme="no_such_programme")
    # the live call holds 400,000.00 of remittances: the programme cannot drop below it
    windows = [{**w, "allocation": "300000.00"} if w["code"] == "remittances" else w for w in jmdi["windows"]]
    with pytest.raises(Conflict) as in_use:
        pm.calls.update_programme(programme_id="JMDI", windows=windows)
    assert in_use.value.rule == "programme.in_use"
    assert pm.calls.get_programme(programme_id="JMDI")["version"] == 1
    with pytest.raises(NotFound):
        pm.calls.get_programme(programme_id="NOPE")

    # the shipped programme's period starts the day it was first loaded: loading the file again keeps that day
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    pm.calls.update_programme(programme_id="JMDI", period=shipped_period(yesterday))
    reloaded = pm.calls.load_programme(programme="jmdi")
    assert reloaded["period"] == shipped_period(yesterday) and reloaded["version"] == 3


def test_a_call_is_closed_within_its_programme_period(pm, live):
    end = date.fromisoformat(pm.calls.get_programme(programme_id="JMDI")["period"]["end"])
    late = datetime.combine(end + timedelta(days=1), datetime.min.time(), timezone.utc)
    with pytest.raises(Conflict) as refused:
        pm.calls.create_call(
            call_id="JMDI-LATE",
            programme_id="JMDI",
            title="after the programme",
            deadline=late.isoformat(),
            windows=[{"window": "remittances", "allocation_eur": "1.00"}],
        )
    assert refused.value.rule == "call.deadline_outside_programme"
    with pytest.raises(NotFound):
        pm.calls.get_call(call_id="JMDI-LATE")


# --- submissions -----------------------------------------------------------------------------------------------


def test_a_live_call_takes_proposals_with_references_and_screening(system, pm, live):
    opened, proposals = live["opened"], live["proposals"]
    assert opened["status"] == "open" and opened["min_grant_eur"] == "50000.00"
    assert opened["max_grant_eur"] == "200000.00" and opened["max_ec_share"] == "0.90"
    year = live["deadline"].year
    assert proposals["R1"]["reference"] == f"JMDI-{year}-MA-0001"
    assert proposals["R3"]["reference"] == f"JMDI-{year}-MA-0002"
    assert proposals["M2"]["reference"] == f"JMDI-{year}-MA-0003"
    assert proposals["R2"]["reference"] == f"JMDI-{year}-SN-0001"
    # screening at submission: a co-applicant by name, a lead by registration number
    assert {label: p["screening"] for label, p in proposals.items() if p["screening"] != "clear"} == {
        "M1": "flagged",
        "M2": "flagged",
    }
    flagged = pm.calls.get_proposal(proposal_id=proposals["M2"]["proposal_id"])
    assert flagged["screening_hits"][0]["matched_on"] == ["registration_number"]

    with pytest.raises(Conflict) as not_flagged:
        pm.calls.decide_screening(proposal_id=proposals["R1"]["proposal_id"], outcome="cleared")
    assert not_flagged.value.rule == "screening.not_flagged"
    with pytest.raises(InvalidInput) as no_reason:
        pm.calls.decide_screening(proposal_id=proposals["M2"]["proposal_id"], outcome="excluded")
    assert "reason" in no_reason.value.errors
    pm.calls.decide_screening(
        proposal_id=proposals["M1"]["proposal_id"],
        outcome="cleared",
        reason="a namesake, checked with the Dutch register",
    )
    excluded = pm.calls.decide_screening(
        proposal_id=proposals["M2"]["proposal_id"], outcome="excluded", reason="insolvent (EDES)"
    )
    assert (excluded["status"], excluded["screening"]) == ("excluded", "excluded")

    withdrawn = pm.calls.withdraw_proposal(proposal_id=proposals["M3"]["proposal_id"], reason="merged")
    assert withdrawn["status"] == "withdrawn"
    with pytest.raises(Conflict) as twice:
        pm.calls.withdraw_proposal(proposal_id=proposals["M3"]["proposal_id"])
    assert twice.value.rule == "proposal.not_submitted"
    with pytest.raises(Conflict) as early:
        pm.calls.close_call(call_id=LIVE)
    assert early.value.rule == "call.deadline_not_reached"
    with pytest.raises(Conflict) as not_yet:
        pm.calls.assign_assessors(call_id=LIVE)
    assert not_yet.value.rule == "call.not_closed"


def test_a_draft_call_is_amended_then_frozen(pm, live):
    deadline = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    created = pm.calls.create_call(
        call_id=LONG,
        programme_id="JMDI",
        title="Draft",
        deadline=deadline,
        windows=[{"window": w, "allocation_eur": "3000000.00"} for w in flows.WINDOWS],
        consortium={"max_co_applicants": 3},
    )
    assert created["status"] == "draft" and created["consortium"]["max_co_applicants"] == 3
    with pytest.raises(InvalidInput) as above_profile:
        pm.calls.amend_call(call_id=LONG, max_grant_eur="250000.00")
    assert "max_grant_eur" in above_profile.value.errors
    with pytest.raises(InvalidInput) as unknown_window:
        pm.calls.amend_call(call_id=LONG, windows=[{"window": "tourism", "allocation_eur": "1.00"}])
    assert "windows.0.window" in unknown_window.value.errors
    amended = pm.calls.amend_call(call_id=LONG, title="JMDI call 2008 (long)", min_duration_months=12)
    assert (amended["title"], amended["min_duration_months"]) == ("JMDI call 2008 (long)", 12)
    with pytest.raises(Conflict) as exists:
        pm.calls.create_call(
            call_id=LONG,
            programme_id="JMDI",
            title="x",
            deadline=deadline,
            windows=[{"window": "remittances", "allocation_eur": "1.00"}],
        )
    assert exists.value.rule == "call.exists"
    with pytest.raises(Conflict) as draft:
        pm.calls.submit_proposal(**flows.proposal(100, call_id=LONG))
    assert [d["rule"] for d in draft.value.details] == ["call.not_open"]
    pm.calls.open_call(call_id=LONG)
    with pytest.raises(Conflict) as frozen:
        pm.calls.amend_call(call_id=LONG, title="too late")
    assert frozen.value.rule == "call.not_draft"


def test_grant_bounds_are_exact_and_every_failed_rule_is_listed(system, pm, live):
    assert pm.calls.submit_proposal(**flows.proposal(101, call_id=LONG, requested="50000.00"))["status"] == "submitted"
    before = (system.count_rows("calls", "proposals"), system.outbox_events("calls"))
    with pytest.raises(Conflict) as above:
        pm.calls.submit_proposal(**flows.proposal(102, call_id=LONG, requested="200000.01"))
    assert above.value.rule == "proposal.not_eligible"
    assert above.value.details == [
        {
            "rule": "proposal.amount_above_maximum",
            "field": "ec_amount_requested_eur",
            "message": "200000.01 is above the maximum grant 200000.00",
        }
    ]
    payload = flows.proposal(103, call_id=LONG, country="FR", requested="250000.00")
    payload["duration_months"] = 6
    with pytest.raises(Conflict) as many:
        pm.calls.submit_proposal(**payload)
    assert {d["rule"] for d in many.value.details} == {
        "proposal.amount_above_maximum",
        "proposal.country_not_eligible",
        "proposal.duration_too_short",
    }
    with pytest.raises(InvalidInput) as bad:
        pm.calls.submit_proposal(**{**flows.proposal(104, call_id=LONG), "co_financing_eur": 1.5, "window": None})
    assert {"co_financing_eur", "window"} <= set(bad.value.errors)
    assert (system.count_rows("calls", "proposals"), system.outbox_events("calls")) == before


def _together(count, fn):
    results, errors, start = [None] * count, [], threading.Barrier(count)

    def run(i):
        try:
            start.wait(30)
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def test_concurrent_submissions_get_one_proposal_per_key_and_distinct_references(system, live):
    clients = [system.client("maria.pm", ["programme_manager"]) for _ in range(8)]
    same, errors = _together(8, lambda i: clients[i].calls.submit_proposal(**flows.proposal(110, call_id=LONG)))
    assert not errors and len({p["proposal_id"] for p in same}) == 1
    assert system.scalar("calls", f"SELECT count(*) FROM proposals WHERE idempotency_key = '{LONG}-110'") == 1
    assert (
        system.scalar(
            "calls",
            "SELECT count(*) FROM outbox WHERE event_type = 'proposal_submitted' "
            f"AND body LIKE '%{same[0]['proposal_id']}%'",
        )
        == 1
    )

    distinct, errors = _together(
        8, lambda i: clients[i].calls.submit_proposal(**flows.proposal(120 + i, call_id=LONG, country="GH"))
    )
    assert not errors
    year = distinct[0]["reference"].split("-")[1]
    assert sorted(p["reference"] for p in distinct) == [f"JMDI-{year}-GH-{n:04d}" for n in range(1, 9)]
    with pytest.raises(Conflict) as reused:
        clients[0].calls.submit_proposal(**{**flows.proposal(110, call_id=LONG), "title": "Something else"})
    assert reused.value.rule == "proposal.idempotency_key_reused"


# --- the deadline ----------------------------------------------------------------------------------------------


def test_the_call_closes_itself_once_at_the_deadline(system, pm, live, replica):
    closed = eventually(
        lambda: (lambda c: c if c["status"] == "closed" else None)(pm.calls.get_call(call_id=LIVE)),
        DEADLINE_SECONDS + 90,
        0.5,
        "the sweep closed the call",
    )
    assert datetime.fromisoformat(closed["closed_at"]) >= live["deadline"]
    assert closed["proposals"] == {"submitted": 7, "excluded": 1, "withdrawn": 1}
    assert _call_closed_events(system) == 1
    with pytest.raises(Conflict) as late:
        pm.calls.submit_proposal(**flows.proposal(60, call_id=LIVE))
    assert {d["rule"] for d in late.value.details} >= {"call.not_open", "call.deadline_passed"}
    with pytest.raises(Conflict) as withdraw:
        pm.calls.withdraw_proposal(proposal_id=live["proposals"]["R1"]["proposal_id"])
    assert withdraw.value.rule == "call.deadline_passed"
    with pytest.raises(Conflict) as again:
        pm.calls.close_call(call_id=LIVE)
    assert again.value.rule == "call.not_open"


def _call_closed_events(system) -> int:
    return system.scalar(
        "calls", f"SELECT count(*) FROM outbox WHERE event_type = 'call_closed' AND body LIKE '%\"{LIVE}\"%'"
    )


# --- evaluation and ranking ------------------------------------------------------------------------------------

ASSESSORS = ("amal", "bruno", "chen", "dina")


def scores(stage, value):
    return {code: value for code in PROFILE.grid(stage).codes}


def test_evaluation_with_a_conflict_of_interest_up_to_the_published_ranking(system, pm, live):
    proposals = live["proposals"]
    label_of = {p["proposal_id"]: label for label, p in proposals.items()}
    r1_lead = "Association Migrations et Développement 1"
    clients = {name: assessor(system, name) for name in ASSESSORS}
    with pytest.raises(Conflict) as undeclared:
        pm.calls.assign_assessors(call_id=LIVE, assessors=["amal", "bruno"])
    assert undeclared.value.rule == "assessment.no_declaration"
    for name, client in clients.items():
        interests = [r1_lead] if name == "amal" else []
        declared = client.calls.declare_conflicts(call_id=LIVE, interests=interests)
        assert declared["assessor"] == name  # the caller's identity, not a typed name

    cn = pm.calls.assign_assessors(call_id=LIVE)
    on = {label_of[a["proposal_id"]]: a["assessors"] for a in cn["assigned"]}
    assert set(on) == {"R1", "R2", "R3", "R4", "R5", "M1", "M4"}  # not the excluded M2 nor the withdrawn M3
    assert all(len(set(v)) == 2 for v in on.values()) and "amal" not in on["R1"]
    assert max(cn["load"].values()) - min(cn["load"].values()) <= 1
    assert pm.calls.assign_assessors(call_id=LIVE)["assigned"] == []  # a re-run only tops up

    # an assessor sees only the proposals assigned to them — never R1 for amal, who declared an interest in its
    # lead — and applicants' e-mail addresses masked (the programme manager writes to them, not assessors)
    for name, client in clients.items():
        mine = {label_of[p["proposal_id"]] for p in client.calls.list_proposals(call_id=LIVE)}
        assert mine == {label for label, names in on.items() if name in names}, name
        assert {label_of[a["proposal_id"]] for a in client.calls.my_assignments(call_id=LIVE)} == mine
    with pytest.raises(NotFound):
        clients["amal"].calls.get_proposal(proposal_id=proposals["R1"]["proposal_id"])
    with pytest.raises(NotFound):
        clients["amal"].calls.get_proposal(reference=proposals["R1"]["reference"])
    seen = clients[on["R2"][0]].calls.get_proposal(proposal_id=proposals["R2"]["proposal_id"])
    assert seen["reference"] == proposals["R2"]["reference"]
    assert all(re.fullmatch(r".\*\*\*@.+", a["email"]) for a in seen["proposal"]["applicants"])
    assert not any(
        "***" in a["email"]
        for a in pm.calls.get_proposal(proposal_id=proposals["R2"]["proposal_id"])["proposal"]["applicants"]
    )

    with pytest.raises(Conflict) as conflicted:
        clients["amal"].calls.record_assessment(
            proposal_id=proposals["R1"]["proposal_id"], scores=scores("concept_note", 5)
        )
    assert conflicted.value.rule == "assessment.conflict_of_interest"
    stranger = next(n for n in ASSESSORS if n not in on["R2"])
    with pytest.raises(Conflict) as not_assigned:
        clients[stranger].calls.record_assessment(
            proposal_id=proposals["R2"]["proposal_id"], scores=scores("concept_note", 5)
        )
    assert not_assigned.value.rule == "assessment.not_assigned"
    with pytest.raises(InvalidInput) as bad_scores:
        clients[on["R2"][0]].calls.record_assessment(
            proposal_id=proposals["R2"]["proposal_id"], scores={**scores("concept_note", 4), "1.1": 6}
        )
    assert "scores.1.1" in bad_scores.value.errors

    # concept notes: R5 fails; M4's two assessors are 20 points apart on /50 -> a third one is assigned
    def cn_value(label, position):  # position 2: the third assessor
        return {"R5": (2, 2, 2), "M4": (5, 3, 4)}.get(label, (4, 4, 4))[position]

    third = _score_all(clients, "concept_note", on, cn_value, label_of)
    assert set(third) == {"M4"} and third["M4"] not in on["M4"]
    m4 = next(s for s in pm.calls.get_scores(call_id=LIVE) if s["reference"] == proposals["M4"]["reference"])
    assert len(m4["stages"]["concept_note"]["assessments"]) == 3 and m4["stages"]["concept_note"]["score"] == "40.00"

    fa = pm.calls.assign_assessors(call_id=LIVE, stage="full_application")
    on_fa = {label_of[a["proposal_id"]]: a["assessors"] for a in fa["assigned"]}
    assert set(on_fa) == {"R1", "R2", "R3", "R4", "M1", "M4"} and "amal" not in on_fa["R1"]
    committee = system.client("steering.committee", ["committee"])
    with pytest.raises(Conflict) as incomplete:
        committee.calls.publish_ranking(call_id=LIVE, window="remittances")
    assert incomplete.value.rule == "ranking.evaluation_incomplete"

    def fa_value(label, position):  # totals /100: R1 90, R2 80, R3 70, R4 50 (under the threshold of 60)
        return {"R1": (5, 4), "R2": (4, 4), "R3": (4, 3), "R4": (3, 2)}.get(label, (4, 4))[min(position, 1)]

    assert _score_all(clients, "full_application", on_fa, fa_value, label_of) == {}

    ranking = committee.calls.publish_ranking(call_id=LIVE, window="remittances")
    assert ranking["status"] == "closed"
    published = ranking["rankings"][0]
    assert [e["reference"] for e in published["main"]] == [proposals[x]["reference"] for x in ("R1", "R2")]
    assert [e["score"] for e in published["main"]] == ["90.00", "80.00"]
    assert [e["reference"] for e in published["reserve"]] == [proposals["R3"]["reference"]]
    assert [e["reference"] for e in published["excluded"]] == [proposals["R4"]["reference"]]
    assert [e["reference"] for e in published["concept_note_failed"]] == [proposals["R5"]["reference"]]
    assert published["by_country"]["MA"] == {
        "main": 1,
        "main_amount": "150000.00",
        "reserve": 1,
        "reserve_amount": "150000.00",
        "excluded": 0,
    }
    with pytest.raises(Conflict) as locked:
        clients[on_fa["R2"][0]].calls.record_assessment(
            proposal_id=proposals["R2"]["proposal_id"], stage="full_application", scores=scores("full_application", 1)
        )
    assert locked.value.rule == "assessment.scores_locked"
    with pytest.raises(Conflict) as twice:
        committee.calls.publish_ranking(call_id=LIVE, window="remittances")
    assert twice.value.rule == "ranking.already_published"

    last = committee.calls.publish_ranking(call_id=LIVE)
    assert last["status"] == "evaluated"
    rights = pm.calls.get_ranking(call_id=LIVE, window="migrants_rights")[0]
    assert [e["reference"] for e in rights["main"]] == [proposals[x]["reference"] for x in ("M1", "M4")]
    assert pm.calls.get_call(call_id=LIVE)["status"] == "evaluated"

    # the events reached their consumers; the sweeps of both replicas went on all along: still one call_closed
    assert _call_closed_events(system) == 1
    _all_delivered(system)
    assert system.scalar("grants", f"SELECT count(*) FROM rankings WHERE call_id = '{LIVE}'") == 2
    evaluated = system.scalar("calls", "SELECT count(*) FROM outbox WHERE event_type = 'proposal_evaluated'")
    assert evaluated == 7 + 6  # concept notes of the 7 in evaluation, full applications of the 6 that passed


def _score_all(clients, stage, on, value, label_of) -> dict:
    """Every assessor scores what is assigned to them (third assessors included, as they appear); returns the
    third assessors that were added, by proposal label."""
    thirds = {}
    for _ in range(3):  # a third assessor appears after the second assessment
        pending = False
        for name, client in clients.items():
            for job in client.calls.my_assignments(call_id=LIVE, stage=stage, pending_only=True):
                pending = True
                label = label_of[job["proposal_id"]]
                position = on[label].index(name) if name in on.get(label, []) else 2
                result = client.calls.record_assessment(
                    proposal_id=job["proposal_id"],
                    comments=f"{name} on {label}",
                    scores=scores(stage, value(label, position)),
                )
                assert result["assessor"] == name
                if result["third_assessor"]:
                    thirds[label] = result["third_assessor"]
        if not pending:
            break
    return thirds


def _all_delivered(system):
    """Every event the calls service wrote reaches reporting (all of them) and grants (those it takes)."""
    with system.db("calls").connect() as conn:
        events = conn.execute(text("SELECT event_id, event_type FROM outbox")).all()
    grants_types = {
        "call_opened",
        "proposal_submitted",
        "proposal_withdrawn",
        "proposal_screened",
        "proposal_evaluated",
        "ranking_published",
    }

    def seen(service):
        with system.db(service).connect() as conn:
            return set(conn.execute(text("SELECT event_id FROM inbox")).scalars())

    eventually(lambda: {e.event_id for e in events} <= seen("reporting"), 90, 0.5, "reporting applied every event")
    eventually(
        lambda: {e.event_id for e in events if e.event_type in grants_types} <= seen("grants"),
        90,
        0.5,
        "grants applied the events it takes",
    )
