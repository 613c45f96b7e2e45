"""nameko entrypoints of the grants service: awards and payments; copies of calls and proposals from events."""
from services.common.entrypoints import ServiceBase, handles, operation

from . import commands, schemas


class GrantsService(ServiceBase):
    name = "grants"

    @handles("call_opened")
    def on_call_opened(self, event, uow):
        commands.record_call(uow, event.data)

    @handles("proposal_submitted")
    def on_proposal_submitted(self, event, uow):
        commands.record_proposal(uow, event.data)

    @operation(schemas.AwardGrant)
    def award_grant(self, data):
        return commands.award_grant(self.db, data, commands.now_utc())

    @operation(schemas.PayTranche)
    def pay_tranche(self, data):
        return commands.pay_tranche(self.db, data, commands.now_utc())

    @operation(schemas.GrantId)
    def get_grant(self, data):
        return commands.get_grant(self.db, data["grant_id"])

    @operation(schemas.Ledger)
    def ledger(self, data):
        return commands.ledger(self.db)
