"""Use cases of the reporting service: build the EC budget report from the facts and render it; keep the
scheduled EC reports; reconcile with the grants ledger; rebuild the projections."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.common.runtime.config import REPO_ROOT
from services.common.storage.db import UnitOfWork
from services.common.values.errors import Conflict, InvalidInput, NotFound, SetupProblem
from services.common.values.money import money_str

from . import gauges, projections, rebuild_sql, report_sql
from . import views as queries  # the reads
from .domain.budget_report import BudgetReport, ReportError, build_budget_report, grant_line_json, report_to_json
from .exports import csv_export, giving360, iati, lines, results, table, xlsx_export
from .models import ReportFile
from .domain.periods import SCHEDULED_KINDS, PeriodError, last_completed, parse_period
from .domain.reconciliation import compare

IATI_DIR = "iati-2.03"
MIMETYPES = {
    "json": "application/json",
    "table": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "iati": "application/xml",
    "360giving": "application/json",
}
EXTENSIONS = {"json": "json", "table": "txt", "csv": "csv", "xlsx": "xlsx", "iati": "xml", "360giving": "json"}
ZERO = Decimal("0.00")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --- the budget report ----------------------------------------------------------------------------------------


def build_report(
    uow: UnitOfWork, programme_id: str | None, as_of: date | None
) -> tuple[BudgetReport, queries.ReportFacts | report_sql.SqlExtras]:
    """The report and what only the read model knows. On PostgreSQL every total is computed by the database
    and the grant lines are read page by page when iterated (report_sql); on SQLite (`make run`) the facts are
    loaded and aggregated by the pure model (the reference the SQL is tested against)."""
    session = uow.session
    if report_sql.supported(session):
        prog = queries.programme(session, programme_id)
        if prog is None:
            raise NotFound("programme", programme_id or "any")
        counts, pipeline = queries.proposal_counts(session, programme_id, as_of)
        return report_sql.budget_report(session, prog, programme_id, as_of, counts, pipeline)
    return build_report_in_python(uow, programme_id, as_of)


def build_report_in_python(
    uow: UnitOfWork, programme_id: str | None, as_of: date | None
) -> tuple[BudgetReport, queries.ReportFacts]:
    facts = queries.report_facts(uow.session, programme_id, as_of)
    if facts is None:
        raise NotFound("programme", programme_id or "any")
    try:
        report = build_budget_report(
            facts.programme,
            facts.grants,
            facts.tranches,
            facts.expenditures,
            facts.counts,
            as_of=as_of,
            decommitments=facts.decommitments,
        )
    except ReportError as exc:
        raise Conflict("report.inconsistent_facts", str(exc)) from None
    return report, facts


def report_json(report: BudgetReport, facts, grants: bool = True) -> dict:
    """The report model's JSON plus what only the read model knows: the proposal pipeline, recoveries,
    payments requested but not yet paid, declined and terminated grants, and facts that could not be attributed yet.
    Without `grants` the grant lines are left out (the totals report; the lines are paged by grant_lines)."""
    data = report_to_json(report, grants=grants)
    data["counts"].update(facts.pipeline)
    extras = facts.extras
    data.update(
        {
            "recovered_eur": money_str(extras["recovered_eur"]),
            "payments_requested_unpaid_eur": money_str(extras["payments_requested_unpaid_eur"]),
            "declined_grants": extras["declined_grants"],
            "terminated_grants": extras["terminated_grants"],  # ended early (closed or awaiting their final report)
            "amended_grants": extras["amendments"],
            "unmatched_facts": extras["unmatched"],
        }
    )
    return data


def _stem(report: BudgetReport, what: str, as_of: date | None, now: datetime) -> str:
    return f"{report.programme_id.lower()}-{what}-{(as_of or now.date()).isoformat()}"


def extra_sections(uow: UnitOfWork, programme_id: str, as_of: date | None) -> list:
    """The sections beside the budget figures, from the reporting service's own facts: the expenditure lines in
    their currencies (accepted reports), and the results against the logframes (per grant, then per window and
    country)."""
    facts = results.result_facts(uow.session, programme_id, as_of)
    return [
        lines.lines_section(uow.session, programme_id, as_of),
        results.results_section(facts),
        results.totals_section(facts),
    ]


def render(
    report: BudgetReport, facts, fmt: str, produced_on: date | None = None, extra=(), grants: bool = True
) -> bytes | str | dict:
    """The report in one format: a dict (json), text (table, csv) or bytes (xlsx, with the chart).
    `produced_on` dates a report of everything recorded (no as-of date); `extra`: extra_sections()."""
    started = time.perf_counter()
    try:
        if fmt == "json":
            data = report_json(report, facts, grants)
            for section in extra:
                data[section.key] = lines.section_json(section)
            return data
        if fmt == "table":
            return table.render_table(report, grant_rows=None, produced_on=produced_on)
        if fmt == "csv":
            return csv_export.csv_text(report) + "".join(lines.section_csv(section) for section in extra)
        if fmt == "xlsx":
            return xlsx_export.xlsx_bytes(report, produced_on=produced_on, extra_sections=extra)
        raise InvalidInput({"format": [f"unknown format {fmt}"]})
    finally:
        gauges.GENERATION_DURATION.labels(fmt).observe(time.perf_counter() - started)


def file_result(fmt: str, filename: str, content) -> dict:
    """What the CLI writes to a file: text as `content`, bytes as `content_base64`."""
    result = {"format": fmt, "filename": filename, "mimetype": MIMETYPES[fmt]}
    if isinstance(content, bytes):
        result["content_base64"] = base64.b64encode(content).decode("ascii")
    else:
        result["content"] = content
    return result


def budget_report(
    uow: UnitOfWork, programme_id: str | None, as_of: date | None, fmt: str, now: datetime, grants: bool = True
) -> dict:
    """The report in one format; `grants=False` (JSON only): the totals and breakdowns without the grant lines,
    which `grant_lines` pages through."""
    report, facts = build_report(uow, programme_id, as_of)
    filename = f"{_stem(report, 'budget-report', as_of, now)}.{EXTENSIONS[fmt]}"
    content = render(report, facts, fmt, now.date(), extra_sections(uow, report.programme_id, as_of), grants)
    if isinstance(content, dict):  # json
        return {**content, "format": "json", "filename": filename, "mimetype": MIMETYPES["json"]}
    return file_result(fmt, filename, content)


def grant_lines(uow: UnitOfWork, programme_id: str | None, as_of: date | None, after: str | None, limit: int) -> dict:
    """One page of the report's grant lines, in its order (reference, then grant id), after the cursor `after`
    (the `next` of the previous page; None: the first page). `next` is None on the last page."""
    cursor = _parse_cursor(after)
    session = uow.session
    if queries.programme(session, programme_id) is None:
        raise NotFound("programme", programme_id or "any")
    if report_sql.supported(session):
        page = report_sql.grant_page(session, programme_id, as_of, cursor, limit + 1)
    else:
        report, _ = build_report_in_python(uow, programme_id, as_of)
        page = [g for g in report.grants if cursor is None or (g.reference, g.grant_id) > cursor][: limit + 1]
    more = len(page) > limit
    page = page[:limit]
    return {"grants": [grant_line_json(g) for g in page], "next": _cursor(page[-1]) if more and page else None}


def _cursor(line) -> str:
    return base64.urlsafe_b64encode(f"{line.reference}\n{line.grant_id}".encode()).decode("ascii")


def _parse_cursor(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    try:
        reference, grant_id = base64.urlsafe_b64decode(value.encode("ascii")).decode("utf-8").split("\n")
    except (ValueError, UnicodeError):
        raise InvalidInput({"after": ["not a cursor given by the previous page"]}) from None
    return reference, grant_id


def totals(uow: UnitOfWork, programme_id: str | None, as_of: date | None = None) -> dict:
    """The headline figures by window and country (the walking skeleton's contract); zeros before the
    programme is known here."""
    try:
        report, _ = build_report(uow, programme_id, as_of)
    except NotFound:
        return {
            "envelope_eur": ZERO,
            "committed_eur": ZERO,
            "disbursed_eur": ZERO,
            "remaining_eur": ZERO,
            "windows": [],
            "countries": [],
        }
    return {
        "envelope_eur": report.envelope,
        "committed_eur": report.committed,
        "disbursed_eur": report.disbursed,
        "remaining_eur": report.remaining,
        "windows": [
            {
                "window": w.window,
                "allocation_eur": w.allocation,
                "committed_eur": w.committed,
                "disbursed_eur": w.disbursed,
                "grants": w.grants,
            }
            for w in report.by_window
        ],
        "countries": [
            {"country": c.country, "committed_eur": c.committed, "disbursed_eur": c.disbursed, "grants": c.grants}
            for c in report.by_country
        ],
    }


# --- open-data exports ----------------------------------------------------------------------------------------

SHIPPED_STANDARDS = "services/reporting/standards"  # the published files, shipped in the repository


def standards_path(configured: str | None) -> Path:
    """STANDARDS_DIR (relative paths from the repository root), by default the standards shipped with the
    service."""
    path = Path(configured or SHIPPED_STANDARDS)
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def _missing(exc: Exception) -> SetupProblem:
    return SetupProblem(
        str(exc), f"STANDARDS_DIR must name a folder holding {IATI_DIR}/ as shipped in {SHIPPED_STANDARDS}"
    )


def iati_export(
    uow: UnitOfWork, programme_id: str | None, as_of: date | None, standards_dir: Path, now: datetime
) -> dict:
    """The IATI 2.03 activities file, validated against the official schema: an invalid file is never
    returned. Its commitments and disbursements are the budget report's committed and disbursed."""
    iati_dir = standards_dir / IATI_DIR
    try:
        iati.require_standards(iati_dir)
    except iati.StandardMissing as exc:
        raise _missing(exc) from None
    report, _ = build_report(uow, programme_id, as_of)
    started = time.perf_counter()
    try:
        xml = iati.build_iati(report, generated_at=now)
        xml = results.with_results(xml, results.result_facts(uow.session, programme_id, as_of))
    except ValueError as exc:
        raise Conflict("iati.no_activities", str(exc)) from None
    try:
        errors = iati.validate_iati(xml, iati_dir)
        code_errors = [] if errors else iati.codelist_errors(xml, iati_dir / "codelists")
    except iati.StandardMissing as exc:
        raise _missing(exc) from None
    if errors:
        raise Conflict(
            "iati.invalid",
            f"the IATI file does not validate against the 2.03 schema ({len(errors)} error(s))",
            errors[:50],
        )
    if code_errors:
        raise Conflict(
            "iati.codelist",
            f"the IATI file uses codes that are not on their 2.03 codelists ({len(code_errors)})",
            code_errors[:50],
        )
    gauges.GENERATION_DURATION.labels("iati").observe(time.perf_counter() - started)
    sums = iati.totals(xml)
    result = file_result("iati", f"{_stem(report, 'iati-activities', as_of, now)}.xml", xml.decode("utf-8"))
    result.update(
        {
            "activities": len(report.grants),
            "commitments_eur": sums.get("2", ZERO),
            "disbursements_eur": sums.get("3", ZERO),
            "committed_eur": report.committed,
            "disbursed_eur": report.disbursed,
            "schema": f"IATI {iati.IATI_VERSION}",
            "valid": True,
        }
    )
    return result


def giving360_export(uow: UnitOfWork, programme_id: str | None, as_of: date | None, now: datetime) -> dict:
    report, _ = build_report(uow, programme_id, as_of)
    started = time.perf_counter()
    content = giving360.giving360_json(report)
    gauges.GENERATION_DURATION.labels("360giving").observe(time.perf_counter() - started)
    result = file_result("360giving", f"{_stem(report, '360giving', as_of, now)}.json", content)
    result.update({"grants": len(report.grants), "committed_eur": report.committed, "disbursed_eur": report.disbursed})
    return result


# --- the EC reports kept in the archive -----------------------------------------------------------------------

REPORT_FORMAT = "xlsx"  # what the EC contacts receive: the workbook with the chart


def report_view(row: ReportFile, with_content: bool = False) -> dict:
    view = {
        "report_id": row.report_id,
        "kind": row.kind,
        "period": row.period,
        "as_of": row.as_of,
        "format": row.format,
        "filename": row.filename,
        "mimetype": row.mimetype,
        "size": row.size,
        "sha256": row.sha256,
        "generated_at": row.generated_at,
        "generated_by": row.generated_by,
    }
    if with_content:
        view["content_base64"] = base64.b64encode(row.content).decode("ascii")
    return view


def _stored(session, kind: str, period: str) -> ReportFile | None:
    return session.execute(
        select(ReportFile).where(ReportFile.kind == kind, ReportFile.period == period)
    ).scalar_one_or_none()


def generate_report(uow: UnitOfWork, kind: str, label: str, now: datetime, by: str) -> dict:
    """The EC report of a period, made once: asking again for the same (kind, period) returns the stored
    file. A monthly or quarterly period must have ended; an on-demand date must not be in the future."""
    try:
        period = parse_period(kind, label)
    except PeriodError as exc:
        raise InvalidInput({"period": [str(exc)]}) from None
    today = now.date()
    if kind == "on_demand" and period.end > today:
        raise Conflict("report.period_in_future", f"{period.label} is after today ({today})")
    if kind != "on_demand" and not period.has_ended(today):
        raise Conflict("report.period_not_ended", f"the {kind} period {period.label} ends on {period.end}")
    session = uow.session
    existing = _stored(session, kind, period.label)
    if existing is not None:
        return {**report_view(existing), "created": False}
    report, facts = build_report(uow, None, period.end)
    content = render(report, facts, REPORT_FORMAT, now.date(), extra_sections(uow, report.programme_id, period.end))
    assert isinstance(content, bytes)  # the workbook
    row = ReportFile(
        report_id=str(uuid.uuid4()),
        kind=kind,
        period=period.label,
        as_of=period.end,
        format=REPORT_FORMAT,
        filename=f"{report.programme_id.lower()}-ec-report-{kind}-{period.label}.{EXTENSIONS[REPORT_FORMAT]}",
        mimetype=MIMETYPES[REPORT_FORMAT],
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        generated_at=now,
        generated_by=by[:200],
    )
    try:
        with session.begin_nested():  # another replica or request may have stored it meanwhile
            session.add(row)
    except IntegrityError:
        stored = _stored(session, kind, period.label)
        assert stored is not None  # the row whose key the insert met
        return {**report_view(stored), "created": False}
    uow.emit(
        "report_generated",
        {
            "report_id": row.report_id,
            "kind": kind,
            "period": period.label,
            "format": row.format,
            "filename": row.filename,
            "sha256": row.sha256,
            "size": row.size,
            "generated_at": now,
        },
        occurred_at=now,
    )
    return {**report_view(row), "created": True}


def scheduled_reports(uow: UnitOfWork, now: datetime) -> list[dict]:
    """The monthly and quarterly reports of the periods that ended last, once each; nothing before a
    programme is known."""
    if not queries.programme_ids(uow.session):
        return []
    made = []
    for kind in SCHEDULED_KINDS:
        period = last_completed(kind, now.date())
        if _stored(uow.session, kind, period.label) is None:
            made.append(generate_report(uow, kind, period.label, now, "scheduler"))
    return made


def list_reports(uow: UnitOfWork, kind: str | None, limit: int) -> list[dict]:
    query = select(ReportFile).order_by(ReportFile.generated_at.desc(), ReportFile.report_id).limit(limit)
    if kind:
        query = query.where(ReportFile.kind == kind)
    return [report_view(row) for row in uow.session.execute(query).scalars()]


def get_report(uow: UnitOfWork, report_id: str) -> dict:
    row = uow.session.get(ReportFile, report_id)
    if row is None:
        raise NotFound("report", report_id)
    return report_view(row, with_content=True)


# --- reconciliation, rebuild, gauges --------------------------------------------------------------------------


def reconcile(uow: UnitOfWork, programme_id: str | None, ledger: dict, now: datetime) -> dict:
    result = compare(queries.per_grant(uow.session, programme_id), ledger["grants"])
    gauges.RECONCILIATION_DIFFERENCES.set(len(result["differences"]))
    return {"checked_at": now, **result}


def rebuild(uow: UnitOfWork) -> dict:
    # PostgreSQL: set-based, live events held for the final swap only; SQLite: the Python replay
    replayed = rebuild_sql.rebuild(uow.session) if rebuild_sql.supported(uow.session) else projections.rebuild(uow)
    gauges.set_financial(None)  # recomputed from the rebuilt facts at the next scrape
    return {"events_replayed": replayed}


def refresh_gauges(uow: UnitOfWork) -> None:
    """Set the financial gauges from the headline totals when events were applied since the last time."""
    last_seq, _ = queries.last_archived(uow.session)
    if not gauges.stale(last_seq):
        return
    gauges.set_financial(queries.headline_totals(uow.session), last_seq)
