"""The exchange-rate file import: InforEuro-style columns, validation naming the row and the field, months grouped."""

from pathlib import Path

from jmdi.importer import read_rows
from jmdi.rates import import_rates, parse


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_inforeuro_style_file_is_grouped_by_month(tmp_path):
    rows = read_rows(
        write(
            tmp_path,
            "Country;Currency;ISO code;Conversion rate\nMorocco;Dirham;MAD;10.8655\nSenegal;CFA franc;XOF;655.957\n",
        )
    )
    result = parse(rows, "2026-03")
    assert not result.errors
    assert result.months == {
        "2026-03": [{"currency": "MAD", "rate": "10.8655"}, {"currency": "XOF", "rate": "655.957"}]
    }


def test_a_year_of_rates_with_a_month_column(tmp_path):
    rows = read_rows(write(tmp_path, "month,currency,rate\n2026-01,MAD,10.9\n2026-02,MAD,10.95\n2026-02,php,63.1\n"))
    assert sorted(parse(rows, None).months) == ["2026-01", "2026-02"]


def test_every_bad_row_is_named_with_its_field_and_nothing_is_published(tmp_path):
    rows = read_rows(
        write(
            tmp_path,
            "month,currency,rate\n2026-01,MAD,10.9\n2026-13,MAD,x\n2026-01,ZZZ,-1\n"
            "2026-01,MAD,11\n2026-01,EUR,1\n,XOF,655.957\n",
        )
    )

    class Refuse:
        def call(self, *args):
            raise AssertionError("nothing may be published when a row is wrong")

    result = import_rates(
        Refuse(),
        write(
            tmp_path,
            "month,currency,rate\n2026-01,MAD,10.9\n2026-13,MAD,x\n"
            "2026-01,ZZZ,-1\n2026-01,MAD,11\n2026-01,EUR,1\n,XOF,655.957\n",
        ),
        "test",
        quiet=True,
    )
    problems = {(e["row"], e["field"]) for e in result.errors}
    assert problems == {
        (3, "month"),
        (3, "rate"),
        (4, "currency"),
        (4, "rate"),
        (5, "currency"),
        (6, "currency"),
        (7, "month"),
    }
    assert result.exit_code == 2 and not result.published and len(rows) == 6


def test_the_import_publishes_one_month_at_a_time(tmp_path):
    calls = []

    class Gateway:
        def call(self, service, operation, payload):
            calls.append((service, operation, payload["month"], len(payload["rates"])))
            return {"published": [r["currency"] for r in payload["rates"]], "unchanged": []}

    result = import_rates(
        Gateway(),
        write(tmp_path, "month,currency,rate\n2026-01,MAD,10.9\n2026-02,MAD,10.95\n2026-02,PHP,63.1\n"),
        "Demo rates",
        quiet=True,
    )
    assert calls == [("grants", "set_rates", "2026-01", 1), ("grants", "set_rates", "2026-02", 2)]
    assert result.summary()["published"] == 3 and result.exit_code == 0


def test_the_demo_ships_a_year_of_generated_rates_that_the_import_accepts():
    from jmdi.demo_rates import DEMO_RATES_FILE, SOURCE, generate

    result = parse(read_rows(DEMO_RATES_FILE), None)
    assert not result.errors and len(result.months) == 12
    assert {r["currency"] for rates in result.months.values() for r in rates} == {"MAD", "XOF", "EGP", "PHP"}
    assert "DEMO" in SOURCE and "not InforEuro" in SOURCE
    # the shipped file is what the generator writes (same seed, same months)
    shipped = [(r["month"], r["currency"], r["rate"]) for r in read_rows(DEMO_RATES_FILE)]
    assert shipped == [(r["month"], r["currency"], r["rate"]) for r in generate("2026-12", 12)]
