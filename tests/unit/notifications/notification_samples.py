"""Realistic contexts for every message kind (shared by the unit and SMTP integration tests)."""

import datetime as dt
from decimal import Decimal

UTC = dt.timezone.utc

COMMON = {"recipient_name": "Ms Amina El Idrissi", "contact_email": "jmdi.pmu@undp.org"}

CONTEXTS = {
    "submission_receipt": {
        "organisation": "Association Migrations et Développement (Taroudant)",
        "call_reference": "JMDI/CfP/2008-01",
        "proposal_reference": "JMDI-2009-MA-0123",
        "proposal_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "submitted_at": dt.datetime(2009, 1, 15, 14, 30, tzinfo=UTC),
    },
    "screening_result": {
        "proposal_reference": "JMDI-2009-MA-0123",
        "proposal_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "eligible": True,
        "flagged": False,
        "reasons": [],
    },
    "evaluation_result": {
        "proposal_reference": "JMDI-2009-MA-0123",
        "proposal_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "stage": "concept_note",
        "score": Decimal("38.5"),
        "max_score": 50,
        "threshold": 30,
        "passed": True,
    },
    "award": {
        "organisation": "Association Migrations et Développement (Taroudant)",
        "proposal_reference": "JMDI-2009-MA-0123",
        "proposal_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "grant_reference": "JMDI-G-2009-017",
        "amount": Decimal("187450.00"),
        "duration_months": 18,
        "reply_by": dt.date(2009, 7, 1),
    },
    "rejection": {
        "proposal_reference": "JMDI-2009-EC-0456",
        "proposal_title": "Migrant associations for local development in Loja",
        "reasons": [
            "the full application scored 58/100, below the 65/100 needed for the award list",
            "the budget did not demonstrate cost-effectiveness for the activities proposed",
        ],
    },
    "contract_signed": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "signed_on": dt.date(2009, 9, 1),
        "start_date": dt.date(2009, 10, 1),
        "end_date": dt.date(2011, 3, 31),
        "amount": Decimal("187450.00"),
        "schedule": [
            {"number": 1, "amount": Decimal("99973.33"), "expected_date": dt.date(2009, 10, 1)},
            {"number": 2, "amount": "68730.00", "expected_date": dt.date(2010, 11, 15)},
            {"number": 3, "amount": "18746.67", "expected_date": dt.date(2011, 7, 1)},
        ],
    },
    "tranche_paid": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "tranche_number": 1,
        "amount": Decimal("99973.33"),
        "value_date": dt.date(2009, 10, 6),
        "total_paid": Decimal("99973.33"),
        "award_amount": Decimal("187450.00"),
    },
    "payment_requested": {
        "recipient_name": "Mr Pieter Janssens",
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "organisation": "Association Migrations et Développement (Taroudant)",
        "tranche_number": 2,
        "amount": Decimal("61230.00"),
        "reduction": Decimal("7500.00"),
        "requested_by": "Claire Dubois, Finance Officer",
        "requested_at": dt.datetime(2010, 11, 16, 9, 5, tzinfo=UTC),
        "note": "Interim report approved on 12 November 2010.",
    },
    "payment_cancelled": {
        "recipient_name": "Mr Pieter Janssens",
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "organisation": "Association Migrations et Développement (Taroudant)",
        "tranche_number": 2,
        "amount": Decimal("61230.00"),
        "requested_by": "claire.dubois",
        "cancelled_by": "farid.haddad",
        "cancelled_at": dt.datetime(2010, 11, 17, 8, 40, tzinfo=UTC),
        "reason": "The bank details changed: a new request follows.",
    },
    "report_due": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "report_kind": "interim",
        "due_date": dt.date(2010, 10, 31),
        "days_before": 30,
    },
    "report_accepted": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "report_kind": "interim",
        "accepted_on": dt.date(2010, 11, 12),
        "next_tranche_amount": Decimal("61230.00"),
    },
    "report_returned": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "report_kind": "final",
        "reason": "The financial report does not reconcile with the bank statements for heading 2 (Travel).",
        "resubmit_by": dt.date(2011, 6, 15),
    },
    "grant_amended": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "amendment_number": 1,
        "effective_date": dt.date(2010, 6, 1),
        "changes": [
            "extension of the implementation period by three months",
            "transfer of EUR 12,000.00 from heading 3 to heading 1",
        ],
        "new_end_date": dt.date(2011, 6, 30),
    },
    "grant_terminated": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "effective_date": dt.date(2010, 9, 30),
        "reason": "The lead applicant was dissolved; the partners cannot carry on the action.",
        "award_amount": Decimal("187450.00"),
        "total_paid": Decimal("59984.00"),
        "final_report_period_start": dt.date(2010, 3, 1),
        "final_report_due": dt.date(2010, 12, 30),
    },
    "grant_closed": {
        "grant_reference": "JMDI-G-2009-017",
        "project_title": "Transferts de fonds et investissement productif dans la vallée du Souss",
        "closed_on": dt.date(2011, 12, 20),
        "award_amount": Decimal("187450.00"),
        "total_paid": Decimal("168703.33"),
        "recovery_amount": Decimal("4210.55"),
        "recovery_due_date": dt.date(2012, 2, 3),
    },
    "ec_report": {
        "recipient_name": "Mr Jean-Marc Lefèvre",
        "report_title": "quarterly financial report",
        "period_start": dt.date(2010, 1, 1),
        "period_end": dt.date(2010, 3, 31),
        "generated_at": dt.datetime(2010, 4, 2, 8, 0, tzinfo=UTC),
        "file_name": "jmdi-financial-report-2010Q1.xlsx",
        "summary": {"grants_count": 51, "committed": Decimal("9215340.00"), "disbursed": "5102877.45"},
    },
}


def context(kind, **overrides):
    """COMMON + the kind's sample + overrides, as a fresh dict."""
    return {**COMMON, **CONTEXTS[kind], **overrides}
