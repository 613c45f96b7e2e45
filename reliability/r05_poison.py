"""R5: a poison message — a valid envelope whose payload the handler cannot apply (a proposal of a call grants
never saw opened) — is retried, then kept as a dead letter while everything else keeps flowing; once the cause
is fixed (the call's opening reaches grants) the letter is replayed and applied once; a second replay is
refused."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from services.common.values.errors import Conflict
from tests.support import flows
from tests.support.bus import event_body
from tests.support.infra import eventually

from . import invariants
from .flow import Flow
from .scenario import scenario
from .testbed import Testbed

GHOST = "GHOST-CALL"


def ghost_proposal(n: int = 4000) -> dict:
    proposal = flows.proposal(n, call_id=GHOST)
    return event_body(
        "proposal_submitted",
        {
            **{k: v for k, v in proposal.items() if k != "idempotency_key"},
            "proposal_id": f"ghost-{n}",
            "reference": f"JMDI-GHOST-{n}",
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


def ghost_call_opened() -> dict:
    return event_body(
        "call_opened",
        {
            "call_id": GHOST,
            "programme_id": "JMDI",
            "programme_name": "JMDI",
            "envelope_eur": Decimal("15000000"),
            "rule_profile": "ec_prag",
            "title": "Late call",
            "deadline": datetime.now(timezone.utc) + timedelta(days=3),
            "min_grant_eur": Decimal("50000"),
            "max_grant_eur": Decimal("200000"),
            "max_ec_share": Decimal("0.9"),
            "windows": [{"window": w, "name": w, "allocation_eur": Decimal("1000000")} for w in flows.WINDOWS],
        },
    )


@scenario(5, "poison message dead-lettered, replayed once")
def run(outcome, sizes, log, **_):
    with Testbed(log) as bed:
        ops = bed.staff("pm")
        poison = ghost_proposal()
        started = time.monotonic()
        bed.inject(poison)
        letters = eventually(lambda: ops.grants.list_dead_letters(), 90, 0.5, "dead letter")
        outcome.figures["dead_lettered_s"] = round(time.monotonic() - started, 1)
        outcome.check(
            [(l["event_id"], l["status"]) for l in letters] == [(poison["event_id"], "held")],
            f"dead letters: {[(l['event_id'], l['status']) for l in letters]}",
        )
        letter = letters[0]
        outcome.figures["attempts"] = letter["attempts"]
        outcome.check(
            letter["attempts"] == int(bed.system.env["EVENT_RETRY_ATTEMPTS"]),
            f"dead-lettered after {letter['attempts']} attempts",
        )
        outcome.check("proposal.unknown_call" in letter["error"], f"error kept: {letter['error'][:200]}")

        # others keep flowing while the letter is held
        flow = Flow(bed, "r5", threads=sizes.threads, per_window=3)
        try:
            flow.run(max(60, sizes.late_consumer_events // 2), log=log)
        finally:
            flow.close()
        for problem in flow.problems:
            outcome.fail(f"flow: {problem}")
        seen = bed.settle(sizes.settle_seconds)
        outcome.figures["flowed"] = len(flow.proposals)
        outcome.check(bed.system.held_dead_letters("grants") == 1, "the letter is not the only one held")
        outcome.check(seen.get("held", {}).get("grants") == 1, f"held while flowing: {seen.get('held')}")

        # the fix reaches grants; the replay applies the letter once
        bed.inject(ghost_call_opened())
        eventually(
            lambda: bed.value("grants", f"SELECT count(*) FROM calls WHERE call_id = '{GHOST}'") == 1,
            90,
            0.5,
            "the ghost call opened in grants",
        )
        replay = ops.grants.replay_dead_letter(id=letter["id"])
        outcome.figures["replay"] = replay.get("outcome")
        outcome.check(replay == {"id": letter["id"], "outcome": "applied"}, f"replay answered {replay}")
        applied = bed.value(
            "grants", "SELECT count(*) FROM proposals WHERE proposal_id = :p", p=poison["data"]["proposal_id"]
        )
        outcome.check(applied == 1, f"the replayed proposal is in grants {applied} times")
        try:
            ops.grants.replay_dead_letter(id=letter["id"])
            outcome.fail("a second replay was accepted")
        except Conflict as exc:
            outcome.check(exc.rule == "dead_letter.not_held", f"second replay refused with {exc.rule}")
        outcome.check(ops.grants.list_dead_letters() == [], "dead letters still held after the replay")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {**figures, **outcome.figures}
