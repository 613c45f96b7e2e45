"""The kit's pure parts: money, event contracts, errors across the wire, configuration, tokens."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from nameko.exceptions import RemoteError, deserialize, serialize

from services.common.contracts import events, topology
from services.common.runtime import config
from services.common.values import errors
from services.common.values.money import MoneyError, money_str, round_money, to_money
from services.common.values.wire import to_wire


@pytest.mark.parametrize(
    "value,expected",
    [
        ("150000", "150000.00"),
        (50000, "50000.00"),
        ("0.1", "0.10"),
        (Decimal("200000.01"), "200000.01"),
        (" 12.5 ", "12.50"),
    ],
)
def test_money_accepts_decimal_strings_and_integers(value, expected):
    assert money_str(to_money(value)) == expected


@pytest.mark.parametrize(
    "value,reason",
    [
        (1.5, "float"),
        ("12.345", "two decimal places"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("abc", "decimal"),
        (True, "float"),
        ([1], "decimal string"),
    ],
)
def test_money_refuses_floats_nan_and_fractions_of_cents(value, reason):
    with pytest.raises(MoneyError, match=reason):
        to_money(value)


def test_rounding_of_computed_amounts_is_half_up_to_the_cent():
    assert round_money(Decimal("56000.005")) == Decimal("56000.01")
    assert round_money(Decimal("0.8") * Decimal("70000.01")) == Decimal("56000.01")


def test_every_event_of_the_catalogue_has_a_contract_and_a_producer():
    produced = {e for evts in topology.PRODUCED.values() for e in evts}
    assert produced == set(events.CONTRACTS)
    for consumer, producer, event_type, queue in topology.subscriptions():
        assert event_type in topology.PRODUCED[producer]
        assert queue == f"evt-{producer}-{event_type}--{consumer}.on_{event_type}"


def tranche(**overrides):
    data = dict(
        payment_id="p1",
        grant_id="g1",
        reference="JMDI-2008-MA-0001",
        tranche_number=1,
        amount_eur=Decimal("56000.00"),
        value_date=date(2009, 7, 1),
        bank_reference="BNK-1",
    )
    data.update(overrides)
    return data


def test_an_event_round_trips_with_money_as_a_decimal_string():
    evt = events.make_event("tranche_paid", tranche(), producer="grants", actor="farid")
    assert evt.body["data"]["amount_eur"] == "56000.00"
    assert evt.body["actor"] == "farid" and evt.body["version"] == 1
    parsed = events.parse_event(evt.body)
    assert parsed.data["amount_eur"] == Decimal("56000.00")
    assert parsed.event_id == evt.event_id


@pytest.mark.parametrize(
    "bad", [dict(amount_eur=56000.0), dict(amount_eur=Decimal("1.001")), dict(tranche_number="one")]
)
def test_a_producer_cannot_emit_an_invalid_event(bad):
    with pytest.raises(errors.InvalidInput):
        events.make_event("tranche_paid", tranche(**bad), producer="grants")


def test_only_the_owner_produces_an_event():
    with pytest.raises(errors.InvalidInput, match="does not produce"):
        events.make_event("tranche_paid", tranche(), producer="calls")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["data"].update(amount_eur=56000.0),
        lambda b: b["data"].update(amount_eur="-1x"),
        lambda b: b.update(version=99),
        lambda b: b.update(event_type="unknown"),
        lambda b: b.pop("event_id"),
        lambda b: b["data"].update(unexpected="field"),
    ],
)
def test_a_consumer_cannot_accept_an_invalid_event(mutate):
    body = events.make_event("tranche_paid", tranche(), producer="grants").body
    mutate(body)
    with pytest.raises(errors.InvalidInput):
        events.parse_event(body)


@pytest.mark.parametrize(
    "exc",
    [
        errors.InvalidInput({"amount_eur": ["must not be negative"]}),
        errors.NotFound("grant", "g-1"),
        errors.Conflict("award.above_max", "200000.01 is above the call maximum", [{"rule": "x"}]),
        errors.NotAllowed("token expired"),
    ],
)
def test_typed_errors_cross_the_rpc_boundary_as_themselves(exc):
    back = deserialize(serialize(exc))
    assert type(back) is type(exc)
    assert back.to_dict() == exc.to_dict()


def test_an_unexpected_failure_reaches_the_caller_as_remote_error():
    assert isinstance(deserialize(serialize(ZeroDivisionError("boom"))), RemoteError)


def test_invalid_input_message_names_nested_fields():
    exc = errors.InvalidInput({"applicants": {"0": {"email": ["Not a valid email address."]}}})
    assert "applicants.0.email: Not a valid email address." in str(exc)


def test_config_placeholders_take_the_environment_or_the_default(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        "AMQP_URI: ${AMQP_URI:amqp://x/}\nDATABASE_URL: ${DB:sqlite:///var/t.db}\n"
        "WEB_SERVER_ADDRESS: ${HOST:0.0.0.0}:${PORT:8001}\nmax_workers: ${W:10}\nFLAG: ${F:true}\n"
    )
    loaded = config.load_config("calls", env={"PORT": "9000", "W": "3"}, path=path)
    assert loaded["WEB_SERVER_ADDRESS"] == "0.0.0.0:9000"
    assert loaded["max_workers"] == 3 and loaded["FLAG"] is True
    assert loaded["DATABASE_URL"] == f"sqlite:///{config.REPO_ROOT}/var/t.db"


def test_readme_lists_every_setting():
    readme = (config.REPO_ROOT / "README.md").read_text()
    for name, _default, _meaning in config.SETTINGS:
        assert f"`{name}`" in readme, name


def test_wire_values_are_plain_json():
    value = {"a": Decimal("1.50"), "d": date(2009, 1, 2), "t": datetime(2009, 1, 2, tzinfo=timezone.utc), "l": (1,)}
    assert to_wire(value) == {"a": "1.50", "d": "2009-01-02", "t": "2009-01-02T00:00:00+00:00", "l": [1]}


def test_every_setting_the_services_read_is_listed():
    import re

    listed = {name for name, _default, _meaning in config.SETTINGS}
    read = set()
    for path in config.SERVICES_DIR.rglob("*"):
        if path.suffix == ".yml":
            settings = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
            read |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", settings))
        elif path.suffix == ".py":
            read |= set(re.findall(r"environ(?:\.get)?\(\s*[\"']([A-Z_][A-Z0-9_]*)", path.read_text()))
    assert read - listed == set()


def test_text_no_database_can_store_is_refused_as_input():
    from services.common.service.entrypoints import unstorable_text

    assert unstorable_text({"title": "Diaspora\x00", "applicants": [{"name": "\ud800"}], "ok": "Développement"}) == {
        "title": ["must not contain NUL characters"],
        "applicants.0.name": ["is not valid Unicode text"],
    }


def test_absurd_amounts_are_out_of_range_not_a_crash():
    with pytest.raises(MoneyError, match="out of range"):
        to_money("1e400")


def test_a_date_time_with_any_offset_is_loaded_as_the_same_instant_in_utc():
    """Found by schemathesis through the gateway: an offset PostgreSQL cannot store (-20:34) was an internal error."""
    from datetime import datetime, timezone

    from marshmallow import ValidationError

    from services.common.service.entrypoints import AuditQuery

    loaded = AuditQuery().load({"since": "0018-09-05T12:22:06-20:34", "until": "2009-03-31T12:00:00+02:00"})
    assert loaded["since"] == datetime(18, 9, 6, 8, 56, 6, tzinfo=timezone.utc)
    assert loaded["until"].utcoffset().total_seconds() == 0 and loaded["until"].hour == 10
    with pytest.raises(ValidationError, match="out of range"):
        AuditQuery().load({"until": "9999-12-31T23:00:00-23:00"})
