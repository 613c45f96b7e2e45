"""R9: every RPC of every service called with no token, a forged token (signed with another secret), an expired
token and each role the matrix does not allow: every call refused with NotAllowed, every refusal audited
(one `refused` audit row each), nothing else written (outbox and done-audit unchanged). A control call with an
allowed role is not refused for access, so the refusals are about the identity and nothing else."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from services.common.auth import issue_token
from services.common.errors import NotAllowed
from services.common.topology import SERVICES
from tests.support.system import TEST_SECRET

from . import invariants
from .catalogue import operations
from .scenario import scenario
from .staff import Caller, error_name
from .testbed import Testbed

FORGED_SECRET = "not-the-secret-" + "y" * 32


def callers(bed: Testbed, roles) -> dict:
    uri = bed.system.amqp_uri
    found = {"no token": Caller(uri, None),
             "forged": Caller(uri, issue_token(FORGED_SECRET, "mallory", ["programme_manager"])),
             "expired": Caller(uri, issue_token(TEST_SECRET, "maria.pm", ["programme_manager"],
                                                ttl=timedelta(hours=-1)))}
    for role in roles:
        found[f"role {role}"] = Caller(uri, issue_token(TEST_SECRET, f"user.{role}", [role]))
    return found


def written(bed: Testbed) -> dict:
    return {s: (bed.system.outbox_events(s), bed.value(s, "SELECT count(*) FROM audit_log WHERE outcome <> 'refused'"))
            for s in SERVICES}


def refused_audits(bed: Testbed) -> dict:
    return {s: bed.value(s, "SELECT count(*) FROM audit_log WHERE outcome = 'refused'") for s in SERVICES}


@scenario(9, "no token, forged, expired, wrong role")
def run(outcome, sizes, log, **_):
    ops = operations()
    with Testbed(log) as bed:
        roles = sorted({r for op in ops for r in op.wrong_roles} | {r for op in ops for r in op.roles})
        who = callers(bed, roles)
        before_written, before_audits = written(bed), refused_audits(bed)
        sent = Counter()
        refused = 0
        try:
            for op in ops:
                identities = ["no token", "forged", "expired", *(f"role {r}" for r in op.wrong_roles)]
                for identity in identities:
                    try:
                        who[identity].call(op.service, op.name, {})
                        outcome.fail(f"{op.key} accepted with {identity}")
                    except NotAllowed:
                        refused += 1
                    except Exception as exc:
                        outcome.fail(f"{op.key} with {identity}: {error_name(exc)} instead of NotAllowed")
                    sent[op.service] += 1
            after_audits = refused_audits(bed)
            for service in SERVICES:
                audited = after_audits[service] - before_audits[service]
                outcome.check(audited == sent[service], f"{service}: {sent[service]} refusals, {audited} audited")
            outcome.check(written(bed) == before_written, f"refused calls wrote: {before_written} -> {written(bed)}")
            # controls: an allowed role passes the access check (its empty input may still be refused)
            controls = 0
            for op in ops:
                role = sorted(op.roles)[0]
                try:
                    who[f"role {role}"].call(op.service, op.name, {})
                except NotAllowed as exc:
                    outcome.fail(f"{op.key} refused its allowed role {role}: {exc}")
                except Exception:  # invalid empty input, not found...: not an access refusal
                    pass
                controls += 1
        finally:
            for caller in who.values():
                caller.close()
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {"operations": len(ops), "refused": refused, "audited":
                           sum(refused_audits(bed).values()) - sum(before_audits.values()), "controls": controls,
                           **{k: figures[k] for k in ("events", "dead_letters") if k in figures}}
