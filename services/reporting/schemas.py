"""RPC input schemas of the reporting service."""

from marshmallow import RAISE, Schema, fields, validate

from services.common.values.fields import Text

from .domain.periods import KINDS

FORMATS = ("json", "table", "csv", "xlsx")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class Programme(Strict):
    programme_id = Text(60, load_default=None)


class ProgrammeAsOf(Programme):
    as_of = fields.Date(load_default=None)


class BudgetReport(ProgrammeAsOf):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    grants = fields.Boolean(
        load_default=True,
        metadata={
            "description": "JSON only: include every grant line (false: the totals and breakdowns; page the lines "
            "with grant_lines)"
        },
    )


class GrantLines(ProgrammeAsOf):
    after = Text(400, load_default=None, metadata={"description": "the `next` cursor of the previous page"})
    limit = fields.Integer(load_default=500, strict=True, validate=validate.Range(min=1, max=5000))


class ListReports(Strict):
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    limit = fields.Integer(load_default=100, strict=True, validate=validate.Range(min=1, max=1000))


class ReportId(Strict):
    report_id = Text(60, required=True)


class GenerateReport(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    period = Text(40, required=True)
