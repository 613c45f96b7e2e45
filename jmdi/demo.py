"""`jmdi demo`: the 2008 JMDI call replayed end to end against the running services.

The programme (services/calls/data/programmes/jmdi.yaml: EUR 15 M, 4 windows, 16 countries), one call, a few
hundred proposals from consortia across the countries (jmdi/scenario.py, deterministic by seed; some ineligible),
screening against an exclusion list, three assessors (two of them with a declared conflict of interest), the
ranking, awards within each window's allocation, organisations and contracts, first tranches, an interim report
and a second tranche for some grants; then the budget report.

Each step is played by the staff member whose role it needs (tokens signed with JMDI_SECRET or, in local mode,
the checkout's development secret), so the audit trail reads like the real thing and the four-eyes rules hold.
Running it again for the same call id is refused (the call exists); `--call` replays it under another id.
"""
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import yaml

from services.common.auth import issue_token
from services.common.config import SERVICES_DIR
from services.common.errors import Conflict, NotFound
from services.common.wire import to_wire

from . import output, scenario
from .failures import UsageProblem
from .payload import programme_from_yaml
from .session import Connection

PROGRAMME_FILE = SERVICES_DIR / "calls" / "data" / "programmes" / "jmdi.yaml"
PERSONAS = {
    "pm": ("maria.lopez", "programme_manager"),
    "assessor_a": ("karim.benali", "assessor"),
    "assessor_b": ("joana.santos", "assessor"),
    "assessor_c": ("ngozi.okafor", "assessor"),
    "committee": ("steering.committee", "committee"),
    "officer": ("farid.haddad", "finance_officer"),
    "approver": ("claire.dubois", "finance_approver"),
    "reporter": ("ec.reporter", "ec_reporter"),
}
ASSESSORS = ("assessor_a", "assessor_b", "assessor_c")
STAGES = ("concept_note", "full_application")
WAIT_SECONDS = 90.0
DEADLINE_BASE, DEADLINE_PER_PROPOSAL = 15.0, 0.2  # seconds: the submissions must all be in before it
CENT = Decimal("0.01")


class Demo:
    def __init__(self, connection, proposals: int, seed: int, call_id: str, say=output.note, workers: int = 4):
        self.connection = connection
        self.count = proposals
        self.seed = seed
        self.call_id = call_id
        self.say = say
        self.workers = workers
        self.rng = random.Random(seed)
        secret = connection.settings.signing_secret()
        if connection.settings.token or not secret:
            raise UsageProblem("the demo plays several staff members and signs their tokens: run it with "
                               "JMDI_SECRET set (not JMDI_TOKEN), or in local mode from a checkout")
        self.tokens = {key: issue_token(secret, user, [role], timedelta(hours=2))
                       for key, (user, role) in PERSONAS.items()}
        self.grants: list[dict] = []
        self._local = threading.local()
        self._connections = [connection]
        self._lock = threading.Lock()

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _connection(self):
        """One RPC connection per thread (a nameko proxy is not shared between threads)."""
        if threading.current_thread() is threading.main_thread():
            return self.connection
        conn = getattr(self._local, "connection", None)
        if conn is None:
            conn = self._local.connection = Connection(self.connection.settings)
            with self._lock:
                self._connections.append(conn)
        return conn

    def rpc(self, persona: str, operation: str, **payload):
        service, name = operation.split(".", 1)
        return self._connection().call(service, name, payload, token=self.tokens[persona])

    def parallel(self, items, action) -> list:
        """`action(item)` for every item on a few threads (the services, not the CLI, are the bottleneck)."""
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(action, items))

    def close(self):
        for conn in self._connections[1:]:
            conn.close()

    def step(self, title: str, action):
        started = time.monotonic()
        summary = action()
        self.say(f"✓ {title}: {summary} ({time.monotonic() - started:.1f}s)")

    def wait_for(self, what: str, probe, timeout: float = WAIT_SECONDS):
        """Events reach the other services a moment later: ask again until they have (or give up clearly)."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            try:
                result = probe()
            except NotFound:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise Conflict("demo.timeout", f"gave up waiting {timeout:.0f}s for {what}")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    # --- the story ------------------------------------------------------------------------------------------------
    def run(self):
        self.document = replayed_today(yaml.safe_load(Path(PROGRAMME_FILE).read_text(encoding="utf-8")))
        self.programme = programme_from_yaml(self.document)
        self.refuse_if_already_run()
        self.scenario = scenario.build(self.programme, self.call_id, self.count, self.seed)
        self.say(f"JMDI demo: call {self.call_id}, {self.count} proposals, seed {self.seed}")
        try:
            self.step("programme loaded", self.load_programme)
            self.step("call opened", self.open_call)
            self.step("proposals submitted", self.submit_proposals)
            self.step("assessors declared their interests", self.declare)
            self.step("call closed at its deadline, proposals screened", self.screen)
            for stage in STAGES:
                self.step(f"{stage.replace('_', ' ')}s assessed", lambda: self.assess(stage))
            self.step("ranking published", self.rank)
            self.step("grants awarded within each window's allocation", self.award)
            self.step("organisations registered, bank accounts validated, contracts signed", self.contract)
            self.step("first tranches requested and paid", self.first_tranches)
            self.step("interim reports accepted, second tranches paid", self.second_tranches)
            self.budget_report()
        finally:
            self.close()

    def refuse_if_already_run(self):
        """Twice would double nothing but would not fit either: the windows' allocations are spent once."""
        fresh_start = "stop the services, `make clean`, `make run` for a fresh start"
        try:
            self.rpc("pm", "calls.get_call", call_id=self.call_id)
        except NotFound:
            pass
        else:
            raise Conflict("demo.already_run", f"call {self.call_id} already exists: the demo has run against "
                           f"these services ({fresh_start})")
        if self.rpc("reporter", "grants.list_grants", programme_id=self.programme["id"], limit=1):
            raise Conflict("demo.already_run", f"programme {self.programme['id']} already has grants: its windows' "
                           f"allocations are taken ({fresh_start})")

    def load_programme(self):
        self.rpc("pm", "calls.load_programme", programme=self.document)
        windows = ", ".join(f"{w['code']} {w['allocation_eur']}" for w in self.programme["windows"])
        return (f"{self.programme['id']} EUR {self.programme['ec_contribution_eur']}, "
                f"{len(self.programme['eligible_countries'])} countries; windows {windows}")

    def open_call(self):
        # the call closes at its deadline and not before: leave just enough time for the submissions
        self.deadline = datetime.now(timezone.utc) + timedelta(seconds=DEADLINE_BASE + DEADLINE_PER_PROPOSAL *
                                                               self.count)
        self.rpc("pm", "calls.create_call", call_id=self.call_id, programme_id=self.programme["id"],
                 title="Call for proposals: migration and development (JMDI 2008, replayed)",
                 windows=[{"window": w["code"], "allocation_eur": w["allocation_eur"]}
                          for w in self.programme["windows"]],
                 deadline=self.deadline.isoformat())
        call = self.rpc("pm", "calls.open_call", call_id=self.call_id)
        return f"{self.call_id} {call.get('status')}, deadline {self.deadline:%H:%M:%S} UTC"

    def submit_proposals(self):
        def submit(consortium):
            try:
                proposal = self.rpc("pm", "calls.submit_proposal", **consortium.payload)
            except Conflict as exc:
                rules = [d.get("rule") for d in exc.details if isinstance(d, dict)] or [exc.rule]
                consortium.refused = ", ".join(r for r in rules if r)
                return
            consortium.proposal_id, consortium.reference = proposal["proposal_id"], proposal["reference"]

        self.parallel(self.scenario.consortia, submit)
        refused = Counter(c.refused for c in self.scenario.consortia if c.refused)
        detail = "; ".join(f"{n} {rule}" for rule, n in refused.items())
        return f"{len(self.received)} received" + (f", {sum(refused.values())} refused ({detail})"
                                                   if refused else "")

    @property
    def received(self):
        return [c for c in self.scenario.consortia if c.proposal_id]

    def screen(self):
        time.sleep(max(0.0, (self.deadline - datetime.now(timezone.utc)).total_seconds()))
        try:
            self.rpc("pm", "calls.close_call", call_id=self.call_id)
        except Conflict as exc:
            if exc.rule != "call.not_open":  # the service's own sweep may have closed it at the deadline
                raise
        csv_lines = ["name,registration_number,reason"] + [
            f"\"{e['name']}\",{e['registration_number']},{e['reason']}" for e in self.scenario.exclusions]
        self.rpc("pm", "calls.load_exclusion_list", csv="\n".join(csv_lines) + "\n",
                 source="EC central exclusion database, extract (demo)")
        flagged = self.rpc("pm", "calls.list_proposals", call_id=self.call_id, screening="flagged")
        by_id = {c.proposal_id: c for c in self.received}
        excluded = cleared = 0
        for proposal in flagged:
            consortium = by_id.get(proposal["proposal_id"])
            if consortium is not None and consortium.flaw == "excluded":
                self.rpc("pm", "calls.decide_screening", proposal_id=proposal["proposal_id"], outcome="excluded",
                         reason="the lead applicant is on the EC exclusion list")
                consortium.refused = "excluded"
                excluded += 1
            else:  # a namesake: checked by hand and cleared
                self.rpc("pm", "calls.decide_screening", proposal_id=proposal["proposal_id"], outcome="cleared",
                         reason="namesake, different registration")
                cleared += 1
        return (f"{len(self.received)} screened against {len(self.scenario.exclusions)} exclusion entries: "
                f"{excluded} excluded, {cleared} flagged and cleared")

    def declare(self):
        # two assessors know an organisation in the pool: they declare it, and are never assigned its proposals
        screened = [c for c in self.received if not c.flaw]
        self.conflicts = {"assessor_a": screened[0], "assessor_b": screened[len(screened) // 2]}
        for persona in ASSESSORS:
            known = self.conflicts.get(persona)
            interests = [{"name": known.lead["name"], "registration_number": known.lead["registration_number"]}] \
                if known else []
            self.rpc(persona, "calls.declare_conflicts", call_id=self.call_id, interests=interests)
        return "; ".join(f"{PERSONAS[p][0]} a link with {c.lead['name']}" for p, c in self.conflicts.items()) + \
            f"; {PERSONAS['assessor_c'][0]} none"

    def assess(self, stage: str):
        assigned = self.rpc("pm", "calls.assign_assessors", call_id=self.call_id, stage=stage,
                            assessors=[PERSONAS[p][0] for p in ASSESSORS])
        quality = {c.proposal_id: c.quality for c in self.received}
        bias = {"assessor_a": 0.15, "assessor_b": -0.1, "assessor_c": 0.0}
        seeds = {persona: self.rng.randrange(1 << 30) for persona in ASSESSORS}

        def work_through(persona):
            """An assessor scores what is assigned to them (a third assessment may arrive meanwhile)."""
            rng, done = random.Random(seeds[persona]), 0
            while True:
                pending = self.rpc(persona, "calls.my_assignments", call_id=self.call_id, stage=stage,
                                   pending_only=True)
                if not pending:
                    return done
                for assignment in pending:
                    scores = scenario.criterion_scores(assignment["criteria"],
                                                       quality.get(assignment["proposal_id"], 0.5),
                                                       bias[persona], rng)
                    self.rpc(persona, "calls.record_assessment", proposal_id=assignment["proposal_id"], stage=stage,
                             scores=scores, comments="Assessed against the grid of the call.")
                    done += 1

        scored = sum(self.parallel(ASSESSORS, work_through))
        # third assessors are assigned as the others score: one more round picks up any that arrived late
        scored += sum(self.parallel(ASSESSORS, work_through))
        for persona, known in self.conflicts.items():
            mine = self.rpc(persona, "calls.my_assignments", call_id=self.call_id)
            assert known.proposal_id not in {a["proposal_id"] for a in mine}, \
                "an assessor was assigned a proposal they declared a link with"
        return f"{len(assigned.get('assigned', []))} proposals, {scored} assessments by {len(ASSESSORS)} assessors"

    def rank(self):
        published = self.rpc("committee", "calls.publish_ranking", call_id=self.call_id)
        self.rankings = published.get("rankings", [])
        main = sum(len(r["main"]) for r in self.rankings)
        reserve = sum(len(r["reserve"]) for r in self.rankings)
        excluded = sum(len(r["excluded"]) + len(r.get("concept_note_failed", [])) for r in self.rankings)
        return f"{main} on the main lists, {reserve} in reserve, {excluded} under a threshold"

    def award(self):
        by_id = {c.proposal_id: c for c in self.received}
        decision_date = date.today().isoformat()

        def award_one(entry):
            grant = self.wait_for(
                f"grants to learn the ranking of {entry['reference']}",
                lambda: _unless_conflict(lambda: self.rpc(
                    "committee", "grants.award_grant", proposal_id=entry["proposal_id"],
                    amount_eur=entry["ec_amount_requested_eur"], decision_reference=f"SC-{self.call_id}-01",
                    decision_date=decision_date), "award.not_ranked"))
            return {"grant": grant, "consortium": by_id[entry["proposal_id"]]}

        self.grants = self.parallel([e for r in self.rankings for e in r["main"]], award_one)
        per_window = Counter()
        for item in self.grants:
            per_window[item["grant"]["window"]] += Decimal(item["grant"]["amount_eur"])
        return f"{len(self.grants)} grants: " + ", ".join(f"{w} EUR {v}" for w, v in sorted(per_window.items()))

    def contract(self):
        # contracts started 13 months ago in this replay, so that the first interim period has ended
        start = add_months(date.today(), -13)
        ibans = {id(item): iban_for(item["consortium"].lead["country"], self.rng) for item in self.grants}

        def sign(item):
            lead, iban = item["consortium"].lead, ibans[id(item)]
            organisation = self.rpc("officer", "grants.register_organisation", legal_name=lead["name"],
                                    registration_number=lead["registration_number"], country=lead["country"],
                                    iban=iban, signatory=f"Director, {lead['name']}"[:200])
            self.rpc("approver", "grants.validate_bank_account", organisation_id=organisation["organisation_id"],
                     iban=iban)
            item["grant"] = self.rpc("pm", "grants.sign_contract", grant_id=item["grant"]["grant_id"],
                                     organisation_id=organisation["organisation_id"], start_date=start.isoformat())

        self.parallel(self.grants, sign)
        return f"{len(self.grants)} contracts signed, starting {start.isoformat()}"

    def pay(self, item, tranche_number: int, value_date: date) -> Decimal:
        tranche = next(t for t in item["grant"]["schedule"] if t["number"] == tranche_number)
        amount = tranche.get("payable_eur") or tranche["planned_amount_eur"]
        grant_id = item["grant"]["grant_id"]
        payment = self.rpc("officer", "grants.request_payment", grant_id=grant_id, tranche_number=tranche_number,
                           amount_eur=amount, idempotency_key=f"demo-{grant_id}-{tranche_number}")
        self.rpc("approver", "grants.approve_payment", payment_id=payment["payment_id"],
                 value_date=value_date.isoformat(), bank_reference=f"UNDP-BRU-{grant_id[:8]}-{tranche_number}")
        return Decimal(amount)

    def first_tranches(self):
        value_date = add_months(date.today(), -12)
        total = sum(self.parallel(self.grants, lambda item: self.pay(item, 1, value_date)))
        return f"{len(self.grants)} pre-financing payments, EUR {total}"

    def second_tranches(self):
        # PRAG option 2 grants (> 12 months and > EUR 100,000) have a further pre-financing after the interim
        # report: half of them report now, having spent 75-100% of their first tranche
        candidates = [i for i in self.grants if any(t["kind"] == "further_pre_financing"
                                                    for t in i["grant"]["schedule"])]
        chosen = candidates[: (len(candidates) + 1) // 2]
        ratios = {id(item): Decimal(self.rng.randint(75, 100)) / 100 for item in chosen}

        def report_and_pay(item):
            grant = item["grant"] = self.rpc("pm", "grants.get_grant", grant_id=item["grant"]["grant_id"])
            paid = Decimal(next(t for t in grant["schedule"] if t["number"] == 1)["paid_eur"])
            spent = paid * ratios[id(item)] / Decimal(grant["ec_share"])
            report = self.rpc("pm", "grants.submit_report", grant_id=grant["grant_id"], kind="interim", number=1,
                              expenditure=spread(grant["contract_budget"] or grant["budget"], spent))
            self.rpc("pm", "grants.accept_report", report_id=report["report_id"])
            item["grant"] = self.rpc("pm", "grants.get_grant", grant_id=grant["grant_id"])
            return self.pay(item, 2, date.today())

        total = sum(self.parallel(chosen, report_and_pay), Decimal("0.00"))
        return f"{len(chosen)} interim reports accepted, EUR {total} in second tranches"

    def budget_report(self):
        paid = sum((Decimal(p["amount_eur"]) for p in self.rpc("reporter", "grants.list_payments", status="paid",
                                                               limit=10000)), Decimal("0.00"))

        def settled():
            totals = self.rpc("reporter", "reporting.totals", programme_id=self.programme["id"])
            return totals if Decimal(totals["disbursed_eur"]) >= paid else None

        self.wait_for("reporting to record every payment", settled)
        report = self.rpc("reporter", "reporting.budget_report", programme_id=self.programme["id"], format="table")
        print(report.get("content") if isinstance(report, dict) else report)


def replayed_today(document: dict) -> dict:
    """The shipped programme, its three-year period moved to start today: calls are checked against the clock
    (a deadline in the future, within the programme's period), so 2008 is replayed now."""
    start = date.today() - timedelta(days=30)
    end = add_months(start, 36) - timedelta(days=1)
    return to_wire({**document, "period": {"start": start, "end": end}})


def add_months(day: date, count: int) -> date:
    month = day.month - 1 + count
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, 28))


def _unless_conflict(action, *waiting_rules):
    """None (ask again) while the grants service has not yet seen what the award needs."""
    try:
        return action()
    except Conflict as exc:
        if exc.rule in waiting_rules:
            return None
        raise


def spread(budget: dict, total: Decimal) -> dict:
    """`total` spread over the budget headings in proportion to the budget (cents to the last heading)."""
    amounts = {k: Decimal(str(v)) for k, v in budget.items() if Decimal(str(v)) > 0}
    whole = sum(amounts.values())
    total = total.quantize(CENT, rounding=ROUND_DOWN)
    out, given = {}, Decimal("0.00")
    keys = list(amounts)
    for key in keys[:-1]:
        out[key] = (total * amounts[key] / whole).quantize(CENT, rounding=ROUND_DOWN)
        given += out[key]
    out[keys[-1]] = total - given
    return {k: str(v) for k, v in out.items()}


def iban_for(country: str, rng: random.Random) -> str:
    """A well-formed IBAN (right length, mod-97 check digits) in the country, or a euro account in Brussels when
    the country has no IBAN (the grant is then paid to the lead's account held in Belgium)."""
    from services.grants.domain.organisations import ALL_IBAN_LENGTHS
    if country not in ALL_IBAN_LENGTHS:
        country = "BE"
    bban = "".join(str(rng.randint(0, 9)) for _ in range(ALL_IBAN_LENGTHS[country] - 4))
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def run_demo(connection, proposals: int = 300, seed: int = 2008, call_id: str = "JMDI-2008"):
    if proposals < 8:
        raise UsageProblem("--proposals must be at least 8 (two per window)")
    started = time.monotonic()
    Demo(connection, proposals, seed, call_id).run()
    output.note(f"demo finished in {time.monotonic() - started:.0f}s")
