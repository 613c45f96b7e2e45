"""nameko entrypoints of the reporting service: archive and project every event; the EC budget report and its
exports; the scheduled EC reports; reconciliation with the grants ledger; financial gauges on /metrics."""

import os

from nameko.web.handlers import http

from services.common.contracts.topology import SUBSCRIPTIONS
from services.common.messaging.batch import handles_batch
from services.common.service.entrypoints import ServiceBase, operation
from services.common.service.rpc import ServiceClient
from services.common.storage.leases import exclusive_timer

from . import commands, gauges, projections, repository, results, schemas, upkeep
from .ledger import fetch_ledger

# nameko fixes a timer's interval when the class is defined, so these come from the environment (tests
# shorten them); the lease makes each tick run in one replica only
REPORT_SCHEDULE_SECONDS = float(os.environ.get("REPORT_SCHEDULE_SECONDS") or 3600)
RECONCILE_SCHEDULE_SECONDS = float(os.environ.get("RECONCILE_SCHEDULE_SECONDS") or 3600)
ANALYSE_CHECK_SECONDS = float(os.environ.get("ANALYSE_CHECK_SECONDS") or 10)
LEDGER_TIMEOUT_SECONDS = 60


class ReportingService(ServiceBase):
    name = "reporting"

    grants = ServiceClient("grants")

    @operation(schemas.ProgrammeAsOf, result=results.TOTALS)
    def totals(self, data):
        return commands.totals(self.db, data["programme_id"], data["as_of"])

    @operation(schemas.BudgetReport, result=results.BUDGET_REPORT)
    def budget_report(self, data):
        return commands.budget_report(
            self.db, data["programme_id"], data["as_of"], data["format"], commands.now_utc(), data["grants"]
        )

    @operation(schemas.GrantLines, result=results.GRANT_LINES)
    def grant_lines(self, data):
        return commands.grant_lines(self.db, data["programme_id"], data["as_of"], data["after"], data["limit"])

    @operation(schemas.ProgrammeAsOf, result=results.IATI_EXPORT)
    def iati_export(self, data):
        return commands.iati_export(
            self.db,
            data["programme_id"],
            data["as_of"],
            commands.standards_path(self.request.config.get("STANDARDS_DIR")),
            commands.now_utc(),
        )

    @operation(schemas.ProgrammeAsOf, result=results.GIVING360_EXPORT)
    def giving360_export(self, data):
        return commands.giving360_export(self.db, data["programme_id"], data["as_of"], commands.now_utc())

    @operation(schemas.GenerateReport, result=results.GENERATED_REPORT)
    def generate_report(self, data):
        return commands.generate_report(
            self.db, data["kind"], data["period"], commands.now_utc(), self.db.identity.user
        )

    @operation(schemas.ListReports, result=results.REPORTS)
    def list_reports(self, data):
        return commands.list_reports(self.db, data["kind"], data["limit"])

    @operation(schemas.ReportId, result=results.REPORT)
    def get_report(self, data):
        return commands.get_report(self.db, data["report_id"])

    @operation(schemas.Programme, result=results.RECONCILIATION)
    def reconcile(self, data):
        ledger = fetch_ledger(self.grants, data["programme_id"], LEDGER_TIMEOUT_SECONDS)
        return commands.reconcile(self.db, data["programme_id"], ledger, commands.now_utc())

    @operation(result=results.REBUILT)
    def rebuild_projections(self, _data):
        return commands.rebuild(self.db)

    @exclusive_timer(REPORT_SCHEDULE_SECONDS)
    def produce_scheduled_reports(self):
        return commands.scheduled_reports(self.db, commands.now_utc())

    @exclusive_timer(RECONCILE_SCHEDULE_SECONDS)
    def reconcile_with_grants(self):
        return commands.reconcile(
            self.db, None, fetch_ledger(self.grants, None, LEDGER_TIMEOUT_SECONDS), commands.now_utc()
        )

    @exclusive_timer(ANALYSE_CHECK_SECONDS)
    def analyse_fact_tables(self):
        """The fact tables' statistics after the live batches (upkeep: no autovacuum needed for the report's plan)."""
        return upkeep.analyse_stale(self.db.session)

    @handles_batch(*(t for types in SUBSCRIPTIONS["reporting"].values() for t in types))
    def apply_events(self, events, uow):
        """Archive and project a batch of new events in one transaction (the kit skips those already applied)."""
        repository.archive_many(uow, events)
        writer = repository.FactWriter(uow.session)
        for event in events:
            projections.project(uow, event, writer)
        writer.flush()
        gauges.projection_applied(max(event.occurred_at for event in events))

    @http("GET", "/metrics")
    def serve_metrics(self, request):
        commands.refresh_gauges(self.db)  # the finance figures as of this scrape
        self.db.rollback()
        return super().serve_metrics(request)
