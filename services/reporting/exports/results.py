"""Results against the logframe: per grant, each indicator's latest actual value against its baseline and target,
and the totals per window and country of the indicators that share a code and a unit. Built from the reporting
service's own facts (results_reported, one per accepted report), beside the budget report, not inside it.

An actual value is the indicator's level at the end of the report's period (as a logframe states its targets),
so a grant's progress is its latest period's value: progress % = (actual - baseline) / (target - baseline) x 100,
exact Decimal, rounded once to two places; above 100 when the actual exceeds the target. Only unit indicators are
added up across grants (percentages and qualitative values are not additive).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date
from decimal import Decimal

from lxml import etree
from sqlalchemy import select

from services.common.values.logframe import MEASURES, RESULT_TYPES, progress

from ..models import IndicatorResultRow
from .iati import activity_identifier
from .sections import INT, TEXT, Column, Section

RESULT_COLUMNS = (
    Column("Reference", TEXT, 20),
    Column("Country", TEXT, 8),
    Column("Window", TEXT, 18),
    Column("Result", TEXT, 8),
    Column("Result title", TEXT, 30),
    Column("Code", TEXT, 8),
    Column("Indicator", TEXT, 30),
    Column("Measure", TEXT, 11),
    Column("Unit", TEXT, 12),
    Column("Baseline", TEXT, 12),
    Column("Baseline year", TEXT, 8),
    Column("Target", TEXT, 12),
    Column("Target date", TEXT, 11),
    Column("Period", TEXT, 23),
    Column("Actual", TEXT, 12),
    Column("Progress %", TEXT, 10),
)
TOTAL_COLUMNS = (
    Column("Window", TEXT, 18),
    Column("Country", TEXT, 8),
    Column("Code", TEXT, 8),
    Column("Unit", TEXT, 14),
    Column("Grants", INT, 8),
    Column("Baseline", TEXT, 12),
    Column("Target", TEXT, 12),
    Column("Actual", TEXT, 12),
    Column("Progress %", TEXT, 10),
)


def result_facts(session, programme_id: str | None, as_of: date | None) -> list[IndicatorResultRow]:
    """Every accepted report's values (decided by `as_of`), in grant, period and logframe-code order."""
    query = select(IndicatorResultRow).order_by(
        IndicatorResultRow.reference, IndicatorResultRow.period_end, IndicatorResultRow.code
    )
    if programme_id:
        query = query.where(IndicatorResultRow.programme_id == programme_id)
    if as_of is not None:
        query = query.where(IndicatorResultRow.decided_on <= as_of)
    return list(session.execute(query).scalars())


def latest(facts) -> list[IndicatorResultRow]:
    """Per grant and indicator, the value of the latest period."""
    last: OrderedDict = OrderedDict()
    for fact in facts:
        key = (fact.grant_id, fact.code)
        if key not in last or (fact.period_end, fact.decided_on) >= (last[key].period_end, last[key].decided_on):
            last[key] = fact
    return list(last.values())


def _pct(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def results_section(facts) -> Section:
    rows = [
        (
            f.reference,
            f.country,
            f.window,
            f.result_type,
            f.result_title,
            f.code,
            f.title,
            f.measure,
            f.unit,
            f.baseline_value,
            str(f.baseline_year),
            f.target_value,
            f.target_date.isoformat(),
            f"{f.period_start.isoformat()} to {f.period_end.isoformat()}",
            f.actual_value,
            _pct(progress(f.baseline_value, f.target_value, f.actual_value, f.measure)),
        )
        for f in latest(facts)
    ]
    return Section(
        "results",
        "Results: each indicator's latest actual value against its target",
        RESULT_COLUMNS,
        rows,
        totals=False,
    )


def aggregate(facts) -> list[dict]:
    """Per window, country, code and unit (unit indicators only): grants, summed baseline, target and latest actual,
    and the progress of the sums."""
    groups: OrderedDict = OrderedDict()
    for f in sorted(latest(facts), key=lambda f: (f.window, f.country, f.code, f.unit)):
        if f.measure != "unit":
            continue
        g = groups.setdefault(
            (f.window, f.country, f.code, f.unit),
            {"grants": 0, "baseline": Decimal(0), "target": Decimal(0), "actual": Decimal(0)},
        )
        g["grants"] += 1
        g["baseline"] += Decimal(f.baseline_value)
        g["target"] += Decimal(f.target_value)
        g["actual"] += Decimal(f.actual_value)
    return [
        {
            "window": w,
            "country": c,
            "code": code,
            "unit": unit,
            **g,
            "progress": progress(str(g["baseline"]), str(g["target"]), str(g["actual"]), "unit"),
        }
        for (w, c, code, unit), g in groups.items()
    ]


def totals_section(facts) -> Section:
    rows = [
        (
            a["window"],
            a["country"],
            a["code"],
            a["unit"],
            a["grants"],
            _plain(a["baseline"]),
            _plain(a["target"]),
            _plain(a["actual"]),
            _pct(a["progress"]),
        )
        for a in aggregate(facts)
    ]
    return Section(
        "results_totals",
        "Results per window and country (unit indicators sharing a code and unit)",
        TOTAL_COLUMNS,
        rows,
        totals=False,
    )


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


# --- IATI <result> elements -----------------------------------------------------------------------------------


def _narrative(parent, text: str):
    etree.SubElement(parent, "narrative").text = text


def _result_elements(activity, facts) -> None:
    """Append <result> per logframe result to an <iati-activity> (result comes after the transactions)."""
    by_result: OrderedDict = OrderedDict()
    for f in facts:
        by_result.setdefault((f.result_type, f.result_title), OrderedDict()).setdefault(f.code, []).append(f)
    for (kind, title), indicators in by_result.items():
        result = etree.SubElement(activity, "result", {"type": RESULT_TYPES[kind], "aggregation-status": "0"})
        _narrative(etree.SubElement(result, "title"), title)
        for code, periods in indicators.items():
            last = periods[-1]  # the contract's indicator as last reported (targets as amended)
            attributes = {"measure": MEASURES[last.measure]}
            if last.measure != "qualitative":
                attributes["ascending"] = "1" if Decimal(last.target_value) >= Decimal(last.baseline_value) else "0"
            indicator = etree.SubElement(result, "indicator", attributes)
            _narrative(etree.SubElement(indicator, "title"), f"{code} {last.title}")
            if last.unit and last.measure == "unit":
                _narrative(etree.SubElement(indicator, "description"), f"Unit: {last.unit}")
            numeric = last.measure != "qualitative"
            baseline = etree.SubElement(
                indicator,
                "baseline",
                {"year": str(last.baseline_year), **({"value": last.baseline_value} if numeric else {})},
            )
            if not numeric:
                _narrative(etree.SubElement(baseline, "comment"), last.baseline_value)
            for f in periods:
                period = etree.SubElement(indicator, "period")
                etree.SubElement(period, "period-start", {"iso-date": f.period_start.isoformat()})
                etree.SubElement(period, "period-end", {"iso-date": f.period_end.isoformat()})
                for tag, value, note in (("target", f.target_value, ""), ("actual", f.actual_value, f.comment)):
                    element = etree.SubElement(period, tag, {"value": value} if numeric else {})
                    text = value if not numeric else note
                    if text:
                        _narrative(etree.SubElement(element, "comment"), text)


def with_results(xml: bytes, facts) -> bytes:
    """The IATI activities file with each grant's results (all its reported periods) added to its activity."""
    if not facts:
        return xml
    by_identifier: OrderedDict = OrderedDict()
    for f in facts:
        by_identifier.setdefault(activity_identifier(f.reference), []).append(f)
    root = etree.fromstring(xml)
    for activity in root.iter("iati-activity"):
        identifier = activity.findtext("iati-identifier")
        if identifier in by_identifier:
            _result_elements(activity, by_identifier[identifier])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
