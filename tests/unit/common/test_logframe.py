"""The logframe's validation (every refusal names its path), targets amendments, actuals, and progress."""

from decimal import Decimal

import pytest

from services.common.values.errors import InvalidInput
from services.common.values.logframe import change_targets, completeness, parse_actuals, parse_logframe, progress
from tests.support import flows


def test_a_good_logframe_is_normalised():
    parsed = parse_logframe(flows.logframe())
    assert [r["type"] for r in parsed] == ["outcome", "output"]
    oc = parsed[0]["indicators"][1]
    assert (oc["measure"], oc["unit"], oc["baseline_value"], oc["target_value"]) == ("percentage", "%", "12.5", "30")
    assert parse_logframe(parsed) == parsed  # idempotent: the wire form parses to itself
    plain = [{**r, "indicators": [dict(i) for i in r["indicators"]]} for r in parsed]
    assert type(plain) is list and parse_logframe(plain) == parsed  # so a parsed one is given back unparsed
    assert parse_logframe(parsed) is parsed


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda lf: lf[0].update(type="impact"), "logframe.0.type"),
        (lambda lf: lf[0]["indicators"][0].update(measure="ratio"), "logframe.0.indicators.0.measure"),
        (lambda lf: lf[0]["indicators"][0].update(target_value=40.5), "logframe.0.indicators.0.target_value"),
        (lambda lf: lf[0]["indicators"][0].update(target_value="-1"), "logframe.0.indicators.0.target_value"),
        (lambda lf: lf[0]["indicators"][1].update(target_value="101"), "logframe.0.indicators.1.target_value"),
        (lambda lf: lf[0]["indicators"][0].update(title="a\x07bell"), "logframe.0.indicators.0.title"),
        (lambda lf: lf[0]["indicators"][0].update(title="x" * 301), "logframe.0.indicators.0.title"),
        (lambda lf: lf[0]["indicators"][0].update(baseline_year="2008"), "logframe.0.indicators.0.baseline_year"),
        (lambda lf: lf[0]["indicators"][0].update(target_date="31/12/2010"), "logframe.0.indicators.0.target_date"),
        (lambda lf: lf[0]["indicators"][0].update(target_date="2007-01-01"), "logframe.0.indicators.0.target_date"),
        (lambda lf: lf[0]["indicators"][0].pop("unit"), "logframe.0.indicators.0.unit"),
        (lambda lf: lf[0]["indicators"][0].update(colour="red"), "logframe.0.indicators.0.colour"),
        (lambda lf: lf[1]["indicators"][0].update(code="OC1.1"), "logframe.1.indicators.0.code"),
        (lambda lf: lf[1]["indicators"][0].update(code="bad code!"), "logframe.1.indicators.0.code"),
        (lambda lf: lf[1].update(indicators=[]), "logframe.1.indicators"),
    ],
)
def test_a_bad_logframe_is_refused_naming_the_field(change, field):
    logframe = flows.logframe()
    change(logframe)
    with pytest.raises(InvalidInput) as refused:
        parse_logframe(logframe)
    assert field in refused.value.errors


def test_the_full_application_needs_an_outcome_and_an_output():
    assert completeness(None)[0][0] == "logframe.missing"
    assert [p[0] for p in completeness([r for r in parse_logframe(flows.logframe()) if r["type"] == "output"])] == [
        "logframe.no_outcome"
    ]
    assert completeness(parse_logframe(flows.logframe())) == []


def test_targets_change_by_code_and_unknown_codes_are_named():
    logframe = parse_logframe(flows.logframe())
    amended = change_targets(logframe, [{"code": "OC1.1", "target_value": "55", "target_date": "2011-06-30"}])
    assert amended[0]["indicators"][0]["target_value"] == "55"
    assert amended[0]["indicators"][0]["target_date"] == "2011-06-30"
    assert logframe[0]["indicators"][0]["target_value"] == "40"  # the original is untouched
    with pytest.raises(InvalidInput) as refused:
        change_targets(logframe, [{"code": "OC1.1", "target_value": "1"}, {"code": "ZZ", "target_value": "1"}])
    assert "new_targets.1.code" in refused.value.errors


def test_actuals_are_checked_against_the_grants_indicators():
    logframe = parse_logframe(flows.logframe())
    assert parse_actuals([{"code": "OC1.1", "value": 60}], logframe) == [
        {"code": "OC1.1", "value": "60", "comment": ""}
    ]
    for bad, field in (
        ([{"code": "NOPE", "value": "1"}], "actuals.0.code"),
        ([{"code": "OC1.2", "value": "100.5"}], "actuals.0.value"),
        ([{"code": "OC1.1", "value": 1.5}], "actuals.0.value"),
        ([{"code": "OC1.1", "value": "1"}, {"code": "OC1.1", "value": "2"}], "actuals.1.code"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_actuals(bad, logframe)
        assert field in refused.value.errors
    with pytest.raises(InvalidInput):
        parse_actuals([{"code": "OC1.1", "value": "1"}], None)


def test_progress_is_exact_decimal_and_may_exceed_100():
    assert progress("0", "40", "60", "unit") == Decimal("150.00")
    assert progress("12.5", "30", "21.25", "percentage") == Decimal("50.00")
    assert progress("0", "3", "1", "unit") == Decimal("33.33")
    assert progress("10", "10", "12", "unit") is None  # no distance to cover
    assert progress("a", "b", "c", "qualitative") is None
