"""What the calls service's RPCs return: programmes, calls and proposals as staff tools read them."""

from .models import CallRow, ProgrammeRow, ProposalRow


def programme_view(row: ProgrammeRow) -> dict:
    return {**row.definition, "version": row.version, "updated_at": row.updated_at}


def programme_summary(row: ProgrammeRow) -> dict:
    d = row.definition
    return {
        "id": row.id,
        "name": row.name,
        "ec_contribution_eur": row.ec_contribution,
        "rule_profile": d["rule_profile"],
        "period": d["period"],
        "windows": [w["code"] for w in d["windows"]],
        "eligible_countries": len(d["eligible_countries"]),
        "version": row.version,
    }


def call_view(row: CallRow) -> dict:
    d = row.definition
    return {
        "call_id": row.id,
        "programme_id": row.programme_id,
        "title": row.title,
        "status": row.status,
        "deadline": row.deadline,
        "windows": [{"window": w["code"], "allocation_eur": w["allocation"]} for w in d["windows"]],
        "min_grant_eur": d["min_grant"],
        "max_grant_eur": d["max_grant"],
        "max_ec_share": d["max_ec_share"],
        "contingency_cap": d["contingency_cap"],
        "indirect_cap": d["indirect_cap"],
        "eligible_applicant_types": d["eligible_applicant_types"],
        "consortium": d["consortium"],
        "min_duration_months": d["min_duration_months"],
        "max_duration_months": d["max_duration_months"],
        "rule_profile": d["rule_profile"],
        "opened_at": row.opened_at,
        "closed_at": row.closed_at,
        "evaluated_at": row.evaluated_at,
    }


def proposal_view(row: ProposalRow, full: bool = False) -> dict:
    view = {
        "proposal_id": row.id,
        "reference": row.reference,
        "call_id": row.call_id,
        "status": row.status,
        "window": row.window,
        "target_country": row.target_country,
        "title": row.data.get("title"),
        "lead_organisation": row.data.get("lead_organisation"),
        "ec_amount_requested_eur": row.ec_amount_requested,
        "submitted_at": row.submitted_at,
        "withdrawn_at": row.withdrawn_at,
        "screening": row.screening,
    }
    if full:
        view.update(
            {
                "proposal": row.data,
                "withdrawal_reason": row.withdrawal_reason,
                "screening_hits": row.screening_hits or [],
                "screening_reason": row.screening_reason,
                "screening_decided_by": row.screening_decided_by,
                "screened_at": row.screened_at,
            }
        )
    return view
