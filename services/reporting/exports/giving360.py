"""360Giving JSON of the awarded grants: {"grants": [...]}, one grant per awarded grant of the report.

Amounts: the 360Giving standard types amountAwarded and amountDisbursed as JSON numbers, so they are written
as numbers, not strings. They are written EXACTLY: `dumps` writes each Decimal as its own digits
("150000.00" becomes the JSON number 150000.00), never through a binary float, so a reader that parses numbers
as decimals (Python: json.loads(text, parse_float=Decimal)) gets back the cents exactly. (The standard
library's json cannot write a Decimal; going through float would be exact only by luck of printing.)

Identifiers (parameters): grant ids are "<prefix><proposal reference>" with prefix "360G-JMDI-" (a 360Giving
publisher prefix; a registered one replaces it); the recipient organisation has no registered org-id here,
so it gets a generated "360G-JMDI-ORG-<slug of its name>" id as the standard allows; the funding organisation
is the European Commission, "XI-IATI-EC_INTPA" (as in the IATI file). `amountDisbursed` is the sum of the
grant's tranches counted by the report; beneficiaryLocation is the grant's country.

`amountAwarded` is what the grant commits: the award less what it gave back at closure (the report's
committed). A grant that gave money back also lists its commitmentTransaction entries — the award, then each
decommitment as a negative value on its date — which add up to amountAwarded, as the standard asks.
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal

from services.common.values.inert import clean_text
from services.common.values.money import money_str

from ..domain.budget_report import BudgetReport, country_name

GRANT_PREFIX = "360G-JMDI-"
EC_ORG = {"id": "XI-IATI-EC_INTPA", "name": "European Commission"}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").upper() or "UNKNOWN"


def to_360giving(report: BudgetReport, *, prefix: str = GRANT_PREFIX, funder: dict | None = None) -> dict:
    """The package as Python values: amounts are Decimal (two places), dates ISO strings. Use `dumps`."""
    funder = dict(funder or EC_ORG)
    grants = []
    for g in report.grants:
        window = report.window_name(g.window)
        grant = {
            "id": f"{prefix}{_slug(g.reference)}",
            "title": g.title,
            "description": (
                f"Grant {g.reference} of the {report.programme_name} under the EC budget line "
                f'"{report.budget_line}", call window "{window}", in {country_name(g.country)}.'
            ),
            "currency": report.currency,
            "amountAwarded": g.committed,
            "amountDisbursed": g.paid,
            "awardDate": g.awarded_at.isoformat() if g.awarded_at else None,
            "recipientOrganization": [{"id": f"{prefix}ORG-{_slug(g.lead_organisation)}", "name": g.lead_organisation}],
            "fundingOrganization": [funder],
            "grantProgramme": [{"code": g.window, "title": window}],
            "beneficiaryLocation": [{"countryCode": g.country, "name": country_name(g.country)}],
        }
        if g.decommitments and g.awarded_at:
            grant["commitmentTransaction"] = [
                {
                    "id": f"{grant['id']}-award",
                    "transactionDate": g.awarded_at.isoformat(),
                    "value": g.awarded,
                    "currency": report.currency,
                    "description": "Grant award",
                }
            ] + [
                {
                    "id": f"{grant['id']}-decommitment-{n}",
                    "transactionDate": d.decommitted_on.isoformat(),
                    "value": -d.amount,
                    "currency": report.currency,
                    "description": "Unspent balance decommitted at closure",
                }
                for n, d in enumerate(g.decommitments, start=1)
            ]
        if grant["awardDate"] is None:
            del grant["awardDate"]
        if report.as_of:
            grant["dateModified"] = f"{report.as_of.isoformat()}T00:00:00+00:00"
        grants.append(grant)
    return {"grants": grants}


def _encode(value, indent: str | None, level: int) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a JSON number must be finite")
        exponent = value.as_tuple().exponent
        return money_str(value) if isinstance(exponent, int) and exponent >= -2 else str(value)
    if isinstance(value, float):
        raise TypeError("floats are not written: use Decimal")
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{json.dumps(str(k), ensure_ascii=False)}: {_encode(v, indent, level + 1)}" for k, v in value.items()]
        return _join(items, "{", "}", indent, level)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return _join([_encode(v, indent, level + 1) for v in value], "[", "]", indent, level)
    return json.dumps(clean_text(value), ensure_ascii=False)  # str (no control characters), int, bool, None


def _join(items: list[str], open_: str, close: str, indent: str | None, level: int) -> str:
    if indent is None:
        return open_ + ", ".join(items) + close
    pad, inner = indent * level, indent * (level + 1)
    return open_ + "\n" + ",\n".join(inner + item for item in items) + "\n" + pad + close


def dumps(data, *, indent: int | None = 2) -> str:
    """JSON text with every Decimal written exactly as a JSON number (money with its two places)."""
    return _encode(data, None if indent is None else " " * indent, 0)


def giving360_json(report: BudgetReport, **kwargs) -> str:
    return dumps(to_360giving(report, **kwargs))


def loads(text: str):
    """Read such a file back with numbers as Decimal (exact)."""
    return json.loads(text, parse_float=Decimal)
