"""`jmdi demo`: the 2008 JMDI call replayed end to end against the running services.

The programme (services/calls/data/programmes/jmdi.yaml: EUR 15 M, 4 windows, 16 countries; its 36 months start
the day it is first loaded), one call, a few hundred proposals from consortia across the countries
(jmdi/scenario.py, deterministic by seed; some ineligible), screening against an exclusion list, three assessors
(two of them with a declared conflict of interest), the ranking, awards within each window's allocation,
organisations and contracts, the first tranches (pre-financing at signature), a few grants terminated early and
closed (below); then the budget report. Everything happens now, in the order the programme's rules demand — the
call closes, then the committee decides, then contracts start and tranches are paid — so nothing is disbursed
before it is committed. (Interim reports and the further tranches they release come once a contract's first 12
months have passed.)

Early terminations: contracts start today and run for years, so no grant can close on its planned end. A few do
what grants in a real programme do — the action stops early (the reasons in TERMINATIONS); a second programme
manager, not the one who signed the contract, terminates it effective today; the consortium's final report up to
that day is accepted with an underspend (less spent than pre-financed, so a recovery order; or somewhat more, so
a small balance is paid first; staff costs in the consortium's currency where the demo has its rates, with the
indicators' actual values); closure then decommits what the grant will never use, and the budget report shows it
in its Decommitted column.

While a step waits — for the call's deadline, for the assessors, for the other services to catch up — a line on
stderr every few seconds says what it is waiting for.

Each step is played by the staff member whose role it needs (tokens signed by the issuer key JMDI_ISSUER_KEY or,
in local mode, the checkout's local issuer), so the audit trail reads like the real thing and the four-eyes rules hold.
Running it again for the same call id is refused (the call exists); `--call` replays it under another id.
"""

import random
import threading
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import yaml

from services.common.runtime.config import SERVICES_DIR
from services.common.values.errors import Conflict, NotFound
from services.common.values.wire import to_wire

from . import output, scenario
from .failures import UsageProblem
from .payload import programme_from_yaml

PROGRAMME_FILE = SERVICES_DIR / "calls" / "data" / "programmes" / "jmdi.yaml"
PERSONAS = {
    "pm": ("maria.lopez", "programme_manager"),
    "coordinator": ("thomas.weber", "programme_manager"),  # terminations: not the one who signed the contracts
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
HEARTBEAT_SECONDS = 5.0  # a progress line this often while a step runs
DEADLINE_BASE, DEADLINE_PER_PROPOSAL = 15.0, 0.2  # seconds: the submissions must all be in before it
# grants terminated early: the reason, and the final report's EC-funded spending as a share of what was pre-financed
# the currencies the demo's rates cover, by the country a consortium works in
LOCAL_CURRENCY = {"MA": "MAD", "SN": "XOF", "ML": "XOF", "EG": "EGP", "PH": "PHP"}
TERMINATIONS = (
    (
        "The lead applicant was dissolved by its general assembly; the partners cannot carry on the action "
        "(termination by the Contracting Authority).",
        Decimal("0.40"),
    ),
    (
        "The partner authority withdrew after local elections; the action lost its purpose (termination by mutual "
        "agreement).",
        Decimal("0.75"),
    ),
    (
        "Security conditions in the target area stopped the field work for good (force majeure, termination by "
        "mutual agreement).",
        Decimal("1.10"),
    ),
)


class Demo:
    def __init__(self, connection, proposals: int, seed: int, call_id: str, say=output.note, workers: int = 4):
        self.connection = connection
        self.count = proposals
        self.seed = seed
        self.call_id = call_id
        self.say = say
        self.workers = workers
        self.rng = random.Random(seed)
        issuer = None if connection.settings.token else connection.settings.staff_issuer()
        if issuer is None:
            raise UsageProblem(
                "the demo plays several staff members and signs their tokens: run it in local mode "
                "from a checkout, or with JMDI_ISSUER_KEY set (not JMDI_TOKEN)"
            )
        self.tokens = {key: issuer.issue(user, [role], timedelta(hours=2)) for key, (user, role) in PERSONAS.items()}
        self.grants: list[dict] = []
        self.done = 0  # units of work of the running step (proposals submitted, assessments recorded...)
        self.activity: Callable[[], str] | None = None  # what the running step is waiting for, when it is waiting
        self._lock = threading.Lock()

    # --- plumbing -----------------------------------------------------------------------------------------------
    def rpc(self, persona: str, operation: str, **payload):
        service, name = operation.split(".", 1)
        # one HTTP request each: the threads share the connection settings, nothing else
        return self.connection.call(service, name, payload, token=self.tokens[persona])

    def parallel(self, items, action) -> list:
        """`action(item)` for every item on a few threads (the services, not the CLI, are the bottleneck)."""
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(action, items))

    def step(self, title: str, action):
        """Run one step of the story; every HEARTBEAT_SECONDS a line says how far it got or what it waits for."""
        started = time.monotonic()
        self.done, self.activity = 0, None
        stop = threading.Event()

        def heartbeat():
            while not stop.wait(HEARTBEAT_SECONDS):
                now = self.activity() if self.activity else f"{self.done} done"
                self.say(f"  … {title}: {now} ({time.monotonic() - started:.0f}s)")

        beating = threading.Thread(target=heartbeat, name="demo-progress", daemon=True)
        beating.start()
        try:
            summary = action()
        finally:
            stop.set()
            beating.join()
        self.say(f"✓ {title}: {summary} ({time.monotonic() - started:.1f}s)")

    def progressed(self, count: int = 1):
        with self._lock:
            self.done += count

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
            self.activity = lambda: f"waiting for {what}"
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    # --- the story ------------------------------------------------------------------------------------------------
    def run(self):
        self.document = to_wire(yaml.safe_load(Path(PROGRAMME_FILE).read_text(encoding="utf-8")))
        self.programme = programme_from_yaml(self.document)
        self.refuse_if_already_run()
        self.scenario = scenario.build(self.programme, self.call_id, self.count, self.seed, starting=date.today())
        self.say(f"JMDI demo: call {self.call_id}, {self.count} proposals, seed {self.seed}")
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
        self.step("demo exchange rates loaded (MAD, XOF, EGP, PHP; generated, not InforEuro)", self.load_rates)
        self.step(
            "grants terminated early, final reports accepted, closed: the unspent award decommitted",
            self.terminate_early,
        )
        self.budget_report()

    def refuse_if_already_run(self):
        """Twice would double nothing but would not fit either: the windows' allocations are spent once."""
        fresh_start = "stop the services, `make clean`, `make run` for a fresh start"
        try:
            self.rpc("pm", "calls.get_call", call_id=self.call_id)
        except NotFound:
            pass
        else:
            raise Conflict(
                "demo.already_run",
                f"call {self.call_id} already exists: the demo has run against these services ({fresh_start})",
            )
        if self.rpc("reporter", "grants.list_grants", programme_id=self.programme["id"], limit=1):
            raise Conflict(
                "demo.already_run",
                f"programme {self.programme['id']} already has grants: its windows' "
                f"allocations are taken ({fresh_start})",
            )

    def load_programme(self):
        loaded = self.rpc("pm", "calls.load_programme", programme=self.document)
        self.programme_end = date.fromisoformat(loaded["period"]["end"])
        windows = ", ".join(f"{w['code']} {w['allocation_eur']}" for w in self.programme["windows"])
        return (
            f"{self.programme['id']} EUR {self.programme['ec_contribution_eur']}, "
            f"{len(self.programme['eligible_countries'])} countries; windows {windows}"
        )

    def open_call(self):
        # the call closes at its deadline and not before: leave just enough time for the submissions
        self.deadline = datetime.now(timezone.utc) + timedelta(
            seconds=DEADLINE_BASE + DEADLINE_PER_PROPOSAL * self.count
        )
        self.rpc(
            "pm",
            "calls.create_call",
            call_id=self.call_id,
            programme_id=self.programme["id"],
            title="Call for proposals: migration and development (JMDI 2008, replayed)",
            windows=[{"window": w["code"], "allocation_eur": w["allocation_eur"]} for w in self.programme["windows"]],
            deadline=self.deadline.isoformat(),
        )
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
            self.progressed()

        count = len(self.scenario.consortia)
        self.activity = lambda: f"{self.done} of {count} proposals submitted"
        self.parallel(self.scenario.consortia, submit)
        refused = Counter(c.refused for c in self.scenario.consortia if c.refused)
        detail = "; ".join(f"{n} {rule}" for rule, n in refused.items())
        return f"{len(self.received)} received" + (f", {sum(refused.values())} refused ({detail})" if refused else "")

    @property
    def received(self):
        return [c for c in self.scenario.consortia if c.proposal_id]

    def screen(self):
        def left() -> float:
            return (self.deadline - datetime.now(timezone.utc)).total_seconds()

        self.activity = lambda: (
            f"waiting for the call's deadline at {self.deadline:%H:%M:%S} UTC ({max(0.0, left()):.0f}s left)"
        )
        time.sleep(max(0.0, left()))
        self.activity = None
        try:
            self.rpc("pm", "calls.close_call", call_id=self.call_id)
        except Conflict as exc:
            if exc.rule != "call.not_open":  # the service's own sweep may have closed it at the deadline
                raise
        csv_lines = ["name,registration_number,reason"] + [
            f'"{e["name"]}",{e["registration_number"]},{e["reason"]}' for e in self.scenario.exclusions
        ]
        self.rpc(
            "pm",
            "calls.load_exclusion_list",
            csv="\n".join(csv_lines) + "\n",
            source="EC central exclusion database, extract (demo)",
        )
        flagged = self.rpc("pm", "calls.list_proposals", call_id=self.call_id, screening="flagged")
        by_id = {c.proposal_id: c for c in self.received}
        excluded = cleared = 0
        for proposal in flagged:
            consortium = by_id.get(proposal["proposal_id"])
            if consortium is not None and consortium.flaw == "excluded":
                self.rpc(
                    "pm",
                    "calls.decide_screening",
                    proposal_id=proposal["proposal_id"],
                    outcome="excluded",
                    reason="the lead applicant is on the EC exclusion list",
                )
                consortium.refused = "excluded"
                excluded += 1
            else:  # a namesake: checked by hand and cleared
                self.rpc(
                    "pm",
                    "calls.decide_screening",
                    proposal_id=proposal["proposal_id"],
                    outcome="cleared",
                    reason="namesake, different registration",
                )
                cleared += 1
        return (
            f"{len(self.received)} screened against {len(self.scenario.exclusions)} exclusion entries: "
            f"{excluded} excluded, {cleared} flagged and cleared"
        )

    def declare(self):
        # two assessors know an organisation in the pool: they declare it, and are never assigned its proposals
        screened = [c for c in self.received if not c.flaw]
        self.conflicts = {"assessor_a": screened[0], "assessor_b": screened[len(screened) // 2]}
        for persona in ASSESSORS:
            known = self.conflicts.get(persona)
            interests = (
                [{"name": known.lead["name"], "registration_number": known.lead["registration_number"]}]
                if known
                else []
            )
            self.rpc(persona, "calls.declare_conflicts", call_id=self.call_id, interests=interests)
        return (
            "; ".join(f"{PERSONAS[p][0]} a link with {c.lead['name']}" for p, c in self.conflicts.items())
            + f"; {PERSONAS['assessor_c'][0]} none"
        )

    def assess(self, stage: str):
        assigned = self.rpc(
            "pm",
            "calls.assign_assessors",
            call_id=self.call_id,
            stage=stage,
            assessors=[PERSONAS[p][0] for p in ASSESSORS],
        )
        quality = {c.proposal_id: c.quality for c in self.received}
        bias = {"assessor_a": 0.15, "assessor_b": -0.1, "assessor_c": 0.0}
        seeds = {persona: self.rng.randrange(1 << 30) for persona in ASSESSORS}

        def work_through(persona):
            """An assessor scores what is assigned to them (a third assessment may arrive meanwhile)."""
            rng, done = random.Random(seeds[persona]), 0
            while True:
                pending = self.rpc(
                    persona, "calls.my_assignments", call_id=self.call_id, stage=stage, pending_only=True
                )
                if not pending:
                    return done
                for assignment in pending:
                    scores = scenario.criterion_scores(
                        assignment["criteria"], quality.get(assignment["proposal_id"], 0.5), bias[persona], rng
                    )
                    self.rpc(
                        persona,
                        "calls.record_assessment",
                        proposal_id=assignment["proposal_id"],
                        stage=stage,
                        scores=scores,
                        comments="Assessed against the grid of the call.",
                    )
                    done += 1
                    self.progressed()

        self.activity = lambda: f"{self.done} assessments recorded by {len(ASSESSORS)} assessors"
        scored = sum(self.parallel(ASSESSORS, work_through))
        # third assessors are assigned as the others score: one more round picks up any that arrived late
        scored += sum(self.parallel(ASSESSORS, work_through))
        for persona, known in self.conflicts.items():
            mine = self.rpc(persona, "calls.my_assignments", call_id=self.call_id)
            assert known.proposal_id not in {a["proposal_id"] for a in mine}, (
                "an assessor was assigned a proposal they declared a link with"
            )
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

        def award_one(entry):
            # the decision is dated the day the committee records it (the service's today): after the call closed
            grant = self.wait_for(
                f"grants to learn the ranking of {entry['reference']}",
                lambda: _unless_conflict(
                    lambda: self.rpc(
                        "committee",
                        "grants.award_grant",
                        proposal_id=entry["proposal_id"],
                        amount_eur=entry["ec_amount_requested_eur"],
                        decision_reference=f"SC-{self.call_id}-01",
                    ),
                    "award.not_ranked",
                ),
            )
            self.progressed()
            return {"grant": grant, "consortium": by_id[entry["proposal_id"]]}

        self.grants = self.parallel([e for r in self.rankings for e in r["main"]], award_one)
        per_window: dict[str, Decimal] = {}
        for item in self.grants:
            window = item["grant"]["window"]
            per_window[window] = per_window.get(window, Decimal("0.00")) + Decimal(item["grant"]["amount_eur"])
        return f"{len(self.grants)} grants: " + ", ".join(f"{w} EUR {v}" for w, v in sorted(per_window.items()))

    def contract(self):
        ibans = {id(item): iban_for(item["consortium"].lead["country"], self.rng) for item in self.grants}
        # contracts start the day they are signed and end by the end of the programme (a consortium that asked for
        # more months than are left is given what is left)
        left = months_between(date.today(), self.programme_end)

        def sign(item):
            lead, iban = item["consortium"].lead, ibans[id(item)]
            organisation = self.rpc(
                "officer",
                "grants.register_organisation",
                legal_name=lead["name"],
                registration_number=lead["registration_number"],
                country=lead["country"],
                iban=iban,
                signatory=f"Director, {lead['name']}"[:200],
            )
            self.rpc(
                "approver", "grants.validate_bank_account", organisation_id=organisation["organisation_id"], iban=iban
            )
            item["grant"] = self.rpc(
                "pm",
                "grants.sign_contract",
                grant_id=item["grant"]["grant_id"],
                organisation_id=organisation["organisation_id"],
                duration_months=min(item["grant"]["duration_months"], left),
            )
            self.progressed()

        self.parallel(self.grants, sign)
        starts = sorted({item["grant"]["start_date"] for item in self.grants})
        return f"{len(self.grants)} contracts signed, starting {', '.join(starts)}"

    def pay(self, item, tranche_number: int) -> Decimal:
        """Request (finance officer) and approve (finance approver) a tranche; paid on the day it is approved."""
        tranche = next(t for t in item["grant"]["schedule"] if t["number"] == tranche_number)
        amount = tranche.get("payable_eur") or tranche["planned_amount_eur"]
        grant_id = item["grant"]["grant_id"]
        payment = self.rpc(
            "officer",
            "grants.request_payment",
            grant_id=grant_id,
            tranche_number=tranche_number,
            amount_eur=amount,
            idempotency_key=f"demo-{grant_id}-{tranche_number}",
        )
        self.rpc(
            "approver",
            "grants.approve_payment",
            payment_id=payment["payment_id"],
            bank_reference=f"UNDP-BRU-{grant_id[:8]}-{tranche_number}",
        )
        self.progressed()
        return Decimal(amount)

    def first_tranches(self):
        total = sum(self.parallel(self.grants, lambda item: self.pay(item, 1)))
        return f"{len(self.grants)} pre-financing payments, EUR {total}"

    def terminate_early(self):
        """A few grants, one per window where possible, end today: terminated by the coordinator (the contract's
        signer may not), their final report up to today accepted, the balance paid if one is due, then closed."""
        # consortia that spend in a currency of their own first: their reports show the conversion
        by_window: dict[str, dict] = {}
        for item in sorted(
            self.grants, key=lambda i: (i["grant"]["country"] not in LOCAL_CURRENCY, i["grant"]["reference"])
        ):
            by_window.setdefault(item["grant"]["window"], item)
        chosen = list(by_window.values())[: min(len(TERMINATIONS), len(self.grants) - 1)]
        decommitted = recovered = Decimal("0.00")
        for item, (reason, spent_share) in zip(chosen, TERMINATIONS):
            grant_id = item["grant"]["grant_id"]
            grant = self.rpc("coordinator", "grants.terminate_grant", grant_id=grant_id, reason=reason)
            paid = Decimal(grant["paid_eur"])
            # eligible costs whose EC share is `spent_share` of the pre-financing, split over two headings
            costs = (paid * spent_share / Decimal(grant["ec_share"])).quantize(Decimal("0.01"))
            report = self.rpc(
                "pm",
                "grants.submit_report",
                grant_id=grant_id,
                kind="final",
                lines=self.final_lines(grant, costs, spent_share),
                actuals=self.actuals(grant, spent_share),
            )
            self.rpc("coordinator", "grants.accept_report", report_id=report["report_id"])
            item["grant"] = self.rpc("reporter", "grants.get_grant", grant_id=grant_id)
            balance = next(t for t in item["grant"]["schedule"] if t["kind"] == "balance")
            if Decimal(balance.get("payable_eur") or "0") > 0:
                self.pay(item, balance["number"])
            item["grant"] = closed = self.rpc("pm", "grants.close_grant", grant_id=grant_id)
            decommitted += Decimal(closed["decommitted_eur"])
            recovered += Decimal(closed["closure"]["recovery_eur"] or "0")
            self.progressed()
        self.decommitted = decommitted
        return (
            f"{len(chosen)} grants terminated and closed: EUR {decommitted} decommitted, EUR {recovered} to "
            f"be recovered"
        )

    def final_lines(self, grant: dict, costs: Decimal, spent_share: Decimal) -> list[dict]:
        """The final report's expenditure: the staff paid locally in the consortium's currency (when the demo has
        rates for it), travel in EUR; the grants service converts at the rate of the month the cost was incurred."""
        today = date.today()
        travel = (costs / 5).quantize(Decimal("0.01"))
        currency = LOCAL_CURRENCY.get(grant["country"])
        rate = self.rates.get((today.strftime("%Y-%m"), currency))
        if rate is None:
            currency, rate = "EUR", Decimal("1")
        staff = ((costs - travel) * rate).quantize(Decimal("0.01"))
        return [
            {
                "heading": "human_resources",
                "amount": str(staff),
                "currency": currency,
                "incurred_on": today.isoformat(),
                "description": "Salaries of the local project team",
            },
            {
                "heading": "travel",
                "amount": str(travel),
                "currency": "EUR",
                "incurred_on": today.isoformat(),
                "description": "Partner visits from Europe",
            },
        ]

    @staticmethod
    def actuals(grant: dict, spent_share: Decimal) -> list[dict]:
        """What the action achieved before it stopped: about as far towards each target as it spent."""
        share = min(spent_share, Decimal("1"))
        values = []
        for indicator in (i for result in grant.get("logframe") or [] for i in result["indicators"]):
            if indicator["measure"] == "qualitative":
                value = "Partly achieved before the action stopped"
            else:
                baseline, target = Decimal(indicator["baseline_value"]), Decimal(indicator["target_value"])
                value = str((baseline + (target - baseline) * share).quantize(Decimal("1")))
            values.append({"code": indicator["code"], "value": value, "comment": "at early termination"})
        return values

    def load_rates(self):
        """A year of monthly demo rates (jmdi/data/demo-rates.csv, generated and labelled as such), loaded by the
        finance officer as they would load the EC's InforEuro file: the consortia's reports in MAD, XOF, EGP and
        PHP are converted with them."""
        from .demo_rates import DEMO_RATES_FILE, SOURCE, read_rates, write
        from .rates import import_rates

        demo = self

        class AsOfficer:
            def call(self, service, operation, payload):
                return demo.rpc("officer", f"{service}.{operation}", **payload)

        this_month = date.today().strftime("%Y-%m")
        rates_file = DEMO_RATES_FILE
        if this_month not in {row["month"] for row in read_rates(rates_file)}:
            # the shipped year is over: the same generator, for the twelve months to this one
            year, month = date.today().year, date.today().month
            rates_file = write(
                Path(tempfile.mkdtemp(prefix="jmdi-demo-rates-")) / "demo-rates.csv",
                f"{year - 1 if month < 12 else year:04d}-{month % 12 + 1:02d}",
                12,
            )
        self.rates = {(row["month"], row["currency"]): Decimal(row["rate"]) for row in read_rates(rates_file)}
        result = import_rates(AsOfficer(), rates_file, SOURCE, quiet=True)
        if result.errors:
            raise Conflict("demo.rates_refused", f"the demo rates were refused: {result.errors[:3]}")
        months = sorted(result.months)
        return f"{result.summary()['published']} rates for {months[0]} to {months[-1]} ({SOURCE})"

    def budget_report(self):
        paid = sum(
            (
                Decimal(p["amount_eur"])
                for p in self.rpc("reporter", "grants.list_payments", status="paid", limit=10000)
            ),
            Decimal("0.00"),
        )

        def settled():
            report = self.rpc("reporter", "reporting.budget_report", programme_id=self.programme["id"])
            return (
                report
                if Decimal(report["disbursed_eur"]) >= paid
                and Decimal(report["decommitted_eur"]) >= getattr(self, "decommitted", Decimal("0.00"))
                else None
            )

        self.wait_for("reporting to record every payment and decommitment", settled)
        report = self.rpc("reporter", "reporting.budget_report", programme_id=self.programme["id"], format="table")
        print(report.get("content") if isinstance(report, dict) else report)


def months_between(first: date, last: date) -> int:
    """The most whole months an action starting on `first` can run and still end by `last` (0: none)."""
    from services.grants.domain import period_end

    months = 0
    while period_end(first, months + 1) <= last:
        months += 1
    return months


def _unless_conflict(action, *waiting_rules):
    """None (ask again) while the grants service has not yet seen what the award needs."""
    try:
        return action()
    except Conflict as exc:
        if exc.rule in waiting_rules:
            return None
        raise


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
