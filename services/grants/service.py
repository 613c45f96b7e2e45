"""nameko entrypoints of the grants service: copies of calls, proposals and rankings from the calls events;
awards, contracts, payments, reports, amendments, termination and closure as RPCs (docs/api/grants.md)."""

from services.common.service.entrypoints import ServiceBase, handles, operation

from . import commands, results, schemas, termination


class GrantsService(ServiceBase):
    name = "grants"

    # --- copies from the calls service --------------------------------------------------------------------------
    @handles("call_opened")
    def on_call_opened(self, event, uow):
        commands.record_call(uow, event.data, event.occurred_at)

    @handles("proposal_submitted")
    def on_proposal_submitted(self, event, uow):
        commands.record_proposal(uow, event.data)

    @handles("proposal_withdrawn")
    def on_proposal_withdrawn(self, event, uow):
        commands.record_withdrawal(uow, event.data)

    @handles("proposal_screened")
    def on_proposal_screened(self, event, uow):
        commands.record_screening(uow, event.data, event.occurred_at)

    @handles("proposal_evaluated")
    def on_proposal_evaluated(self, event, uow):
        commands.record_evaluation(uow, event.data, event.occurred_at)

    @handles("ranking_published")
    def on_ranking_published(self, event, uow):
        commands.record_ranking(uow, event)

    # --- decisions ---------------------------------------------------------------------------------------------
    @operation(schemas.AwardGrant, result=results.GRANT)
    def award_grant(self, data):
        return commands.award_grant(self.db, data, commands.now_utc())

    @operation(schemas.RejectProposal, result=results.PROPOSAL_DECISION)
    def reject_proposal(self, data):
        return commands.reject_proposal(self.db, data, commands.now_utc())

    @operation(schemas.DeclineGrant, result=results.DECIDED)
    def decline_grant(self, data):
        return commands.decline_grant(self.db, data, commands.now_utc())

    # --- organisation register ---------------------------------------------------------------------------------
    @operation(schemas.RegisterOrganisation, result=results.ORGANISATION)
    def register_organisation(self, data):
        return commands.register_organisation(self.db, data, commands.now_utc())

    @operation(schemas.ValidateBankAccount, result=results.ORGANISATION)
    def validate_bank_account(self, data):
        return commands.validate_bank_account(self.db, data, commands.now_utc())

    @operation(schemas.ListOrganisations, result=results.ORGANISATIONS)
    def list_organisations(self, data):
        return commands.list_organisations(self.db, data)

    # --- contract, payments, reports ---------------------------------------------------------------------------
    @operation(schemas.SignContract, result=results.GRANT)
    def sign_contract(self, data):
        return commands.sign_contract(self.db, data, commands.now_utc())

    @operation(schemas.RequestPayment, result=results.PAYMENT)
    def request_payment(self, data):
        return commands.request_payment(self.db, data, commands.now_utc())

    @operation(schemas.ApprovePayment, result=results.PAYMENT)
    def approve_payment(self, data):
        return commands.approve_payment(self.db, data, commands.now_utc())

    @operation(schemas.CancelPayment, result=results.PAYMENT)
    def cancel_payment(self, data):
        return commands.cancel_payment(self.db, data, commands.now_utc())

    @operation(schemas.ListPayments, result=results.PAYMENTS)
    def list_payments(self, data):
        return commands.list_payments(self.db, data)

    @operation(schemas.SubmitReport, result=results.REPORT)
    def submit_report(self, data):
        return commands.submit_report(self.db, data, commands.now_utc())

    @operation(schemas.ReportId, result=results.REPORT)
    def accept_report(self, data):
        return commands.decide_report(self.db, data, commands.now_utc(), accepted=True)

    @operation(schemas.ReturnReport, result=results.REPORT)
    def return_report(self, data):
        return commands.decide_report(self.db, data, commands.now_utc(), accepted=False)

    # --- exchange rates ---------------------------------------------------------------------------------------
    @operation(schemas.SetRates, result=results.RATES_SET)
    def set_rates(self, data):
        """Publish one month's exchange rates (InforEuro or UN operational); published rates never change."""
        return commands.set_rates(self.db, data, commands.now_utc())

    @operation(schemas.ListRates, result=results.RATES)
    def list_rates(self, data):
        """The published exchange rates (by month, currency, kind)."""
        return commands.list_rates(self.db, data)

    # --- changes and closure -----------------------------------------------------------------------------------
    @operation(schemas.ReallocateBudget, result=results.AMENDED)
    def reallocate_budget(self, data):
        return commands.reallocate_budget(self.db, data, commands.now_utc())

    @operation(schemas.AmendGrant, result=results.AMEND_OUTCOME)
    def amend_grant(self, data):
        return commands.amend_grant(self.db, data, commands.now_utc())

    @operation(schemas.TerminateGrant, result=results.GRANT)
    def terminate_grant(self, data):
        """End a grant early: the final report covers up to the effective date; closure then decommits."""
        return termination.terminate_grant(self.db, data, commands.now_utc())

    @operation(schemas.AmendmentId, result=results.AMENDED)
    def approve_amendment(self, data):
        return commands.approve_amendment(self.db, data, commands.now_utc())

    @operation(schemas.GrantId, result=results.DECIDED)
    def close_grant(self, data):
        return commands.close_grant(self.db, data, commands.now_utc())

    # --- reads -------------------------------------------------------------------------------------------------
    @operation(schemas.GrantId, result=results.GRANT_IN_FULL)
    def get_grant(self, data):
        return commands.get_grant(self.db, data["grant_id"])

    @operation(schemas.ListGrants, result=results.GRANTS)
    def list_grants(self, data):
        return commands.list_grants(self.db, data)

    @operation(schemas.Ledger, result=results.LEDGER)
    def ledger(self, data):
        return commands.ledger(self.db, data["programme_id"])
