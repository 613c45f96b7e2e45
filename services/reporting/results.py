"""What the reporting service's operations return (commands.py, domain/budget_report.py, domain/reconciliation.py),
as schemas for the gateway's document."""

from marshmallow import fields

from services.common.service.results import DecimalText, Many, MoneyText, Result

COUNTS = fields.Dict(keys=fields.String(), values=fields.Integer())


def Section(description: str) -> fields.List:
    """A section beside the budget figures: one object per row, keyed by its column titles in snake case, money as
    decimal strings."""
    return fields.List(fields.Dict(keys=fields.String()), metadata={"description": description})


class WindowTotals(Result):
    window = fields.String(required=True)
    name = fields.String(allow_none=True)
    allocation_eur = MoneyText()
    committed_eur = MoneyText(required=True)
    disbursed_eur = MoneyText(required=True)
    available_eur = MoneyText()
    grants = fields.Integer()
    decommitted_eur = MoneyText()


class CountryTotals(Result):
    country = fields.String(required=True)
    name = fields.String(allow_none=True)
    committed_eur = MoneyText(required=True)
    disbursed_eur = MoneyText(required=True)
    grants = fields.Integer()
    decommitted_eur = MoneyText()


class Totals(Result):
    envelope_eur = MoneyText(required=True)
    committed_eur = MoneyText(required=True)
    disbursed_eur = MoneyText(required=True)
    remaining_eur = MoneyText(required=True)
    windows = Many(WindowTotals)
    countries = Many(CountryTotals)


class Period(Result):
    start = fields.Date(allow_none=True)
    end = fields.Date(allow_none=True)


class YearTotals(Result):
    year = fields.Integer(required=True)
    committed_eur = MoneyText()
    disbursed_eur = MoneyText()
    decommitted_eur = MoneyText()


class MonthTotals(Result):
    month = fields.String(required=True)
    committed_eur = MoneyText()
    disbursed_eur = MoneyText()
    decommitted_eur = MoneyText()


class ApplicantTypeTotals(Result):
    applicant_type = fields.String(allow_none=True)
    committed_eur = MoneyText()
    disbursed_eur = MoneyText()
    grants = fields.Integer()
    decommitted_eur = MoneyText()


class HeadingTotals(Result):
    heading = fields.String(required=True)
    label = fields.String(allow_none=True)
    budgeted_eur = MoneyText()
    ec_contribution_eur = MoneyText()
    co_financing_eur = MoneyText()
    reported_expenditure_eur = MoneyText()


class GrantLine(Result):
    grant_id = fields.String(required=True)
    reference = fields.String(required=True)
    title = fields.String(allow_none=True)
    window = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    lead_organisation = fields.String(allow_none=True)
    applicant_type = fields.String(allow_none=True)
    awarded_at = fields.DateTime(allow_none=True)
    contracted = fields.Boolean()
    committed_eur = MoneyText()
    paid_eur = MoneyText()
    outstanding_eur = MoneyText()
    decommitted_eur = MoneyText()
    closed = fields.Boolean()
    terminated = fields.Boolean()
    total_eligible_eur = MoneyText()
    co_financing_eur = MoneyText()


class Unmatched(Result):
    tranches = fields.Integer()
    expenditures = fields.Integer()
    decommitments = fields.Integer()


class File(Result):
    """A report or export as a file: text as `content`, bytes as `content_base64`."""

    format = fields.String(required=True)
    filename = fields.String(required=True)
    mimetype = fields.String(required=True)
    content = fields.String(metadata={"description": "the file's text"})
    content_base64 = fields.String(metadata={"description": "the file's bytes, base64"})


class BudgetReportAnswer(File):
    """format json: the report itself (the keys below) with format, filename and mimetype; any other format: the
    file (content or content_base64)."""

    programme_id = fields.String()
    programme_name = fields.String(allow_none=True)
    budget_line = fields.String(allow_none=True)
    currency = fields.String()
    as_of = fields.Date(allow_none=True)
    programme_period = fields.Nested(Period)
    envelope_eur = MoneyText()
    committed_eur = MoneyText()
    contracted_eur = MoneyText()
    disbursed_eur = MoneyText()
    remaining_eur = MoneyText()
    decommitted_eur = MoneyText()
    reported_expenditure_eur = MoneyText()
    absorption_rate = DecimalText("disbursed over committed")
    windows = Many(WindowTotals)
    countries = Many(CountryTotals)
    years = Many(YearTotals)
    months = Many(MonthTotals)
    applicant_types = Many(ApplicantTypeTotals)
    headings = Many(HeadingTotals)
    counts = COUNTS
    grants = Many(GrantLine)
    recovered_eur = MoneyText()
    payments_requested_unpaid_eur = MoneyText()
    declined_grants = fields.Integer()
    terminated_grants = fields.Integer()
    amended_grants = fields.Integer()
    unmatched_facts = fields.Nested(Unmatched)
    expenditure_lines = Section("the expenditure lines of accepted reports in their currencies (exports/lines.py)")
    results = Section("results against the logframes, per grant and indicator (exports/results.py)")
    results_totals = Section("results per window and country (exports/results.py)")


class GrantLinesPage(Result):
    grants = Many(GrantLine)
    next = fields.String(required=True, allow_none=True, metadata={"description": "the next page's cursor (`after`)"})


class IatiExport(File):
    activities = fields.Integer(required=True)
    commitments_eur = MoneyText()
    disbursements_eur = MoneyText()
    committed_eur = MoneyText()
    disbursed_eur = MoneyText()
    schema = fields.String()
    valid = fields.Boolean()


class Giving360Export(File):
    grants = fields.Integer(required=True)
    committed_eur = MoneyText()
    disbursed_eur = MoneyText()


class StoredReport(Result):
    report_id = fields.String(required=True)
    kind = fields.String(required=True)
    period = fields.String(required=True)
    as_of = fields.Date(allow_none=True)
    format = fields.String()
    filename = fields.String()
    mimetype = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    generated_at = fields.DateTime()
    generated_by = fields.String(allow_none=True)


class GeneratedReport(StoredReport):
    created = fields.Boolean(required=True, metadata={"description": "false: the period's report already existed"})


class StoredReportWithContent(StoredReport):
    content_base64 = fields.String(required=True)


class Difference(Result):
    grant_id = fields.String(required=True)
    reference = fields.String(allow_none=True)
    kind = fields.String(required=True)
    reporting_eur = MoneyText(allow_none=True)
    grants_eur = MoneyText(allow_none=True)
    difference_eur = MoneyText(allow_none=True)


class Reconciliation(Result):
    checked_at = fields.DateTime(required=True)
    grants_compared = fields.Integer(required=True)
    clean = fields.Boolean(required=True)
    differences = Many(Difference)
    totals = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=MoneyText()),
        metadata={"description": "reporting | grants -> committed_eur, paid_eur, decommitted_eur"},
    )


class Rebuilt(Result):
    events_replayed = fields.Integer(required=True)


TOTALS = Totals()
BUDGET_REPORT = BudgetReportAnswer()
GRANT_LINES = GrantLinesPage()
IATI_EXPORT = IatiExport()
GIVING360_EXPORT = Giving360Export()
GENERATED_REPORT = GeneratedReport()
REPORTS = StoredReport(many=True)
REPORT = StoredReportWithContent()
RECONCILIATION = Reconciliation()
REBUILT = Rebuilt()
