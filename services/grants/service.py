"""nameko entrypoints of the grants service: copies of calls, proposals and rankings from the calls events;
awards, contracts, payments, reports, amendments, termination and closure as RPCs (docs/api/grants.md)."""

from services.common.service.entrypoints import ServiceBase, handles, operation

from . import commands, schemas, termination


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
    @operation(schemas.AwardGrant)
    def award_grant(self, data):
        return commands.award_grant(self.db, data, commands.now_utc())

    @operation(schemas.RejectProposal)
    def reject_proposal(self, data):
        return commands.reject_proposal(self.db, data, commands.now_utc())

    @operation(schemas.DeclineGrant)
    def decline_grant(self, data):
        return commands.decline_grant(self.db, data, commands.now_utc())

    # --- organisation register ---------------------------------------------------------------------------------
    @operation(schemas.RegisterOrganisation)
    def register_organisation(self, data):
        return commands.register_organisation(self.db, data, commands.now_utc())

    @operation(schemas.ValidateBankAccount)
    def validate_bank_account(self, data):
        return commands.validate_bank_account(self.db, data, commands.now_utc())

    @operation(schemas.ListOrganisations)
    def list_organisations(self, data):
        return commands.list_organisations(self.db, data)

    # --- contract, payments, reports ---------------------------------------------------------------------------
    @operation(schemas.SignContract)
    def sign_contract(self, data):
        return commands.sign_contract(self.db, data, commands.now_utc())

    @operation(schemas.RequestPayment)
    def request_payment(self, data):
        return commands.request_payment(self.db, data, commands.now_utc())

    @operation(schemas.ApprovePayment)
    def approve_payment(self, data):
        return commands.approve_payment(self.db, data, commands.now_utc())

    @operation(schemas.CancelPayment)
    def cancel_payment(self, data):
        return commands.cancel_payment(self.db, data, commands.now_utc())

    @operation(schemas.ListPayments)
    def list_payments(self, data):
        return commands.list_payments(self.db, data)

    @operation(schemas.SubmitReport)
    def submit_report(self, data):
        return commands.submit_report(self.db, data, commands.now_utc())

    @operation(schemas.ReportId)
    def accept_report(self, data):
        return commands.decide_report(self.db, data, commands.now_utc(), accepted=True)

    @operation(schemas.ReturnReport)
    def return_report(self, data):
        return commands.decide_report(self.db, data, commands.now_utc(), accepted=False)

    # --- exchange rates ---------------------------------------------------------------------------------------
    @operation(schemas.SetRates)
    def set_rates(self, data):
        """Publish one month's exchange rates (InforEuro or UN operational); published rates never change."""
        return commands.set_rates(self.db, data, commands.now_utc())

    @operation(schemas.ListRates)
    def list_rates(self, data):
        """The published exchange rates (by month, currency, kind)."""
        return commands.list_rates(self.db, data)

    # --- changes and closure -----------------------------------------------------------------------------------
    @operation(schemas.ReallocateBudget)
    def reallocate_budget(self, data):
        return commands.reallocate_budget(self.db, data, commands.now_utc())

    @operation(schemas.AmendGrant)
    def amend_grant(self, data):
        return commands.amend_grant(self.db, data, commands.now_utc())

    @operation(schemas.TerminateGrant)
    def terminate_grant(self, data):
        """End a grant early: the final report covers up to the effective date; closure then decommits."""
        return termination.terminate_grant(self.db, data, commands.now_utc())

    @operation(schemas.AmendmentId)
    def approve_amendment(self, data):
        return commands.approve_amendment(self.db, data, commands.now_utc())

    @operation(schemas.GrantId)
    def close_grant(self, data):
        return commands.close_grant(self.db, data, commands.now_utc())

    # --- reads -------------------------------------------------------------------------------------------------
    @operation(schemas.GrantId)
    def get_grant(self, data):
        return commands.get_grant(self.db, data["grant_id"])

    @operation(schemas.ListGrants)
    def list_grants(self, data):
        return commands.list_grants(self.db, data)

    @operation(schemas.Ledger)
    def ledger(self, data):
        return commands.ledger(self.db, data["programme_id"])
