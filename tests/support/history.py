"""A call that closed in the past, told to the other services by the events the calls service would have sent.

The calls service runs calls live — a call opens only with its deadline ahead — so a grant whose reporting
periods have already ended (interim report after 12 months, final report, closure) can only exist on a call that
closed long ago. Grants and reporting learn calls and proposals from call_opened and proposal_submitted: this
helper publishes those (the JMDI call of 2008: deadline 2009-03-31, in a programme running from 2008-12-01 to three
years from now, as tests/support/flows.py's) and waits until grants has them, so awards, contracts and reports can
be dated in that past consistently, and what follows them today (a closure, a reserve award) still falls within the
programme — only payments are made today (a value date is never before its request).
"""

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

from tests.support import flows
from tests.support.bus import event_body, publish
from tests.support.infra import eventually

DEADLINE = datetime(2009, 3, 31, 12, tzinfo=timezone.utc)
PROGRAMME_START = date(2008, 12, 1)


def past_call(system, call_id: str, programme_id: str = "JMDI", allocation: str = "3750000.00"):
    """call_opened for a call whose deadline (2009-03-31) has long passed; returns when grants has it."""
    publish(
        system.amqp_uri,
        event_body(
            "call_opened",
            {
                "call_id": call_id,
                "programme_id": programme_id,
                "programme_name": "EC-UN Joint Migration and Development Initiative",
                "envelope_eur": Decimal("15000000.00"),
                "rule_profile": "ec_prag",
                "title": f"{call_id} (closed on {DEADLINE.date()})",
                "deadline": DEADLINE,
                "min_grant_eur": Decimal("50000.00"),
                "max_grant_eur": Decimal("200000.00"),
                "max_ec_share": Decimal("0.90"),
                "programme_start": PROGRAMME_START,
                "programme_end": date.fromisoformat(flows.programme(programme_id)["period"]["end"]),
                "windows": [
                    {"window": w, "name": w.replace("_", " ").capitalize(), "allocation_eur": Decimal(allocation)}
                    for w in flows.WINDOWS
                ],
            },
            occurred_at=datetime(2008, 12, 5, 9, tzinfo=timezone.utc),
        ),
    )
    eventually(
        lambda: system.scalar("grants", f"SELECT count(*) FROM calls WHERE call_id = '{call_id}'") == 1,
        60,
        0.3,
        f"grants knows {call_id}",
    )


def past_proposals(system, call_id: str, numbers, programme_id: str = "JMDI", **kwargs) -> list[dict]:
    """proposal_submitted for flows.proposal(n, **kwargs) of the past call (submitted in March 2009); returns
    them as submit_proposal would (proposal_id, reference and the submission) once grants has its copies."""
    proposals = []
    for n in numbers:
        submission = flows.proposal(n, call_id=call_id, **kwargs)
        lead = submission["applicants"][0]
        proposal = {
            **submission,
            "proposal_id": str(uuid.uuid4()),
            "reference": f"{call_id}-{submission['target_country']}-{n:04d}",
        }
        publish(
            system.amqp_uri,
            event_body(
                "proposal_submitted",
                {
                    **{k: v for k, v in proposal.items() if k != "idempotency_key"},
                    "programme_id": programme_id,
                    "applicant_type": lead["type"],
                    "lead_organisation": lead["name"],
                    "submitted_at": datetime(2009, 3, 20, 10, tzinfo=timezone.utc),
                },
            ),
        )
        proposals.append(proposal)
    ids = ", ".join(f"'{p['proposal_id']}'" for p in proposals)
    eventually(
        lambda: (
            system.scalar("grants", f"SELECT count(*) FROM proposals WHERE proposal_id IN ({ids})") == len(proposals)
        ),
        60,
        0.3,
        "grants copies of the past proposals",
    )
    return proposals


def award(staff, proposal, amount, decision_date="2009-06-15"):
    """The steering committee's award of a proposal of the past call, decided in June 2009."""
    return staff["committee"].grants.award_grant(
        proposal_id=proposal["proposal_id"],
        amount_eur=amount,
        decision_reference="SC-2009-03",
        decision_date=decision_date,
    )


def staff_of(system, people: dict) -> dict:
    """part -> a client acting as that person with that one role, from {part: (user, role)}."""
    return {part: system.client(user, [role]) for part, (user, role) in people.items()}
