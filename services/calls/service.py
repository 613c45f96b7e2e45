"""nameko entrypoints of the calls service: programmes, calls and proposals."""
from services.common.entrypoints import ServiceBase, operation

from . import commands, schemas


class CallsService(ServiceBase):
    name = "calls"

    @operation(schemas.LoadProgramme)
    def load_programme(self, data):
        return commands.load_programme(self.db, data["programme"])

    @operation(schemas.CreateCall)
    def create_call(self, data):
        return commands.create_call(self.db, data)

    @operation(schemas.CallId)
    def open_call(self, data):
        return commands.open_call(self.db, data["call_id"], commands.now_utc())

    @operation(schemas.SubmitProposal)
    def submit_proposal(self, data):
        return commands.submit_proposal(self.db, data, commands.now_utc())

    @operation(schemas.ProposalQuery)
    def get_proposal(self, data):
        return commands.get_proposal(self.db, data["proposal_id"], data["reference"])

    @operation(schemas.ListProposals)
    def list_proposals(self, data):
        return commands.list_proposals(self.db, data["call_id"], data["status"], data["limit"])
