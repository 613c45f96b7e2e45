"""Bulk import of proposals from CSV or XLSX: validate every row, then submit all — or nothing.

One row is one proposal. Columns (header names, any order; empty cells are left out):
  window, target_country, title, summary, duration_months,
  total_eligible_cost_eur, ec_amount_requested_eur, co_financing_eur,
  budget_<heading> for each Annex III heading (budget_human_resources, budget_travel, ...),
  lead_name, lead_type, lead_country, lead_registration_number, lead_email, lead_language,
  partner1_name, partner1_type, ... partner1_language, partner2_..., (as many partners as needed),
  logframe (the outcomes and outputs with their indicators, as JSON: see docs/api.md),
  idempotency_key (optional).
Each row is checked with the calls service's own input schema (services/calls/schemas.py) and its eligibility
rules (services/calls/domain) on the call and programme as the service describes them, before anything is sent;
every problem of every row is reported with its row number and field, whatever its kind (a malformed value, an
unknown code, a rule). Only when every row passes are the rows submitted.
A row's idempotency key is derived from the call, the file's name and the row's content (unless the file gives
one), so running the same import again finds the proposals already submitted instead of duplicating them — and
says so ("already submitted, nothing new").
"""

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from services.common.values.errors import Conflict, InvalidInput, JmdiError, NotFound, _flatten
from services.common.values.inert import formula_like, inert_text, text_cell

from . import failures
from .failures import UsageProblem

APPLICANT_FIELDS = ("name", "type", "country", "registration_number", "email", "language")
PARTNER = re.compile(r"^partner(\d+)_(\w+)$")
INTEGER_FIELDS = {"duration_months"}


@dataclass
class ImportResult:
    rows: int = 0
    submitted: list = field(default_factory=list)  # new proposals: {"row", "reference", "proposal_id"}
    already: list = field(default_factory=list)  # rows this import had submitted before (same key, same content)
    errors: list = field(default_factory=list)  # {"row", "field", "message"}
    checked_only: bool = False
    stage: str = "validation"  # where errors were found: validation | submission

    @property
    def exit_code(self) -> int:
        if not self.errors:
            return failures.OK
        codes = {e.get("code", failures.INVALID_INPUT) for e in self.errors}
        return max(codes) if codes - {failures.INVALID_INPUT} else failures.INVALID_INPUT

    def summary(self) -> dict:
        return {
            "rows": self.rows,
            "valid": self.rows - len({e["row"] for e in self.errors}),
            "submitted": len(self.submitted),
            "already_submitted": len(self.already),
            "errors": len(self.errors),
            "outcome": self.outcome,
        }

    @property
    def outcome(self) -> str:
        if self.checked_only and not self.errors:
            return "checked, nothing submitted"
        if self.errors and self.stage == "validation":
            return "nothing submitted: fix the rows listed"
        if self.errors:
            return "some rows were refused; rerun after fixing them (submitted rows are not repeated)"
        if not self.submitted:
            return "already submitted, nothing new"
        if self.already:
            return f"{len(self.submitted)} new proposal(s) submitted; the other rows were already submitted"
        return "all rows submitted"


# --- reading ------------------------------------------------------------------------------------------------------
def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        # spreadsheet numbers: keep the decimal digits a person typed, never a binary float in money
        value = format(Decimal(repr(value)), "f") if value != int(value) else str(int(value))
    text = str(value).strip()
    if text.startswith("'") and formula_like(
        text[1:]
    ):  # written inert (services/common/values/inert.py): read as typed
        text = text[1:]
    return text or None


def read_rows(path: Path) -> list[dict]:
    """The file's rows as {column: text}, with header names lower-cased."""
    if not path.exists():
        raise UsageProblem(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
            raise UsageProblem(f"{path} is not a readable XLSX workbook: {exc}") from None
        values = list(sheet.iter_rows(values_only=True))
    elif suffix in (".csv", ".txt"):
        text = path.read_text(encoding="utf-8-sig")
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
        # quoted cells (a logframe's JSON) follow the CSV standard whatever the header line let the sniffer guess
        values = list(csv.reader(io.StringIO(text), dialect, quotechar='"', doublequote=True))
    else:
        raise UsageProblem(f"{path}: expected a .csv or .xlsx file")
    if not values:
        raise UsageProblem(f"{path} is empty")
    header = [(_cell(h) or "").lower() for h in values[0]]
    rows = []
    for cells in values[1:]:
        row = {h: _cell(c) for h, c in zip(header, cells) if h}
        if any(v is not None for v in row.values()):
            rows.append(row)
    return rows


# --- shaping ------------------------------------------------------------------------------------------------------
def row_payload(row: dict, call_id: str) -> dict:
    """One row as submit_proposal's arguments (values stay text; the schema judges them)."""
    payload: dict[str, object] = {"call_id": call_id}
    budget: dict[str, str] = {}
    applicants: dict[int, dict[str, str]] = {}
    for column, value in row.items():
        if value is None:
            continue
        if column.startswith("budget_"):
            budget[column[len("budget_") :]] = value
        elif column.startswith("lead_"):
            applicants.setdefault(0, {"role": "lead"})[column[len("lead_") :]] = value
        elif (match := PARTNER.match(column)) is not None:
            applicants.setdefault(int(match.group(1)), {"role": "co_applicant"})[match.group(2)] = value
        elif column in INTEGER_FIELDS:
            payload[column] = int(value) if re.fullmatch(r"-?\d+", value) else value
        elif column == "logframe":
            payload[column] = _json_cell(value)
        else:
            payload[column] = value
    if budget:
        payload["budget"] = budget
    if applicants:
        payload["applicants"] = [applicants[n] for n in sorted(applicants)]
    return payload


def _json_cell(value: str):
    """The logframe column holds the logframe as JSON (the schema then judges its shape)."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def idempotency_key(call_id: str, path: Path, payload: dict) -> str:
    canonical = json.dumps({k: v for k, v in payload.items() if k != "idempotency_key"}, sort_keys=True)
    digest = hashlib.sha256(f"{call_id}\n{path.name}\n{canonical}".encode()).hexdigest()[:32]
    return f"import-{digest}"


# --- checking -----------------------------------------------------------------------------------------------------
def schema_errors(payload: dict) -> dict:
    """The calls service's own input validation, run here: {field: messages}."""
    from marshmallow import ValidationError

    from services.calls.schemas import SubmitProposal

    try:
        SubmitProposal().load(payload)
    except ValidationError as exc:
        return _flatten(exc.messages)
    return {}


def call_errors(payload: dict, call: dict | None, programme: dict | None) -> dict:
    """The call's own limits that a row can be checked against before submission."""
    errors = {}
    if call:
        windows = {w.get("window") or w.get("code") for w in call.get("windows") or []}
        if windows and payload.get("window") not in windows:
            errors["window"] = [
                f"not a window of call {call.get('call_id') or call.get('id')}: "
                f"{', '.join(sorted(w for w in windows if w))}"
            ]
        amount = _decimal(payload.get("ec_amount_requested_eur"))
        low, high = _decimal(call.get("min_grant_eur")), _decimal(call.get("max_grant_eur"))
        if amount is not None and low is not None and high is not None and not low <= amount <= high:
            errors["ec_amount_requested_eur"] = [f"{amount} is outside the call's grant limits {low}–{high}"]
    if programme and programme.get("eligible_countries"):
        if payload.get("target_country") not in programme["eligible_countries"]:
            errors["target_country"] = [f"{payload.get('target_country')} is not an eligible country"]
    return errors


def eligibility_errors(payload: dict, call: dict | None, programme: dict | None) -> dict | None:
    """The calls service's own eligibility rules (services/calls/domain), run here on the call and programme the
    service described: {field: messages}. None when they cannot be rebuilt here (then call_errors is used)."""
    if not call or not programme:
        return None
    from datetime import datetime, timezone

    from services.calls.domain import call_from_dict, check_eligibility, programme_from_dict
    from services.calls.repository import PROPOSAL_FIELDS, api_field, domain_proposal

    try:
        rules = call_from_dict(
            {
                **{
                    k: v
                    for k, v in call.items()
                    if k not in ("call_id", "windows", "min_grant_eur", "max_grant_eur", "evaluated_at", "proposals")
                },
                "id": call["call_id"],
                "min_grant": call["min_grant_eur"],
                "max_grant": call["max_grant_eur"],
                "windows": [{"code": w["window"], "allocation": w["allocation_eur"]} for w in call["windows"]],
            }
        )
        programme_rules = programme_from_dict(
            {k: v for k, v in programme.items() if k not in ("version", "updated_at", "created")}
        )
    except (JmdiError, KeyError, TypeError, ValueError):
        return None  # another version of the service: its own check at submission still holds
    proposal = domain_proposal(payload, "import-check")
    errors: dict[str, list[str]] = {}
    for violation in check_eligibility(rules, programme_rules, proposal, datetime.now(timezone.utc)):
        errors.setdefault(api_field(violation.field, PROPOSAL_FIELDS), []).append(
            f"{violation.rule}: {violation.message}"
        )
    return errors


def _decimal(value):
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _call_context(connection, call_id: str):
    """The call and its programme, when the service can tell (the rows are still checked without them)."""
    from services.common.values.problems import SystemFailure

    unavailable = (JmdiError, SystemFailure)
    try:
        call = connection.call("calls", "get_call", {"call_id": call_id})
    except NotFound:
        raise
    except unavailable:
        return None, None
    programme = None
    if call.get("programme_id"):
        try:
            programme = connection.call("calls", "get_programme", {"programme_id": call["programme_id"]})
        except unavailable:
            programme = None
    return call, programme


def problems_of(exc: JmdiError) -> dict:
    """{field: messages} of a refusal, whatever its kind: input errors by field, each rule a Conflict lists by
    the field it names (else by the rule), a missing thing by what is missing."""
    if isinstance(exc, InvalidInput):
        return _flatten(exc.errors)
    if isinstance(exc, Conflict):
        listed: dict[str, list[str]] = {}
        for detail in exc.details:
            if isinstance(detail, dict) and (detail.get("rule") or detail.get("message")):
                rule = detail.get("rule") or exc.rule
                listed.setdefault(detail.get("field") or rule, []).append(
                    f"{rule}: {detail.get('message') or exc.reason}"
                )
        return listed or {exc.rule: [exc.reason]}
    if isinstance(exc, NotFound):
        return {"(row)": [str(exc)]}
    return {"(row)": [str(exc)]}


def _remote_check(connection, payload: dict) -> dict | None:
    """The service's validation-only path (submit with dry_run), when it offers one: {field: messages}."""
    try:
        connection.call("calls", "submit_proposal", {**payload, "dry_run": True})
    except InvalidInput as exc:
        flat = _flatten(exc.errors)
        if set(flat) == {"dry_run"}:
            return None  # this service version has no dry run
        return flat
    except Conflict as exc:
        return problems_of(exc)
    return {}


def import_proposals(
    connection, path: Path, call_id: str, check_only: bool = False, quiet: bool = False, remote_check: bool = False
) -> ImportResult:
    from rich.progress import Progress

    from .output import _console

    rows = read_rows(Path(path))
    result = ImportResult(rows=len(rows), checked_only=check_only)
    call, programme = _call_context(connection, call_id)
    payloads: list[tuple[int, dict]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        payload = row_payload(row, call_id)
        payload.setdefault("idempotency_key", idempotency_key(call_id, Path(path), payload))
        if payload["idempotency_key"] in seen:
            result.errors.append(
                {"row": number, "field": "(row)", "message": f"duplicates row {seen[payload['idempotency_key']]}"}
            )
        seen.setdefault(payload["idempotency_key"], number)
        problems = check_row(connection, payload, call, programme, remote_check)
        for name, messages in problems.items():
            result.errors.append({"row": number, "field": name, "message": failures._join(messages)})
        payloads.append((number, payload))
    if result.errors or check_only:
        return result

    result.stage = "submission"
    with Progress(console=_console(stderr=True), transient=True, disable=quiet) as progress:
        task = progress.add_task(f"submitting to {call_id}", total=len(payloads))
        for number, payload in payloads:
            try:
                proposal = connection.call("calls", "submit_proposal", payload)
                entry = {
                    "row": number,
                    "reference": proposal.get("reference"),
                    "proposal_id": proposal.get("proposal_id"),
                }
                (result.submitted if proposal.get("created", True) else result.already).append(entry)
            except (InvalidInput, Conflict, NotFound) as exc:
                code = failures.describe(exc)[0]
                result.errors += [
                    {"row": number, "field": name, "message": failures._join(messages), "code": code}
                    for name, messages in problems_of(exc).items()
                ]
            progress.advance(task)
    return result


def check_row(connection, payload: dict, call, programme, remote_check: bool) -> dict:
    """{field: messages} of one row: the service's input schema, then its eligibility rules on the call. A
    problem of any kind — even one the local rules raise instead of listing (an unknown country code) — is this
    row's problem, never the end of the import."""
    try:
        problems = schema_errors(payload)
        if not problems:
            checked = eligibility_errors(payload, call, programme)
            problems = checked if checked is not None else call_errors(payload, call, programme)
        if not problems and remote_check:
            problems = _remote_check(connection, payload) or {}
    except JmdiError as exc:
        problems = problems_of(exc)
    return problems


def flatten(payload: dict) -> dict:
    """A submit_proposal payload as one import row (the inverse of row_payload): for templates and tests."""
    row = {k: v for k, v in payload.items() if k not in ("call_id", "budget", "applicants", "logframe")}
    if payload.get("logframe") is not None:
        row["logframe"] = json.dumps(payload["logframe"], ensure_ascii=False)
    for heading, amount in (payload.get("budget") or {}).items():
        row[f"budget_{heading}"] = amount
    partners = 0
    for applicant in payload.get("applicants") or []:
        if applicant.get("role") == "lead":
            prefix = "lead_"
        else:
            partners += 1
            prefix = f"partner{partners}_"
        row.update({prefix + key: applicant.get(key) for key in APPLICANT_FIELDS})
    return {k: (str(v) if v is not None else None) for k, v in row.items()}


def write_rows(rows: list[dict], path: Path) -> None:
    """Rows to CSV or XLSX (by suffix), columns in first-seen order."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        for r, values in enumerate([columns] + [[row.get(c) for c in columns] for row in rows], start=1):
            for c, value in enumerate(values, start=1):
                text_cell(sheet.cell(row=r, column=c), value)  # never a formula, whatever the data says
        book.save(path)
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows([{k: inert_text(v) for k, v in row.items()} for row in rows])
