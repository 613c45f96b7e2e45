"""The gateway's OpenAPI document without a running system: valid OpenAPI 3.1, every operation's 200 answer a
schema of what it returns (no empty one), and those schemas strict enough to refuse what the services never send."""

import warnings
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from openapi_spec_validator import validate

from services.common.values.wire import to_wire
from services.gateway.catalogue import operations
from services.gateway.views import document
from tests.support.answers import check_answer


def test_the_document_is_valid_openapi_and_its_component_names_are_unique():
    with warnings.catch_warnings():
        # apispec warns (and renames one) when two schemas resolve to one component name
        warnings.filterwarnings("error", message="Multiple schemas resolved", category=UserWarning)
        built = document.__wrapped__()
    validate(built)
    assert built == document()


def test_no_operation_answers_an_empty_schema():
    for op in operations():
        assert op.result is not None, f"{op.key} declares no result schema (operation(..., result=...))"
    empty = [
        f"{method.upper()} {path}"
        for path, methods in document()["paths"].items()
        for method, described in methods.items()
        if not described["responses"]["200"]["content"]["application/json"]["schema"]
    ]
    assert not empty


def ledger_line(**changes) -> dict:
    line = {
        "grant_id": "G-1",
        "reference": "JMDI-2008-MA-001",
        "programme_id": "JMDI",
        "call_id": "JMDI-2008",
        "window": "W1",
        "country": "MA",
        "status": "contracted",
        "awarded_eur": Decimal("150000.00"),
        "committed_eur": Decimal("150000.00"),
        "decommitted_eur": Decimal("0.00"),
        "paid_eur": Decimal("60000.00"),
        "recovery_eur": Decimal("0.00"),
    }
    return {**line, **changes}


def test_a_result_in_its_wire_form_is_what_the_document_declares():
    check_answer("grants.ledger", to_wire({"grants": [ledger_line()]}))
    check_answer(
        "grants.list_payments",
        to_wire(
            [
                {
                    "payment_id": "P-1",
                    "grant_id": "G-1",
                    "idempotency_key": None,
                    "tranche_number": 1,
                    "amount_eur": Decimal("60000.00"),
                    "status": "paid",
                    "requested_by": "maria.pm",
                    "requested_at": datetime(2026, 3, 1, 9, tzinfo=timezone.utc),
                    "approved_by": "farid.finance",
                    "approved_at": datetime(2026, 3, 2, 9, tzinfo=timezone.utc),
                    "value_date": date(2026, 3, 3),
                    "bank_reference": "BNK-1",
                    "cancelled_by": None,
                    "cancelled_at": None,
                    "cancel_reason": None,
                }
            ]
        ),
    )


@pytest.mark.parametrize(
    "line, where",
    [
        (ledger_line(paid_eur=60000.5), "paid_eur"),  # money is never a JSON number
        (ledger_line(paid_eur="sixty"), "paid_eur"),
        (ledger_line(status=None), "status"),
        (ledger_line(surprise=1), "surprise"),  # a key the document does not declare
        ({k: v for k, v in ledger_line().items() if k != "grant_id"}, "grant_id"),
    ],
)
def test_an_answer_outside_its_schema_is_refused(line, where):
    with pytest.raises(AssertionError, match=where):
        check_answer("grants.ledger", to_wire({"grants": [line]}))
