"""Expenditure in local currency: rates validated, each line converted and rounded to the cent, then summed; a missing
rate refused by name; the 70% rule on the EUR values; the rule of the programme chosen by its profile."""

from datetime import date
from decimal import Decimal as D

import pytest

from services.common.contracts.events import CONTRACTS
from services.common.values.errors import Conflict, InvalidInput
from services.grants.domain import ConversionRule, ExchangeRate, RateType, conversion_rule, currency, rate_table
from services.grants.domain import currencies as fx

from test_grants_aggregate import at, contracted, pay

RATES = {
    ("inforeuro", "2009-05", "MAD"): D("11.2345"),
    ("inforeuro", "2009-06", "MAD"): D("11.0000"),
    ("inforeuro", "2009-03", "MAD"): D("11.5000"),
    ("inforeuro", "2009-05", "XOF"): D("655.957"),
    ("un_operational", "2009-05", "MAD"): D("11.3000"),
    ("inforeuro", "2009-07", "PHP"): D("2"),
}


def lookup(rate_type, month, code):
    value = RATES.get((RateType(rate_type).value, month, code))
    return None if value is None else ExchangeRate(RateType(rate_type), month, code, value, "test rates")


def line(amount, code="MAD", day=date(2009, 5, 10), heading="human_resources"):
    return {"heading": heading, "amount": amount, "currency": code, "incurred_on": day.isoformat()}


def lines_of(*raw):
    return fx.expenditure_lines(list(raw), fx_headings(), date(2009, 3, 1), date(2010, 2, 28))


def fx_headings():
    from services.grants.domain import HEADINGS

    return HEADINGS


def test_each_line_is_rounded_to_the_cent_then_summed():
    # 100.00 MAD / 11.2345 = 8.90115... -> 8.90 a line, 26.70 for three; 0.05 MAD = 0.00445 EUR -> 0.00 a line, so
    # three such lines make 0.00 where converting their sum (0.15 MAD = 0.0134) would give 0.01: the lines decide
    converted = fx.convert(lines_of(line("100.00"), line("100.00"), line("100.00")), ConversionRule.EC_MONTHLY, lookup)
    assert [c.amount_eur for c in converted] == [D("8.90")] * 3
    assert fx.by_heading(converted) == {"human_resources": D("26.70")}
    tiny = fx.convert(lines_of(*[line("0.05")] * 3), ConversionRule.EC_MONTHLY, lookup)
    assert fx.by_heading(tiny) == {"human_resources": D("0.00")}  # per line 0.00445 -> 0.00, never 0.01
    # half a cent goes up (finance's rounding, not the banker's): 0.05 PHP at 2 PHP per EUR = 0.025 -> 0.03
    halves = fx.convert(
        lines_of(line("0.01", "PHP", date(2009, 7, 1)), line("0.05", "PHP", date(2009, 7, 2))),
        ConversionRule.EC_MONTHLY,
        lookup,
    )
    assert [c.amount_eur for c in halves] == [D("0.01"), D("0.03")]


def test_the_rate_of_the_month_the_cost_was_incurred_is_kept_with_the_line():
    converted = fx.convert(
        lines_of(
            line("1123.45", day=date(2009, 5, 31)), line("1100.00", day=date(2009, 6, 1)), line("655957.00", code="XOF")
        ),
        ConversionRule.EC_MONTHLY,
        lookup,
    )
    assert [(c.rate, c.rate_month, c.rate_type, c.amount_eur) for c in converted] == [
        (D("11.2345"), "2009-05", "inforeuro", D("100.00")),
        (D("11.0000"), "2009-06", "inforeuro", D("100.00")),
        (D("655.957"), "2009-05", "inforeuro", D("1000.00")),
    ]
    # the stored line re-derives its EUR value from what it keeps
    again = fx.ExpenditureLine.from_data(converted[0].to_data())
    assert again == converted[0] and (again.amount / again.rate).quantize(D("0.01")) == again.amount_eur


def test_a_line_in_eur_needs_no_rate():
    converted = fx.convert(lines_of(line("1234.56", code="eur")), ConversionRule.EC_MONTHLY, lambda *_: None)
    assert (converted[0].currency, converted[0].rate, converted[0].rate_type, converted[0].amount_eur) == (
        "EUR",
        D(1),
        None,
        D("1234.56"),
    )


def test_a_missing_rate_is_refused_naming_the_currency_and_the_month():
    with pytest.raises(Conflict) as err:
        fx.convert(
            lines_of(line("10.00", "EGP"), line("5.00", "EGP"), line("1.00", day=date(2009, 7, 1))),
            ConversionRule.EC_MONTHLY,
            lookup,
        )
    assert err.value.rule == "conversion.rate_missing"
    assert "EGP in 2009-05" in err.value.reason and "MAD in 2009-07" in err.value.reason
    assert err.value.details == [
        {"currency": "EGP", "month": "2009-05", "rate_type": "inforeuro", "lines": 2},
        {"currency": "MAD", "month": "2009-07", "rate_type": "inforeuro", "lines": 1},
    ]


def test_the_undp_rule_uses_the_un_operational_rates_and_the_prefinancing_rule_one_month():
    undp = fx.convert(lines_of(line("113.00")), ConversionRule.UNDP_MONTHLY, lookup)
    assert (undp[0].rate_type, undp[0].amount_eur) == ("un_operational", D("10.00"))
    pre = fx.convert(
        lines_of(line("115.00"), line("115.00", day=date(2009, 9, 9))),
        ConversionRule.EC_PREFINANCING,
        lookup,
        prefinancing_month="2009-03",
    )
    assert [(c.rate_month, c.amount_eur) for c in pre] == [("2009-03", D("10.00"))] * 2
    with pytest.raises(Conflict) as err:
        fx.convert(lines_of(line("115.00")), ConversionRule.EC_PREFINANCING, lookup)
    assert err.value.rule == "conversion.no_prefinancing"
    assert conversion_rule(None, "ec_prag") == ConversionRule.EC_MONTHLY
    assert conversion_rule(None, "undp") == ConversionRule.UNDP_MONTHLY
    assert conversion_rule("ec_prefinancing", "undp") == ConversionRule.EC_PREFINANCING
    with pytest.raises(InvalidInput):
        conversion_rule("whatever")


def test_lines_are_validated_row_by_row_naming_the_field():
    with pytest.raises(InvalidInput) as err:
        lines_of(
            line("10.00", "MAD"),
            line("-1.00", "ZZZ", day=date(2011, 1, 1), heading="yachts"),
            {"heading": "travel", "amount": 1.5, "currency": "MAD", "incurred_on": "nope"},
        )
    assert set(err.value.errors) == {
        "lines.1.amount",
        "lines.1.currency",
        "lines.1.incurred_on",
        "lines.1.heading",
        "lines.2.amount",
        "lines.2.incurred_on",
    }
    assert "outside the report's period" in err.value.errors["lines.1.incurred_on"][0]


def test_a_rate_table_is_validated_entry_by_entry():
    table = rate_table(
        "2009-05",
        "inforeuro",
        "InforEuro 2009-05",
        [{"currency": "mad", "rate": "11.2345"}, {"currency": "XOF", "rate": "655.957"}],
    )
    assert [(r.currency, r.rate) for r in table] == [("MAD", D("11.2345")), ("XOF", D("655.957"))]
    with pytest.raises(InvalidInput) as err:
        rate_table(
            "2009-13",
            "inforeuro",
            "",
            [
                {"currency": "EUR", "rate": "1"},
                {"currency": "XXX", "rate": "2"},
                {"currency": "MAD", "rate": 11.2},
                {"currency": "PHP", "rate": "0"},
                {"currency": "EGP", "rate": "1.1234567"},
                {"currency": "PHP", "rate": "60"},
            ],
        )
    assert set(err.value.errors) == {
        "month",
        "source",
        "rates.0.currency",
        "rates.1.currency",
        "rates.2.rate",
        "rates.3.rate",
        "rates.4.rate",
        "rates.5.currency",
    }
    assert currency(" php ") == "PHP"


def test_a_report_in_local_currencies_feeds_the_70_percent_rule_in_eur():
    grant, _, _ = contracted()
    pay(grant, "k1", 1, "56000.00")  # pre-financing, value date 2009-03-07
    # 42,000 EUR spent: 200,000 EUR of it in MAD at 11.0000 (2,200,000.00 MAD) would be too much; spend 22,000
    # EUR as 242,000.00 MAD (June 2009) and 20,000 EUR in EUR
    events = grant.submit_report(
        "r1",
        "interim",
        1,
        None,
        at(2010, 4, 1),
        lines=[line("242000.00", day=date(2009, 6, 15)), line("20000.00", "EUR", heading="travel")],
        rates=lookup,
    )
    data = CONTRACTS["report_submitted"]().load(events[0].data)
    assert data["total_eur"] == D("42000.00") and data["conversion"] == "ec_monthly"
    assert data["expenditure"]["human_resources"] == D("22000.00") and data["expenditure"]["travel"] == D("20000.00")
    assert [(ln["currency"], ln["amount"], ln["rate"], ln["amount_eur"]) for ln in data["lines"]] == [
        ("MAD", D("242000.00"), D("11.0000"), D("22000.00")),
        ("EUR", D("20000.00"), D("1"), D("20000.00")),
    ]
    grant.accept_report("r1", at(2010, 4, 20))
    assert grant.payable_amount(2) == D("33600.00")  # the same cut as 42,000 EUR reported in EUR
    assert grant.prefinancing_month() == "2009-03"


def test_a_report_gives_eur_per_heading_or_lines_not_both_nor_neither():
    grant, _, _ = contracted()
    with pytest.raises(InvalidInput):
        grant.submit_report("r1", "interim", 1, {"travel": "1.00"}, at(2010, 4, 1), lines=[line("1.00", "EUR")])
    with pytest.raises(InvalidInput):
        grant.submit_report("r1", "interim", 1, None, at(2010, 4, 1))
    with pytest.raises(Conflict) as err:
        grant.submit_report("r1", "interim", 1, None, at(2010, 4, 1), lines=[line("1.00", "PHP")], rates=lookup)
    assert err.value.rule == "conversion.rate_missing" and not grant.reports
