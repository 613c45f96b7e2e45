"""An event archive for reporting covering every projected event type, in the wire form `make_event` gives, with
the cases a rebuild must get right: a key given twice (the first row wins, a later event adding only what is new),
events out of order (payments and reports before their award, a decision before its submission), date-times in
other offsets than UTC (a date is the day where the event happened), budgets whose headings are not in any sorted
order and whose EC parts round by the largest remainders, events reporting does not project."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from services.common.contracts.events import Event, make_event
from services.common.contracts.topology import producer_of

D = Decimal
UTC = timezone.utc
EAST = timezone(timedelta(hours=5, minutes=30))
WEST = timezone(timedelta(hours=-7))


def at(day: str, hour: int = 10, tz=UTC) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tz).replace(hour=hour)


def event(event_type: str, data: dict, occurred_at: datetime) -> Event:
    return make_event(event_type, data, producer=producer_of(event_type), occurred_at=occurred_at)


def _call(call_id: str, programme: str, name: str, windows: list, start: date | None = None) -> dict:
    data = {
        "call_id": call_id,
        "programme_id": programme,
        "programme_name": name,
        "envelope_eur": D("9000000.00"),
        "rule_profile": "ec_prag",
        "title": f"Call {call_id}",
        "windows": windows,
        "deadline": at("2009-03-31", 12, EAST),
        "min_grant_eur": D("50000.00"),
        "max_grant_eur": D("200000.00"),
        "max_ec_share": D("0.9000"),
    }
    if start:
        data.update(programme_start=start, programme_end=date(2012, 12, 31))
    return data


def _proposal(n: int, call_id: str = "C1", country: str = "ma", submitted=None) -> dict:
    return {
        "proposal_id": f"P{n}",
        "reference": f"C1-{n:04d}",
        "call_id": call_id,
        "programme_id": "JMDI",
        "window": "w1",
        "target_country": country,
        "title": f"Proposal {n}",
        "duration_months": 24,
        "applicant_type": "ngo",
        "lead_organisation": f"Org {n}",
        "applicants": [
            {
                "name": f"Org {n}",
                "type": "ngo",
                "country": "MA",
                "registration_number": f"R{n}",
                "email": f"org{n}@example.org",
                "language": "fr",
                "role": "lead",
            }
        ],
        "budget": {"travel": D("1000.00")},
        "total_eligible_cost_eur": D("110000.00"),
        "ec_amount_requested_eur": D(f"{100000 + n}.50"),
        "co_financing_eur": D("10000.00"),
        "submitted_at": submitted or at("2009-03-01", 9),
    }


def _award(grant: str, amount: str, budget: dict, proposal: str = "P1", country: str = "MA") -> dict:
    return {
        "grant_id": grant,
        "proposal_id": proposal,
        "reference": f"REF-{grant}",
        "call_id": "C1",
        "programme_id": "JMDI",
        "window": "w1",
        "country": country,
        "applicant_type": "ngo",
        "lead_organisation": "Org",
        "title": f"Grant {grant}",
        "amount_eur": D(amount),
        "budget": budget,
        "decision_reference": f"DEC-{grant}",
        "decision_date": date(2009, 6, 15),
        "awarded_at": at("2009-06-15", 23, WEST),
    }


def _contract(grant: str, amount: str, signed_at: datetime) -> dict:
    start = signed_at.date() + timedelta(days=1)
    return {
        "grant_id": grant,
        "reference": f"REF-{grant}",
        "start_date": start,
        "end_date": start + timedelta(days=730),
        "duration_months": 24,
        "amount_eur": D(amount),
        "schedule": [],
        "signed_at": signed_at,
    }


def _payment(payment: str, grant: str, number: int, amount: str) -> dict:
    return {
        "payment_id": payment,
        "grant_id": grant,
        "reference": f"REF-{grant}",
        "tranche_number": number,
        "amount_eur": D(amount),
    }


def _line(heading: str, amount: str, currency: str, rate: str, eur: str, **extra) -> dict:
    return {
        "heading": heading,
        "amount": D(amount),
        "currency": currency,
        "incurred_on": date(2010, 2, 3),
        "rate": D(rate),
        "amount_eur": D(eur),
        **extra,
    }


def _report(report: str, grant: str, expenditure: dict, total: str, lines=()) -> dict:
    return {
        "report_id": report,
        "grant_id": grant,
        "reference": f"REF-{grant}",
        "kind": "interim",
        "period_start": date(2009, 7, 1),
        "period_end": date(2010, 6, 30),
        "expenditure": expenditure,
        "total_eur": D(total),
        "submitted_at": at("2010-07-10", 1, EAST),
        "lines": list(lines),
    }


def _decision(report: str, grant: str, outcome: str, expenditure: dict, total: str, day: str) -> dict:
    return {
        "report_id": report,
        "grant_id": grant,
        "reference": f"REF-{grant}",
        "kind": "interim",
        "outcome": outcome,
        "expenditure": expenditure,
        "total_eur": D(total),
        "decided_at": at(day, 22, WEST),
    }


def _indicator(code: str, actual: str, **extra) -> dict:
    return {
        "result_type": "output",
        "result_title": "Output 1",
        "code": code,
        "title": f"Indicator {code}",
        "measure": "unit",
        "baseline_value": "0",
        "baseline_year": 2009,
        "target_value": "100",
        "target_date": date(2011, 12, 31),
        "actual_value": actual,
        **extra,
    }


def _results(report: str, grant: str, results: list, day: str) -> dict:
    return {
        "report_id": report,
        "grant_id": grant,
        "reference": f"REF-{grant}",
        "programme_id": "JMDI",
        "call_id": "C1",
        "window": "w1",
        "country": "ma",
        "kind": "interim",
        "period_start": date(2009, 7, 1),
        "period_end": date(2010, 6, 30),
        "results": results,
        "decided_at": at(day, 23, WEST),
    }


def _ranked(proposal: str, rank: int, score: str) -> dict:
    return {
        "proposal_id": proposal,
        "reference": f"REF-{proposal}",
        "rank": rank,
        "score": D(score),
        "country": "MA",
        "ec_amount_requested_eur": D("100000.00"),
    }


def archive_events() -> list[Event]:
    """The events in arrival order."""
    w = [
        {"window": "w1", "name": "Window one", "allocation_eur": D("3000000.00")},
        {"window": "w2", "allocation_eur": D("2000000.00")},
    ]  # no name: the window's code stands for it
    # headings in no sorted order, amounts whose EC parts leave remainders to hand out (ties in the budget's order)
    budget = {
        "travel": D("333.33"),
        "human_resources": D("333.33"),
        "equipment_supplies": D("333.34"),
        "other": D("0.00"),
    }
    events = [
        event(
            "tranche_paid",
            {**_payment("PAY1", "G1", 1, "40000.00"), "value_date": date(2009, 7, 1), "bank_reference": "B1"},
            at("2009-07-01", 23, WEST),
        ),  # before its award
        event("call_opened", _call("C1", "JMDI", "JMDI programme", w, date(2008, 12, 1)), at("2008-12-01", 2, EAST)),
        # the same programme again: its first name stays; a call of its own with a window given twice
        event(
            "call_opened",
            _call("C2", "JMDI", "Renamed", [w[1], {**w[1], "allocation_eur": D("1.00")}]),
            at("2009-01-01"),
        ),
        event("call_opened", _call("C1", "JMDI", "JMDI again", [w[0]]), at("2009-01-02")),  # a call given twice
        event("proposal_submitted", _proposal(1, submitted=at("2009-03-01", 1, EAST)), at("2009-03-01", 1, EAST)),
        event("proposal_submitted", _proposal(2, country="tn"), at("2009-03-01")),
        event("proposal_submitted", {**_proposal(2), "reference": "SECOND"}, at("2009-03-02")),
        event("proposal_submitted", _proposal(3), at("2009-03-02")),
        event("proposal_submitted", _proposal(4), at("2009-03-02")),
        event(
            "proposal_withdrawn",
            {"proposal_id": "P4", "reference": "C1-0004", "call_id": "C1", "withdrawn_at": at("2009-03-20", 23, WEST)},
            at("2009-03-21", 6),
        ),
        event(
            "proposal_screened",
            {"proposal_id": "P1", "reference": "C1-0001", "call_id": "C1", "outcome": "clear"},
            at("2009-04-01", 2, EAST),
        ),
        event(
            "proposal_screened",
            {"proposal_id": "P3", "reference": "C1-0003", "call_id": "C1", "outcome": "flagged"},
            at("2009-04-01", 22, WEST),
        ),
        event(
            "proposal_evaluated",
            {
                "proposal_id": "P1",
                "reference": "C1-0001",
                "call_id": "C1",
                "stage": "concept_note",
                "score": D("41.50"),
                "max_score": 50,
                "threshold": D("30.00"),
                "passed": True,
            },
            at("2009-04-10"),
        ),
        event(
            "proposal_evaluated",
            {
                "proposal_id": "P3",
                "reference": "C1-0003",
                "call_id": "C1",
                "stage": "full_application",
                "score": D("12.25"),
                "max_score": 100,
                "threshold": D("65.00"),
                "passed": False,
            },
            at("2009-04-11"),
        ),
        # P2 both on the main list and excluded: its first outcome in this event stands
        event(
            "ranking_published",
            {
                "call_id": "C1",
                "window": "w1",
                "threshold": D("65.00"),
                "main": [_ranked("P1", 1, "88.00"), _ranked("P2", 2, "70.10")],
                "reserve": [_ranked("P5", 3, "66.00")],
                "excluded": ["P3", "P2"],
                "published_at": at("2009-05-01", 23, WEST),
            },
            at("2009-05-02"),
        ),
        event(
            "ranking_published",
            {
                "call_id": "C2",
                "window": "w2",
                "threshold": D("65.00"),
                "main": [],
                "reserve": [],
                "published_at": at("2009-05-03"),
            },
            at("2009-05-03"),
        ),
        event(
            "proposal_rejected",
            {"proposal_id": "P3", "reference": "C1-0003", "call_id": "C1", "reasons": ["below threshold"]},
            at("2009-05-05", 23, WEST),
        ),
        event(
            "call_closed", {"call_id": "C1", "closed_at": at("2009-04-01", 1, EAST), "proposals": 4}, at("2009-04-01")
        ),
        event("call_closed", {"call_id": "C1", "closed_at": at("2009-04-02"), "proposals": 5}, at("2009-04-02")),
        event("grant_awarded", _award("G1", "100000.00", budget), at("2009-06-15", 23, WEST)),
        # G1 awarded twice: the first award and its lines stay, the new heading only is added
        event(
            "grant_awarded",
            _award("G1", "90000.00", {"travel": D("10.00"), "indirect_costs": D("5.00"), "human_resources": D("1.00")}),
            at("2009-06-16"),
        ),
        event("grant_awarded", _award("G2", "1000.00", {}, "P2"), at("2009-06-16")),  # no budget
        # G3's contract before its award, G4's before an award that arrives only later (late_events)
        event("contract_signed", _contract("G3", "500.00", at("2009-06-17", 1, EAST)), at("2009-06-17", 1, EAST)),
        event("contract_signed", _contract("G4", "300.00", at("2011-08-01")), at("2011-08-01")),
        event("grant_awarded", _award("G3", "500.00", {"other": D("0.00")}, "P5", "tn"), at("2009-06-17")),
        event(
            "contract_signed",
            {
                "grant_id": "G1",
                "reference": "REF-G1",
                "start_date": date(2009, 7, 1),
                "end_date": date(2011, 6, 30),
                "duration_months": 24,
                "amount_eur": D("100000.00"),
                "schedule": [{"number": 1, "kind": "pre_financing", "planned_amount_eur": D("40000.00")}],
                "signed_at": at("2009-06-30", 23, WEST),
            },
            at("2009-07-01"),
        ),
        event(
            "contract_signed",
            {
                "grant_id": "G1",
                "reference": "REF-G1",
                "start_date": date(2009, 8, 1),
                "end_date": date(2011, 7, 31),
                "duration_months": 24,
                "amount_eur": D("1.00"),
                "schedule": [],
                "signed_at": at("2009-07-30"),
            },
            at("2009-07-30"),
        ),
        event(
            "payment_requested",
            {
                **_payment("PAY2", "G1", 2, "30000.00"),
                "requested_by": "maria",
                "requested_at": at("2010-01-10", 23, WEST),
            },
            at("2010-01-11"),
        ),
        event(
            "payment_requested",
            {**_payment("PAY2", "G1", 2, "1.00"), "requested_by": "maria", "requested_at": at("2010-01-12")},
            at("2010-01-12"),
        ),
        event(
            "payment_requested",
            {**_payment("PAY3", "G2", 1, "500.00"), "requested_by": "maria", "requested_at": at("2010-01-12")},
            at("2010-01-12"),
        ),
        event(
            "payment_cancelled",
            {
                **_payment("PAY3", "G2", 1, "500.00"),
                "requested_by": "maria",
                "cancelled_by": "omar",
                "reason": "wrong tranche",
                "cancelled_at": at("2010-01-13", 2, EAST),
            },
            at("2010-01-13"),
        ),
        event(
            "payment_cancelled",
            {
                **_payment("PAY3", "G2", 1, "500.00"),
                "requested_by": "maria",
                "cancelled_by": "omar",
                "reason": "again",
                "cancelled_at": at("2010-01-20"),
            },
            at("2010-01-20"),
        ),
        event(
            "tranche_paid",
            {**_payment("PAY1", "G1", 1, "1.00"), "value_date": date(2009, 7, 2), "bank_reference": "B1-again"},
            at("2009-07-02"),
        ),
        event(
            "tranche_paid",
            {**_payment("PAY2", "G1", 2, "30000.00"), "value_date": date(2010, 2, 1), "bank_reference": "B2"},
            at("2010-02-01", 2, EAST),
        ),
        # R1 decided (returned) before its submission arrived, then submitted again with more lines, accepted
        event(
            "report_accepted",
            _decision("R1", "G1", "returned", {"travel": D("10.00")}, "10.00", "2010-07-20"),
            at("2010-07-21"),
        ),
        event(
            "report_submitted",
            _report(
                "R1",
                "G1",
                {"travel": D("120.00")},
                "120.00",
                [
                    _line(
                        "travel",
                        "1100.00",
                        "MAD",
                        "11.000000",
                        "100.00",
                        rate_type="inforeuro",
                        rate_month="2010-02",
                        description="flights",
                    )
                ],
            ),
            at("2010-07-10", 1, EAST),
        ),
        event(
            "report_submitted",
            _report(
                "R1",
                "G1",
                {"travel": D("120.00"), "other": D("5.55")},
                "125.55",
                [
                    _line("travel", "9.99", "EUR", "1", "9.99"),
                    _line("other", "61.05", "TND", "11.123456", "5.55", description="stamps"),
                ],
            ),
            at("2010-08-01"),
        ),
        event(
            "report_accepted",
            _decision("R1", "G1", "accepted", {"travel": D("120.00"), "other": D("5.55")}, "125.55", "2010-08-10"),
            at("2010-08-11"),
        ),
        event("report_submitted", _report("R2", "G2", {}, "0.00"), at("2010-08-12")),  # EUR only, no lines
        event(
            "results_reported",
            _results(
                "R1", "G1", [_indicator("I1", "40"), _indicator("I2", "yes", unit="people", comment="ok")], "2010-08-10"
            ),
            at("2010-08-11"),
        ),
        event(
            "results_reported",
            _results("R1", "G1", [_indicator("I2", "changed"), _indicator("I3", "7")], "2010-08-12"),
            at("2010-08-12"),
        ),
        event(
            "grant_amended",
            {
                "grant_id": "G1",
                "reference": "REF-G1",
                "amendment_id": "A1",
                "kind": "amount",
                "amount_eur": D("80000.01"),
                "duration_months": 30,
                "budget": {"other": D("0.03"), "travel": D("0.03"), "local_office": D("0.03")},
            },
            at("2010-09-01", 23, WEST),
        ),
        event(
            "grant_amended",
            {
                "grant_id": "G1",
                "reference": "REF-G1",
                "amendment_id": "A1",
                "kind": "duration",
                "amount_eur": D("1.00"),
                "duration_months": 36,
            },
            at("2010-09-02"),
        ),
        event(
            "grant_amended",
            {
                "grant_id": "G2",
                "reference": "REF-G2",
                "amendment_id": "A2",
                "kind": "duration",
                "amount_eur": D("1000.00"),
                "duration_months": 36,
            },
            at("2010-09-03"),
        ),  # no budget
        event(
            "grant_terminated",
            {
                "grant_id": "G2",
                "reference": "REF-G2",
                "effective_date": date(2010, 10, 31),
                "reason": "dissolved",
                "terminated_by": "maria",
                "terminated_at": at("2010-10-01", 23, WEST),
                "amount_eur": D("1000.00"),
                "paid_eur": D("0.00"),
                "final_report_period_start": date(2010, 7, 1),
                "final_report_due": date(2011, 1, 31),
            },
            at("2010-10-02"),
        ),
        event(
            "grant_terminated",
            {
                "grant_id": "G2",
                "reference": "REF-G2",
                "effective_date": date(2010, 11, 30),
                "reason": "again",
                "terminated_by": "maria",
                "terminated_at": at("2010-10-05"),
                "amount_eur": D("1000.00"),
                "paid_eur": D("0.00"),
                "final_report_period_start": date(2010, 7, 1),
                "final_report_due": date(2011, 1, 31),
            },
            at("2010-10-05"),
        ),
        event(
            "grant_closed",
            {
                "grant_id": "G2",
                "reference": "REF-G2",
                "kind": "declined",
                "paid_eur": D("0.00"),
                "accepted_expenditure_eur": D("0.00"),
                "recovery_eur": D("0.00"),
                "closed_at": at("2011-01-31", 2, EAST),
            },
            at("2011-01-31"),
        ),
        event(
            "grant_closed",
            {
                "grant_id": "G2",
                "reference": "REF-G2",
                "kind": "recovery",
                "paid_eur": D("1.00"),
                "accepted_expenditure_eur": D("0.00"),
                "recovery_eur": D("1.00"),
                "closed_at": at("2011-02-01"),
            },
            at("2011-02-01"),
        ),
        event(
            "grant_decommitted",
            {
                "decommitment_id": "DC1",
                "grant_id": "G1",
                "reference": "REF-G1",
                "amount_eur": D("9999.99"),
                "committed_before_eur": D("80000.01"),
                "committed_after_eur": D("70000.02"),
                "reason": "final amount lower",
                "decommitted_at": at("2011-06-30", 23, WEST),
            },
            at("2011-07-01"),
        ),
        event(
            "grant_decommitted",
            {
                "decommitment_id": "DC1",
                "grant_id": "G1",
                "reference": "REF-G1",
                "amount_eur": D("1.00"),
                "committed_before_eur": D("1.00"),
                "committed_after_eur": D("0.00"),
                "reason": "again",
                "decommitted_at": at("2011-07-02"),
            },
            at("2011-07-02"),
        ),
        # events reporting archives but does not project
        event(
            "rates_published",
            {
                "month": "2010-02",
                "rate_type": "inforeuro",
                "source": "EC",
                "rates": [{"currency": "MAD", "rate": D("11.000000")}],
                "published_by": "omar",
                "published_at": at("2010-02-01"),
            },
            at("2010-02-01"),
        ),
    ]
    return events


def late_events() -> list[Event]:
    """Events arriving while a rebuild runs: new facts, and keys the archive already gave (the archive's stay)."""
    return [
        event(
            "tranche_paid",
            {**_payment("PAY9", "G1", 3, "7.77"), "value_date": date(2011, 8, 1), "bank_reference": "B9"},
            at("2011-08-01", 23, WEST),
        ),
        event(
            "tranche_paid",
            {**_payment("PAY1", "G1", 1, "2.00"), "value_date": date(2011, 8, 2), "bank_reference": "B1-late"},
            at("2011-08-02"),
        ),
        event("grant_awarded", _award("G1", "5.00", {"contingency": D("5.00"), "travel": D("1.00")}), at("2011-08-03")),
        event(
            "grant_awarded",
            _award("G4", "300.00", {"travel": D("100.00"), "other": D("100.00"), "local_office": D("100.00")}, "P1"),
            at("2011-08-04"),
        ),
    ]
