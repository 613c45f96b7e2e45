"""nameko entrypoints of the calls service: programmes, calls, proposals, exclusion screening, evaluation and
ranking (docs/api/calls.md), and the sweep that closes calls at their deadline."""

import logging
import os

from services.common.service.entrypoints import ServiceBase, operation
from services.common.storage.leases import exclusive_timer

from . import commands, evaluation, results, schemas, submission

log = logging.getLogger(__name__)

# read at import: a timer's interval is fixed when the service class is built (tests use a second or two)
DEADLINE_SWEEP_SECONDS = float(os.environ.get("CALLS_DEADLINE_SWEEP_SECONDS", "30"))


class CallsService(ServiceBase):
    name = "calls"

    # --- programmes ----------------------------------------------------------------------------------------------
    @operation(schemas.LoadProgramme, result=results.LOADED_PROGRAMME)
    def load_programme(self, data):
        return commands.load_programme(self.db, data["programme"], commands.now_utc())

    @operation(schemas.UpdateProgramme, result=results.PROGRAMME)
    def update_programme(self, data):
        changes = {k: v for k, v in data.items() if k != "programme_id"}
        return commands.update_programme(self.db, data["programme_id"], changes, commands.now_utc())

    @operation(schemas.ProgrammeId, result=results.PROGRAMME)
    def get_programme(self, data):
        return commands.get_programme(self.db, data["programme_id"])

    @operation(schemas.ListProgrammes, result=results.PROGRAMMES)
    def list_programmes(self, _data):
        return commands.list_programmes(self.db)

    # --- calls ---------------------------------------------------------------------------------------------------
    @operation(schemas.CreateCall, result=results.CALL)
    def create_call(self, data):
        return commands.create_call(self.db, data)

    @operation(schemas.AmendCall, result=results.CALL)
    def amend_call(self, data):
        return commands.amend_call(self.db, data)

    @operation(schemas.CallId, result=results.CALL)
    def open_call(self, data):
        return commands.open_call(self.db, data["call_id"], commands.now_utc())

    @operation(schemas.CallId, result=results.CLOSED_CALL)
    def close_call(self, data):
        return commands.close_call(self.db, data["call_id"], commands.now_utc())

    @operation(schemas.CallId, result=results.CALL_WITH_COUNTS)
    def get_call(self, data):
        return commands.get_call(self.db, data["call_id"])

    @operation(schemas.ListCalls, result=results.CALLS)
    def list_calls(self, data):
        return commands.list_calls(self.db, data["programme_id"], data["status"])

    @exclusive_timer(DEADLINE_SWEEP_SECONDS)
    def close_calls_at_deadline(self):
        closed = commands.close_due_calls(self.db, commands.now_utc())
        if closed:
            log.info("closed at their deadline: %s", ", ".join(closed))

    # --- proposals -----------------------------------------------------------------------------------------------
    @operation(schemas.SubmitProposal, result=results.SUBMITTED)
    def submit_proposal(self, data):
        return submission.submit_proposal(self.db, data, commands.now_utc())

    @operation(schemas.WithdrawProposal, result=results.PROPOSAL)
    def withdraw_proposal(self, data):
        return commands.withdraw_proposal(self.db, data, commands.now_utc())

    @operation(schemas.ProposalQuery, result=results.PROPOSAL_IN_FULL)
    def get_proposal(self, data):
        return commands.get_proposal(self.db, data["proposal_id"], data["reference"])

    @operation(schemas.ListProposals, result=results.PROPOSALS)
    def list_proposals(self, data):
        return commands.list_proposals(self.db, data)

    # --- exclusion screening -------------------------------------------------------------------------------------
    @operation(schemas.LoadExclusionList, result=results.EXCLUSION_LIST)
    def load_exclusion_list(self, data):
        return commands.load_exclusion_list(self.db, data, commands.now_utc())

    @operation(schemas.DecideScreening, result=results.PROPOSAL_IN_FULL)
    def decide_screening(self, data):
        return commands.decide_screening(self.db, data, commands.now_utc())

    # --- evaluation ----------------------------------------------------------------------------------------------
    @operation(schemas.DeclareConflicts, result=results.DECLARED)
    def declare_conflicts(self, data):
        return evaluation.declare_conflicts(self.db, data, commands.now_utc())

    @operation(schemas.AssignAssessors, result=results.ASSIGNMENTS)
    def assign_assessors(self, data):
        return evaluation.assign_assessors(self.db, data, commands.now_utc())

    @operation(schemas.MyAssignments, result=results.MY_ASSIGNMENTS)
    def my_assignments(self, data):
        return evaluation.my_assignments(self.db, data)

    @operation(schemas.RecordAssessment, result=results.RECORDED)
    def record_assessment(self, data):
        return evaluation.record_assessment(self.db, data, commands.now_utc())

    @operation(schemas.GetScores, result=results.SCORES)
    def get_scores(self, data):
        return evaluation.get_scores(self.db, data)

    # --- ranking -------------------------------------------------------------------------------------------------
    @operation(schemas.PublishRanking, result=results.PUBLISHED)
    def publish_ranking(self, data):
        return evaluation.publish_ranking(self.db, data, commands.now_utc())

    @operation(schemas.GetRanking, result=results.RANKINGS)
    def get_ranking(self, data):
        return evaluation.get_ranking(self.db, data)
