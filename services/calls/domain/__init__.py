"""Pure domain of the calls service: programme, rule profiles, calls, proposals, eligibility, exclusion screening,
evaluation, assessor assignment and ranking. No nameko, no database: only rules over plain data, raising the
kit's typed errors (InvalidInput, NotFound, Conflict) for the entrypoints to pass on.
"""
from .assignment import Declaration, DeclaredInterest, assign_assessors, eligible_assessors
from .call import (
    ApplicantType, Call, CallStatus, CallWindow, ConsortiumRule, PartnerScope, call_from_dict, call_to_dict,
)
from .eligibility import Violation, check_eligibility, check_full_application, ec_share, ensure_eligible
from .evaluation import (
    Assessment, EvaluationStatus, assessment_total, evaluation_status, needs_third_assessor, proposal_score,
    section_totals, validate_scores,
)
from .profile import (
    Criterion, Grid, RuleProfile, Section, Stage, available_profiles, grid_from_dict, load_profile,
    profile_document, profile_from_dict,
)
from .programme import Programme, Window, load_programme, programme_from_dict, programme_to_dict
from .proposal import (
    BUDGET_LINES, Applicant, Budget, Language, Proposal, Role, proposal_from_dict, proposal_reference,
    proposal_to_dict,
)
from .ranking import CountryLine, Ranking, ScoredProposal, rank, ranking_to_dict
from .screening import ExclusionEntry, ExclusionList, Hit, normalise_name, normalise_registration

__all__ = [
    "Applicant", "ApplicantType", "Assessment", "BUDGET_LINES", "Budget", "Call", "CallStatus", "CallWindow",
    "ConsortiumRule", "CountryLine", "Criterion", "Declaration", "DeclaredInterest", "EvaluationStatus",
    "ExclusionEntry", "ExclusionList", "Grid", "Hit", "Language", "PartnerScope", "Programme", "Proposal",
    "Ranking", "Role", "RuleProfile", "ScoredProposal", "Section", "Stage", "Violation", "Window",
    "assessment_total", "assign_assessors", "available_profiles", "call_from_dict", "call_to_dict",
    "check_eligibility", "check_full_application", "ec_share", "eligible_assessors", "ensure_eligible", "evaluation_status",
    "grid_from_dict", "load_profile", "load_programme", "needs_third_assessor", "normalise_name",
    "normalise_registration", "profile_document", "profile_from_dict", "programme_from_dict", "programme_to_dict",
    "proposal_from_dict", "proposal_reference", "proposal_score", "proposal_to_dict", "rank", "ranking_to_dict",
    "section_totals", "validate_scores",
]
