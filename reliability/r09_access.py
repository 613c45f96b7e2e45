"""R9: access, both layers. Every operation of every service called through the gateway with no token, a forged
token (signed with another issuer key), an expired token, a service identity and each role the matrix does not allow:
every request refused with a problem (401 for identities, 403 for roles), every refusal audited in the gateway's
trail, and nothing reaches a service (their RPC counters, outboxes and done-audits unchanged). The same calls
straight at the services over the broker (a caller going round the door) are refused by the services themselves,
each refusal in the service's own trail. A client refused too often is throttled (429) and its audit stops at
one row saying so. Controls: an allowed role passes both layers (its empty input may still be refused)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from services.common.contracts.topology import SERVICES
from services.common.security.auth import StaffIssuer
from services.common.security.keys import generate_private_key
from services.common.security.roles import SERVICE_CALLS, STAFF_ROLES
from services.common.values.errors import NotAllowed
from services.common.values.problems import TooManyRefusals, Unauthenticated
from services.gateway.catalogue import operations
from tests.support.system import StaffClient

from . import invariants
from .scenario import scenario
from .staff import Caller, error_name
from .testbed import Testbed

THROTTLE = 200  # refusals a client may make in a minute here: more than any one identity below makes
THROTTLED_CLIENT = "203.0.113.99"


def tokens(bed: Testbed, roles) -> dict:
    issuer = bed.system.issuer
    forger = StaffIssuer(generate_private_key(), issuer=issuer.issuer, audience=issuer.audience)
    found = {
        "no token": None,
        "forged": forger.issue("mallory", ["programme_manager"]),
        "expired": issuer.issue(
            "maria.pm", ["programme_manager"], timedelta(hours=1), now=datetime.now(timezone.utc) - timedelta(hours=2)
        ),
    }
    for role in roles:
        if role in STAFF_ROLES:
            found[f"role {role}"] = bed.system.token(f"user.{role}", [role])
        else:  # service:<name>: that service's own token, for the service it calls
            service = role.split(":", 1)[1]
            found[f"role {role}"] = bed.system.service_token(service, SERVICE_CALLS[service][0].split(".")[0])
    return found


def written(bed: Testbed) -> dict:
    return {
        s: (bed.system.outbox_events(s), bed.value(s, "SELECT count(*) FROM audit_log WHERE outcome <> 'refused'"))
        for s in SERVICES
    }


def refused_audits(bed: Testbed, where: str = "") -> dict:
    return {
        s: bed.value(s, f"SELECT count(*) FROM audit_log WHERE outcome = 'refused' {where}")
        for s in (*SERVICES, "gateway")
    }


def rpc_requests(bed: Testbed, ops) -> float:
    """RPCs the services handled, of the operations only staff call (services call the others on their own
    timers: reconciliation reads the ledger, notifications fetch reports)."""
    import urllib.request

    staff_only = {(op.service, op.name) for op in ops if op.roles <= op.staff_roles}
    total = 0.0
    for service in SERVICES:
        with urllib.request.urlopen(bed.system.metrics_url(service), timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("jmdi_rpc_requests_total{"):
                    method = line.split('method="', 1)[1].split('"', 1)[0]
                    total += float(line.rsplit(" ", 1)[1]) if (service, method) in staff_only else 0
    return total


def expected(identity: str) -> type:
    return NotAllowed if identity.startswith("role ") else Unauthenticated


@scenario(9, "no token, forged, expired, wrong role: at the gateway and at the services")
def run(outcome, sizes, log, **_):
    ops = operations()
    extra = {"GATEWAY_REFUSALS_PER_MINUTE": str(THROTTLE), "GATEWAY_TRUSTED_PROXIES": "1"}
    with Testbed(log, extra_env=extra) as bed:
        roles = sorted({r for op in ops for r in op.wrong_roles} | {r for op in ops for r in op.roles})
        who = tokens(bed, roles)
        url = bed.system.gateway_url
        # each identity its own client address (one trusted proxy in front), so none is throttled by the others
        door = {
            name: StaffClient(url, token, 60, {"X-Forwarded-For": f"198.51.100.{n}"})
            for n, (name, token) in enumerate(who.items(), 1)
        }
        straight = {name: Caller(bed.system.amqp_uri, token) for name, token in who.items()}
        before_written, before_audits, before_rpc = written(bed), refused_audits(bed), rpc_requests(bed, ops)
        at_door = Counter()
        try:
            # --- the first layer: nothing gets past the gateway -------------------------------------------------
            for op in ops:
                # a service identity is refused at the staff door even where the service would accept it
                identities = [
                    "no token",
                    "forged",
                    "expired",
                    *(f"role {r}" for r in sorted(set(op.wrong_roles) | (op.roles - op.staff_roles))),
                ]
                for identity in identities:
                    try:
                        door[identity].call(op.service, op.name, {})
                        outcome.fail(f"{op.key} accepted at the gateway with {identity}")
                    except NotAllowed as exc:
                        outcome.check(
                            isinstance(exc, expected(identity)),
                            f"{op.key} with {identity}: {type(exc).__name__} at the gateway",
                        )
                    except Exception as exc:
                        outcome.fail(f"{op.key} with {identity} at the gateway: {error_name(exc)}")
                    at_door[op.service] += 1
            audits = refused_audits(bed)
            door_audited = audits["gateway"] - before_audits["gateway"]
            outcome.check(
                door_audited == sum(at_door.values()),
                f"gateway: {sum(at_door.values())} refusals, {door_audited} audited",
            )
            outcome.check(rpc_requests(bed, ops) == before_rpc, "a request refused at the gateway reached a service")
            outcome.check(written(bed) == before_written, f"refused requests wrote: {before_written} -> {written(bed)}")
            # --- the second layer: each service refuses the same callers by itself ------------------------------
            sent = Counter()
            for op in ops:
                for identity in ["no token", "forged", "expired", *(f"role {r}" for r in op.wrong_roles)]:
                    try:
                        straight[identity].call(op.service, op.name, {})
                        outcome.fail(f"{op.key} accepted by the service with {identity}")
                    except NotAllowed:
                        pass
                    except Exception as exc:
                        outcome.fail(f"{op.key} with {identity} at the service: {error_name(exc)}")
                    sent[op.service] += 1
            after = refused_audits(bed)
            for service in SERVICES:
                audited = after[service] - audits[service]
                outcome.check(audited == sent[service], f"{service}: {sent[service]} refusals, {audited} audited")
            outcome.check(written(bed) == before_written, f"refused calls wrote: {before_written} -> {written(bed)}")
            # --- controls: an allowed role passes both layers --------------------------------------------------
            controls = 0
            for op in ops:
                role = sorted(op.staff_roles or op.roles)[0]
                for layer, caller in (("gateway", door[f"role {role}"]), ("service", straight[f"role {role}"])):
                    if layer == "gateway" and role not in op.staff_roles:
                        continue
                    try:
                        caller.call(op.service, op.name, {})
                    except NotAllowed as exc:
                        outcome.fail(f"{op.key} refused its allowed role {role} at the {layer}: {exc}")
                    except Exception:  # invalid empty input, not found...: not an access refusal
                        pass
                    controls += 1
            # --- a client refused too often -------------------------------------------------------------------
            throttled = throttle(bed, url, outcome)
        finally:
            for caller in straight.values():
                caller.close()
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {
            "operations": len(ops),
            "refused_at_gateway": sum(at_door.values()),
            "refused_by_services": sum(sent.values()),
            "audited": door_audited + sum(after[s] - audits[s] for s in SERVICES),
            "controls": controls,
            "throttled": throttled,
            **{k: figures[k] for k in ("events", "dead_letters") if k in figures},
        }


def throttle(bed: Testbed, url: str, outcome) -> int:
    """THROTTLE refusals, one more that tips the client over, then 429s however many it sends, with
    THROTTLE + 1 audit rows for it, whatever it sends after."""
    client = StaffClient(url, None, 60, {"X-Forwarded-For": THROTTLED_CLIENT})
    where = f"AND CAST(detail AS TEXT) LIKE '%{THROTTLED_CLIENT}%'"
    refused = 0
    for _ in range(THROTTLE + 1):
        try:
            client.call("grants", "approve_payment", {"payment_id": "P-1"})
        except Unauthenticated:
            refused += 1
    throttled = 0
    for _ in range(THROTTLE):
        try:
            client.call("grants", "approve_payment", {"payment_id": "P-1"})
        except TooManyRefusals:
            throttled += 1
    outcome.check(
        refused == THROTTLE + 1 and throttled == THROTTLE,
        f"throttling: {refused} refused then {throttled} of {THROTTLE} throttled",
    )
    rows = refused_audits(bed, where)["gateway"]
    outcome.check(rows == THROTTLE + 1, f"throttled client: {rows} audit rows, expected {THROTTLE + 1}")
    return throttled
