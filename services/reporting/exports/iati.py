"""IATI 2.03 activity file of the programme's grants (lxml), and its validation against the official schema.

One <iati-activity> per grant. Choices (each a parameter of `build_iati`, with these defaults):
- reporting-org: UNDP, ref "XM-DAC-41114" (its OECD DAC code, the ref UNDP publishes under), type 40
  (multilateral). UNDP Brussels administers the programme and contracts the grants, so it is the publisher.
- iati-identifier: "<reporting-org ref>-JMDI-<proposal reference>", e.g. "XM-DAC-41114-JMDI-2008-0001"; the
  identifier must start with the reporting org's ref. Characters IATI forbids in identifiers (anything but
  letters, digits, "-", "_" and ".") are replaced with "-".
- funding participating-org (role 1): the European Commission, ref "XI-IATI-EC_INTPA" (DG International
  Partnerships, the successor of EuropeAid/DEVCO that managed the thematic programme "Migration and Asylum";
  its org-id in the IATI registry's own list), type 15 (other public sector). The older DAC-based ref
  "XM-DAC-918-3" can be passed instead.
- implementing participating-org (role 4): the grantee's lead organisation (no registered org-id: name only),
  with an IATI OrganisationType derived from the applicant type.
- activity-status: 1 pipeline (awarded, contract not signed), 2 implementation (contracted), 3 finalisation
  (fully paid, or terminated early and awaiting its final report and closure), 4 closed (the grant was closed). activity-date: type 1 planned start = award date; type 2 actual start = first tranche's value
  date, when there is one.
- recipient-country: the grant's country (100%). sector: DAC 5-digit (vocabulary 1) 15190 "Facilitation of
  orderly, safe, regular and responsible migration and mobility".
- budget: one original (type 1), committed (status 2) budget of the award (as amended, before any
  decommitment), starting on the award date. IATI's
  ruleset (not the schema) wants budget periods of at most a year; the report has no per-year plan, so the
  period is the first 12 months. transaction: type 2 (outgoing commitment) for the award on its date, a
  negative type 2 (a commitment correction) for each decommitment on its date, type 3 (disbursement) for each
  tranche on its value date, UNDP to the grantee. default-currency EUR; values are the report's Decimals
  written exactly ("150000.00", "-15000.00"), with value-date = transaction date.
So the file's commitments sum to report.committed (awards less decommitments) and its disbursements to
report.disbursed, to the cent.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from lxml import etree

from services.common.values.inert import clean_text

from services.common.values.money import money_str

from ..domain.budget_report import BudgetReport, GrantLine, country_name

IATI_VERSION = "2.03"
UNDP_REF = "XM-DAC-41114"
UNDP_NAME = "United Nations Development Programme (UNDP)"
EC_REF = "XI-IATI-EC_INTPA"
EC_NAME = "European Commission"
SECTOR_MIGRATION = "15190"
SECTOR_NAME = "Facilitation of orderly, safe, regular and responsible migration and mobility"
XSD_FILE = "iati-activities-schema.xsd"

# applicant type -> IATI OrganisationType code (10 government, 11 local government, 21/22/24 NGOs,
# 80 academic/research, 90 other)
ORGANISATION_TYPES = {
    "ngo": "22",
    "migrant_association": "22",
    "local_authority": "11",
    "research_institution": "80",
    "international_ngo": "21",
    "government": "10",
}
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def activity_identifier(reference: str, prefix: str = f"{UNDP_REF}-JMDI-") -> str:
    return prefix + _BAD_ID_CHARS.sub("-", reference)


def _narrative(parent, text: str, lang: str | None = None):
    el = etree.SubElement(parent, "narrative")
    if lang:
        el.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
    el.text = clean_text(text)  # lxml refuses control characters: one bad title must not stop the file
    return el


def _value(parent, amount: Decimal, value_date: date):
    el = etree.SubElement(parent, "value", {"value-date": value_date.isoformat()})
    el.text = money_str(amount)
    return el


def _status(grant: GrantLine) -> str:
    if grant.closed:
        return "4"
    if grant.terminated or (grant.committed > 0 and grant.paid >= grant.committed):
        return "3"
    return "2" if grant.contracted else "1"


def _activity(
    root,
    report: BudgetReport,
    grant: GrantLine,
    *,
    identifier_prefix: str,
    reporting_ref: str,
    reporting_name: str,
    funder_ref: str,
    funder_name: str,
    funder_type: str,
    last_updated: str,
) -> None:
    act = etree.SubElement(
        root,
        "iati-activity",
        {
            "{http://www.w3.org/XML/1998/namespace}lang": "en",
            "default-currency": report.currency,
            "last-updated-datetime": last_updated,
        },
    )
    etree.SubElement(act, "iati-identifier").text = activity_identifier(grant.reference, identifier_prefix)
    rep = etree.SubElement(act, "reporting-org", {"ref": reporting_ref, "type": "40"})
    _narrative(rep, reporting_name)
    _narrative(etree.SubElement(act, "title"), grant.title)
    window = report.window_name(grant.window)
    desc = etree.SubElement(act, "description", {"type": "1"})
    _narrative(
        desc,
        f"Grant {grant.reference} of the {report.programme_name} ({report.programme_id}), call "
        f'window "{window}", in {country_name(grant.country)}; lead organisation '
        f"{grant.lead_organisation}. Funded by the {funder_name} under its thematic budget line "
        f'"{report.budget_line}".',
    )
    funder = etree.SubElement(act, "participating-org", {"ref": funder_ref, "type": funder_type, "role": "1"})
    _narrative(funder, funder_name)
    extending = etree.SubElement(act, "participating-org", {"ref": reporting_ref, "type": "40", "role": "3"})
    _narrative(extending, reporting_name)
    grantee = etree.SubElement(
        act, "participating-org", {"type": ORGANISATION_TYPES.get(grant.applicant_type, "90"), "role": "4"}
    )
    _narrative(grantee, grant.lead_organisation or "Grantee")
    etree.SubElement(act, "activity-status", {"code": _status(grant)})
    if grant.awarded_at:
        etree.SubElement(act, "activity-date", {"type": "1", "iso-date": grant.awarded_at.isoformat()})
    if grant.payments:
        etree.SubElement(act, "activity-date", {"type": "2", "iso-date": grant.payments[0].value_date.isoformat()})
    if not grant.awarded_at and not grant.payments:
        raise ValueError(f"grant {grant.grant_id} has no date for its activity-date")
    country = etree.SubElement(act, "recipient-country", {"code": grant.country, "percentage": "100"})
    _narrative(country, country_name(grant.country))
    sector = etree.SubElement(act, "sector", {"vocabulary": "1", "code": SECTOR_MIGRATION, "percentage": "100"})
    _narrative(sector, SECTOR_NAME)
    etree.SubElement(act, "default-flow-type", {"code": "10"})  # ODA
    etree.SubElement(act, "default-finance-type", {"code": "110"})  # standard grant
    if grant.awarded_at:
        budget = etree.SubElement(act, "budget", {"type": "1", "status": "2"})
        etree.SubElement(budget, "period-start", {"iso-date": grant.awarded_at.isoformat()})
        end = (
            grant.awarded_at.replace(year=grant.awarded_at.year + 1)
            if not (grant.awarded_at.month == 2 and grant.awarded_at.day == 29)
            else grant.awarded_at + timedelta(days=365)
        )
        etree.SubElement(budget, "period-end", {"iso-date": (end - timedelta(days=1)).isoformat()})
        _value(budget, grant.awarded, grant.awarded_at)

    def transaction(code: str, amount: Decimal, when: date, text: str, ref: str | None = None):
        tx = etree.SubElement(act, "transaction", {"ref": ref} if ref else {})
        etree.SubElement(tx, "transaction-type", {"code": code})
        etree.SubElement(tx, "transaction-date", {"iso-date": when.isoformat()})
        _value(tx, amount, when)
        _narrative(etree.SubElement(tx, "description"), text)
        provider = etree.SubElement(tx, "provider-org", {"ref": reporting_ref, "type": "40"})
        _narrative(provider, reporting_name)
        receiver = etree.SubElement(tx, "receiver-org", {"type": ORGANISATION_TYPES.get(grant.applicant_type, "90")})
        _narrative(receiver, grant.lead_organisation or "Grantee")

    transaction(
        "2",
        grant.awarded,
        grant.awarded_at or grant.payments[0].value_date,
        f"Grant award {grant.reference}",
        f"{grant.grant_id}-commitment",
    )
    for n, d in enumerate(grant.decommitments, start=1):
        transaction(
            "2",
            -d.amount,
            d.decommitted_on,
            f"Decommitment of the unspent balance of grant {grant.reference} at its closure",
            f"{grant.grant_id}-decommitment-{n}",
        )
    for p in grant.payments:
        transaction(
            "3",
            p.amount,
            p.value_date,
            f"Tranche {p.tranche_number} of grant {grant.reference}",
            f"{grant.grant_id}-tranche-{p.tranche_number}",
        )


def build_iati(
    report: BudgetReport,
    *,
    generated_at: datetime | None = None,
    identifier_prefix: str = f"{UNDP_REF}-JMDI-",
    reporting_ref: str = UNDP_REF,
    reporting_name: str = UNDP_NAME,
    funder_ref: str = EC_REF,
    funder_name: str = EC_NAME,
    funder_type: str = "15",
) -> bytes:
    """The IATI 2.03 activities file as UTF-8 bytes (with XML declaration). `generated_at` defaults to now
    (UTC); pass it for a reproducible file."""
    if not identifier_prefix.startswith(reporting_ref):
        raise ValueError("an IATI identifier must start with the reporting organisation's ref")
    generated = (generated_at or datetime.now(timezone.utc)).replace(microsecond=0)
    if generated.tzinfo is None:
        generated = generated.replace(tzinfo=timezone.utc)
    stamp = generated.isoformat()
    root = etree.Element("iati-activities", {"version": IATI_VERSION, "generated-datetime": stamp})
    for grant in report.grants:
        _activity(
            root,
            report,
            grant,
            identifier_prefix=identifier_prefix,
            reporting_ref=reporting_ref,
            reporting_name=reporting_name,
            funder_ref=funder_ref,
            funder_name=funder_name,
            funder_type=funder_type,
            last_updated=stamp,
        )
    if not len(root):
        raise ValueError("an IATI activities file needs at least one activity: the report has no grant")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class StandardMissing(FileNotFoundError):
    """A file of the IATI standard (schema, codelist) is not where the configuration says: a set-up problem."""


@lru_cache(maxsize=4)
def _schema(xsd_path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(xsd_path))


def schema_path(standards_dir) -> Path:
    """iati-activities-schema.xsd inside a directory such as services/reporting/standards/iati-2.03."""
    return Path(standards_dir) / XSD_FILE


def require_standards(iati_dir) -> None:
    """The schema and the codelist mapping are where the configuration says (checked before any work)."""
    for needed in (Path(iati_dir) / XSD_FILE, Path(iati_dir) / "codelists" / "mapping.xml"):
        if not needed.is_file():
            raise StandardMissing(f"IATI 2.03 standard file not found at {needed}")


def validate_iati(xml_bytes: bytes, xsd_path) -> list[str]:
    """Errors against the IATI activity schema at `xsd_path` (iati-common.xsd and xml.xsd beside it); []: valid.

    `xsd_path` is the schema file or the directory holding it."""
    path = Path(xsd_path)
    if path.is_dir():
        path = path / XSD_FILE
    if not path.is_file():
        raise StandardMissing(f"IATI schema not found at {path}")
    schema = _schema(str(path.resolve()))
    try:
        doc = etree.fromstring(xml_bytes)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def totals(xml_bytes: bytes) -> dict[str, Decimal]:
    """Sum of transaction values by transaction type code, read back from a file (for reconciliation)."""
    doc = etree.fromstring(xml_bytes)
    out: dict[str, Decimal] = {}
    for tx in doc.iter("transaction"):
        code = tx.find("transaction-type").get("code")
        out[code] = out.get(code, Decimal("0.00")) + Decimal(tx.find("value").text)
    return out


# --- codelists ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _codes(codelist_path: str) -> frozenset[str]:
    return frozenset(code.text.strip() for code in etree.parse(codelist_path).iter("code") if code.text)


@lru_cache(maxsize=4)
def _mappings(mapping_path: str) -> tuple[tuple[str, str, str | None], ...]:
    """(XPath, codelist name, condition or None) of every entry of the standard's mapping.xml."""
    entries = []
    for mapping in etree.parse(mapping_path).iter("mapping"):
        condition = mapping.findtext("condition")
        entries.append(
            (
                mapping.findtext("path").strip(),
                mapping.find("codelist").get("ref"),
                condition.strip() if condition else None,
            )
        )
    return tuple(entries)


def codelist_errors(xml_bytes: bytes, codelists_dir) -> list[str]:
    """Every code of the file checked against the IATI codelists, attribute by attribute as the standard's
    mapping.xml says (with its vocabulary conditions); []: every code is on its list.

    A code whose codelist is not shipped is an error too: the check must not pass by looking at nothing."""
    folder = Path(codelists_dir)
    mapping = folder / "mapping.xml"
    if not mapping.is_file():
        raise StandardMissing(f"IATI codelist mapping not found at {mapping}")
    doc = etree.fromstring(xml_bytes)
    errors = []
    for path, codelist, condition in _mappings(str(mapping.resolve())):
        for value in doc.xpath(path, namespaces={"xml": "http://www.w3.org/XML/1998/namespace"}):
            owner = value.getparent()
            if condition and not owner.xpath(condition):
                continue
            listed = folder / f"{codelist}.xml"
            if not listed.is_file():
                raise StandardMissing(f"IATI codelist {codelist} not found at {listed} (used by {path})")
            code = str(value).strip()
            if code not in _codes(str(listed.resolve())):
                errors.append(f"{path}: {code!r} is not a code of the {codelist} codelist")
    return list(dict.fromkeys(errors))
