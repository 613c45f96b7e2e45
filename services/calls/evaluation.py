"""Use cases of the evaluation: declarations of interests, assignment, scoring (concept note, then full
application), and the ranking of each window. The assessor is always the caller's identity, never a name the
caller types. Every change takes the call's row lock, so concurrent assessments of one call are applied one
after the other (two last assessments cannot both miss that the proposal is complete)."""

from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import select

from services.common.storage.db import UnitOfWork
from services.common.values.errors import Conflict, InvalidInput
from services.common.values.wire import to_wire

from . import repository as store  # the writes (and the loads they lock)
from .commands import SCREENED_OK
from .domain import (
    Assessment,
    Declaration,
    DeclaredInterest,
    ScoredProposal,
    Stage,
    assign_assessors as choose_assessors,
    eligible_assessors,
    evaluation_status,
    rank,
    ranking_to_dict,
)
from .models import AssessmentRow, AssignmentRow, DeclarationRow, EvaluationRow, ProposalRow, RankingRow

CN, FA = Stage.CONCEPT_NOTE, Stage.FULL_APPLICATION


# --- reading ---------------------------------------------------------------------------------------------------


def _declarations(uow: UnitOfWork, call_id: str) -> list[Declaration]:
    rows = uow.session.execute(
        select(DeclarationRow).where(DeclarationRow.call_id == call_id).order_by(DeclarationRow.assessor)
    ).scalars()
    return [_declaration(row.assessor, row.interests) for row in rows]


def _declaration(assessor: str, interests: list) -> Declaration:
    return Declaration(assessor, tuple(DeclaredInterest(i["name"], i["registration_number"]) for i in interests))


def _active(uow: UnitOfWork, call_id: str, **where) -> list[AssignmentRow]:
    query = select(AssignmentRow).where(AssignmentRow.call_id == call_id, AssignmentRow.status == "active")
    for column, value in where.items():
        query = query.where(getattr(AssignmentRow, column) == value)
    return list(uow.session.execute(query.order_by(AssignmentRow.id)).scalars())


def _assessments(uow: UnitOfWork, proposal_id: str, stage: Stage) -> list[AssessmentRow]:
    return list(
        uow.session.execute(
            select(AssessmentRow)
            .where(AssessmentRow.proposal_id == proposal_id, AssessmentRow.stage == stage.value)
            .order_by(AssessmentRow.recorded_at, AssessmentRow.assessor)
        ).scalars()
    )


def _status(profile, stage: Stage, rows: list[AssessmentRow]):
    grid = profile.grid(stage)
    items = [Assessment(r.proposal_id, r.assessor, stage, r.scores, r.total, r.comments) for r in rows]
    return evaluation_status(profile, grid, items)


def _evaluations(uow: UnitOfWork, call_id: str) -> dict:
    rows = uow.session.execute(select(EvaluationRow).where(EvaluationRow.call_id == call_id)).scalars()
    return {(row.proposal_id, Stage(row.stage)): row for row in rows}


def _ranked_windows(uow: UnitOfWork, call_id: str) -> set[str]:
    return set(uow.session.execute(select(RankingRow.window).where(RankingRow.call_id == call_id)).scalars())


def _in_evaluation(uow: UnitOfWork, call_id: str, window: str | None = None) -> list[ProposalRow]:
    """Proposals that go through evaluation: submitted, and clear of the exclusion screening."""
    query = select(ProposalRow).where(
        ProposalRow.call_id == call_id, ProposalRow.status == "submitted", ProposalRow.screening.in_(SCREENED_OK)
    )
    if window:
        query = query.where(ProposalRow.window == window)
    return list(uow.session.execute(query.order_by(ProposalRow.reference)).scalars())


def _stage_pool(uow: UnitOfWork, call_id: str, stage: Stage) -> list[ProposalRow]:
    """Who is assessed at a stage: at the full application, only those whose concept note passed; never a
    proposal of a window whose ranking is published."""
    evaluations, ranked = _evaluations(uow, call_id), _ranked_windows(uow, call_id)
    pool = [p for p in _in_evaluation(uow, call_id) if p.window not in ranked]
    if stage is FA:
        pool = [p for p in pool if (p.id, CN) in evaluations and evaluations[(p.id, CN)].passed]
    return [p for p in pool if (p.id, stage) not in evaluations]


def _closed_call(uow: UnitOfWork, call_id: str):
    row = store.call_row(uow, call_id, lock=True)
    if row.status != "closed":
        raise Conflict(
            "call.not_closed",
            f"call {call_id} is {row.status}: evaluation happens between the deadline and the last published ranking",
            [{"call_id": call_id, "status": row.status}],
        )
    return row


# --- declarations and assignment -------------------------------------------------------------------------------


def declare_conflicts(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """The caller's own declaration for a call (replacing an earlier one). Assignments the new declaration
    conflicts with are withdrawn; a conflict with a proposal already scored is refused for staff to resolve."""
    assessor = uow.identity.user
    call_row = store.call_row(uow, data["call_id"], lock=True)
    if call_row.status == "evaluated":
        raise Conflict("call.evaluated", f"call {call_row.id} is evaluated", [{"call_id": call_row.id}])
    interests = [
        {"name": i["name"].strip(), "registration_number": i["registration_number"].strip()} for i in data["interests"]
    ]
    declaration = _declaration(assessor, interests)
    conflicted = []
    for assignment in _active(uow, call_row.id, assessor=assessor):
        proposal = store.stored_proposal(store.proposal_row(uow, assignment.proposal_id))
        if not eligible_assessors(proposal, [assessor], [declaration]):
            conflicted.append((assignment, proposal))
    scored = [
        {"proposal_id": p.id, "reference": p.reference, "stage": a.stage}
        for a, p in conflicted
        if uow.session.get(AssessmentRow, (a.proposal_id, a.stage, assessor)) is not None
    ]
    if scored:
        raise Conflict(
            "assessment.already_scored",
            "the declaration conflicts with proposals you already scored: ask the programme manager",
            scored,
        )
    for assignment, _ in conflicted:
        assignment.status = "recused"
    row = uow.session.get(DeclarationRow, (call_row.id, assessor))
    if row is None:
        row = DeclarationRow(call_id=call_row.id, assessor=assessor)
        uow.session.add(row)
    row.interests, row.declared_at = interests, now
    recused = [{"proposal_id": p.id, "reference": p.reference, "stage": a.stage} for a, p in conflicted]
    uow.audit(
        "calls.declare_conflicts",
        f"call:{call_row.id}",
        {"assessor": assessor, "interests": interests, "recused": recused},
    )
    return {
        "call_id": call_row.id,
        "assessor": assessor,
        "interests": interests,
        "declared_at": now,
        "recused": recused,
    }


def assign_assessors(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Give every proposal of the stage its assessors: k each (the profile's minimum by default), one more where
    the first two disagree beyond the profile's gap; least-loaded first, never a conflicted assessor. Running it
    again only tops up."""
    call_row = _closed_call(uow, data["call_id"])
    profile, stage = store.profile_of(call_row), Stage(data["stage"])
    k = data["per_proposal"] or profile.min_assessors
    if k < profile.min_assessors:
        raise InvalidInput({"per_proposal": [f"must be at least {profile.min_assessors} (the rule profile's)"]})
    declarations = _declarations(uow, call_row.id)
    declared = {d.assessor for d in declarations}
    assessors = data["assessors"] or sorted(declared)
    undeclared = sorted(set(assessors) - declared)
    if undeclared or not assessors:
        raise Conflict(
            "assessment.no_declaration",
            "an assessor must declare their interests before assignment",
            [{"assessor": a} for a in undeclared],
        )
    active = _active(uow, call_row.id)
    load = Counter(a.assessor for a in active)
    on = defaultdict(list)
    for a in active:
        if a.stage == stage.value:
            on[a.proposal_id].append(a.assessor)
    wanted = defaultdict(list)  # k -> proposals needing that many assessors
    for row in _stage_pool(uow, call_row.id, stage):
        status = _status(profile, stage, _assessments(uow, row.id, stage))
        wanted[max(k, profile.min_assessors + 1) if status.needs_third_assessor else k].append(row)
    assigned = []
    for count in sorted(wanted):
        rows = wanted[count]
        chosen = choose_assessors(
            [store.stored_proposal(r) for r in rows], assessors, declarations, load, count, assigned=on
        )
        for row in rows:
            for assessor in chosen[row.id]:
                load[assessor] += 1
                _add_assignment(
                    uow, call_row.id, row.id, stage, assessor, "assignment" if count == k else "third_assessor", now
                )
            if chosen[row.id]:
                assigned.append({"proposal_id": row.id, "reference": row.reference, "assessors": chosen[row.id]})
    return {
        "call_id": call_row.id,
        "stage": stage.value,
        "per_proposal": k,
        "assigned": assigned,
        "load": dict(sorted(load.items())),
    }


def _add_assignment(uow, call_id, proposal_id, stage: Stage, assessor, reason, now):
    existing = uow.session.execute(
        select(AssignmentRow).where(
            AssignmentRow.proposal_id == proposal_id,
            AssignmentRow.stage == stage.value,
            AssignmentRow.assessor == assessor,
        )
    ).scalar_one_or_none()
    if existing is None:
        uow.session.add(
            AssignmentRow(
                call_id=call_id,
                proposal_id=proposal_id,
                stage=stage.value,
                assessor=assessor,
                status="active",
                reason=reason,
                assigned_at=now,
            )
        )
    else:  # recused, then declared again without that interest: chosen like anyone free of conflicts
        existing.status, existing.reason, existing.assigned_at = "active", reason, now
    uow.audit(
        "calls.assign_assessors",
        f"proposal:{proposal_id}",
        {"assessor": assessor, "stage": stage.value, "reason": reason},
    )


def my_assignments(uow: UnitOfWork, data: dict) -> list[dict]:
    assessor = uow.identity.user
    query = (
        select(AssignmentRow, ProposalRow)
        .join(ProposalRow, ProposalRow.id == AssignmentRow.proposal_id)
        .where(AssignmentRow.assessor == assessor, AssignmentRow.status == "active")
    )
    if data["call_id"]:
        query = query.where(AssignmentRow.call_id == data["call_id"])
    if data["stage"]:
        query = query.where(AssignmentRow.stage == data["stage"])
    profiles, result = {}, []
    for assignment, proposal in uow.session.execute(query.order_by(ProposalRow.reference, AssignmentRow.stage)):
        assessed = uow.session.get(AssessmentRow, (proposal.id, assignment.stage, assessor)) is not None
        if assessed and data["pending_only"]:
            continue
        if assignment.call_id not in profiles:
            profiles[assignment.call_id] = store.profile_of(store.call_row(uow, assignment.call_id))
        grid = profiles[assignment.call_id].grid(assignment.stage)
        result.append(
            {
                "call_id": assignment.call_id,
                "proposal_id": proposal.id,
                "reference": proposal.reference,
                "stage": assignment.stage,
                "assigned_at": assignment.assigned_at,
                "status": "assessed" if assessed else "pending",
                "window": proposal.window,
                "target_country": proposal.target_country,
                "proposal": proposal.data,
                "out_of": grid.out_of,
                "threshold": grid.threshold,
                "criteria": [
                    {
                        "code": c.code,
                        "label": c.label,
                        "section": c.section,
                        "weight": c.weight,
                        "scale": [c.scale_min, c.scale_max],
                    }
                    for c in grid.criteria
                ],
            }
        )
    return result


# --- scoring ---------------------------------------------------------------------------------------------------


def record_assessment(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    assessor = uow.identity.user
    proposal_row = store.proposal_row(uow, data["proposal_id"])
    call_row = store.call_row(uow, proposal_row.call_id, lock=True)
    uow.session.refresh(proposal_row)  # as it is now that the call is ours
    if proposal_row.window in _ranked_windows(uow, call_row.id) or call_row.status == "evaluated":
        raise Conflict(
            "assessment.scores_locked",
            f"the ranking of window {proposal_row.window} is published: its scores can no longer change",
            [{"call_id": call_row.id, "window": proposal_row.window}],
        )
    if call_row.status != "closed":
        raise Conflict(
            "call.not_closed",
            f"call {call_row.id} is {call_row.status}: assessments start after the deadline",
            [{"call_id": call_row.id, "status": call_row.status}],
        )
    proposal = store.stored_proposal(proposal_row)
    mine = uow.session.execute(
        select(DeclarationRow).where(DeclarationRow.call_id == call_row.id, DeclarationRow.assessor == assessor)
    ).scalar_one_or_none()
    if mine is not None and not eligible_assessors(proposal, [assessor], [_declaration(assessor, mine.interests)]):
        raise Conflict(
            "assessment.conflict_of_interest",
            f"{assessor} declared an interest in a member of {proposal_row.reference}'s consortium",
            [{"proposal_id": proposal_row.id, "assessor": assessor}],
        )
    stage = _stage_of(uow, call_row.id, proposal_row, assessor, data["stage"])
    if uow.session.get(AssessmentRow, (proposal_row.id, stage.value, assessor)) is not None:
        raise Conflict(
            "assessment.already_recorded",
            f"{assessor} already scored {proposal_row.reference} ({stage.value})",
            [{"proposal_id": proposal_row.id, "stage": stage.value, "assessor": assessor}],
        )
    profile = store.profile_of(call_row)
    grid = profile.grid(stage)
    assessment = Assessment.create(
        grid, proposal_id=proposal_row.id, assessor=assessor, scores=data["scores"], comments=data["comments"]
    )
    unknown = sorted(set(data["criterion_comments"]) - set(grid.codes))
    if unknown:
        raise InvalidInput({f"criterion_comments.{code}": ["unknown criterion"] for code in unknown})
    uow.session.add(
        AssessmentRow(
            proposal_id=proposal_row.id,
            stage=stage.value,
            assessor=assessor,
            call_id=call_row.id,
            scores=assessment.scores,
            criterion_comments=data["criterion_comments"],
            comments=assessment.comments,
            total=assessment.total,
            recorded_at=now,
        )
    )
    uow.session.flush()
    rows = _assessments(uow, proposal_row.id, stage)
    status = _status(profile, stage, rows)
    assigned = [a.assessor for a in _active(uow, call_row.id, proposal_id=proposal_row.id, stage=stage.value)]
    third = None
    if status.needs_third_assessor and len(assigned) <= len(rows):
        third = _assign_third(uow, call_row.id, proposal_row, proposal, stage, assigned, now)
    waiting = sorted(set(assigned) - {r.assessor for r in rows})
    result = {
        "proposal_id": proposal_row.id,
        "reference": proposal_row.reference,
        "stage": stage.value,
        "assessor": assessor,
        "total": assessment.total,
        "out_of": grid.out_of,
        "assessments": len(rows),
        "needs_third_assessor": status.needs_third_assessor,
        "third_assessor": third,
        "waiting_for": waiting,
        "complete": False,
        "score": None,
        "passed": None,
    }
    if status.complete and not waiting:
        _evaluated(uow, call_row.id, proposal_row, stage, grid, status, now)
        result.update(complete=True, score=status.score, passed=status.passed)
    return result


def _stage_of(uow, call_id, proposal_row, assessor, stage) -> Stage:
    """The stage asked for, or the one stage the caller has yet to score on this proposal."""
    mine = _active(uow, call_id, proposal_id=proposal_row.id, assessor=assessor)
    if stage is not None:
        stage = Stage(stage)
        if not any(a.stage == stage.value for a in mine):
            raise Conflict(
                "assessment.not_assigned",
                f"{assessor} is not assigned to {proposal_row.reference} ({stage.value})",
                [{"proposal_id": proposal_row.id, "stage": stage.value, "assessor": assessor}],
            )
        return stage
    open_stages = [
        Stage(a.stage) for a in mine if uow.session.get(AssessmentRow, (proposal_row.id, a.stage, assessor)) is None
    ]
    if not mine:
        raise Conflict(
            "assessment.not_assigned",
            f"{assessor} is not assigned to {proposal_row.reference}",
            [{"proposal_id": proposal_row.id, "assessor": assessor}],
        )
    if len(open_stages) != 1:
        raise InvalidInput({"stage": ["say which stage you score (concept_note or full_application)"]})
    return open_stages[0]


def _assign_third(uow, call_id, proposal_row, proposal, stage, assigned, now) -> str | None:
    """Two totals too far apart: one more assessor, chosen like the others. None if nobody is free (the
    programme manager's next assign_assessors tops it up once someone declares)."""
    declarations = _declarations(uow, call_id)
    load = Counter(a.assessor for a in _active(uow, call_id))
    try:
        chosen = choose_assessors(
            [proposal],
            sorted({d.assessor for d in declarations}),
            declarations,
            load,
            len(assigned) + 1,
            assigned={proposal.id: assigned},
        )[proposal.id]
    except Conflict:
        return None
    _add_assignment(uow, call_id, proposal_row.id, stage, chosen[0], "third_assessor", now)
    return chosen[0]


def _evaluated(uow, call_id, proposal_row, stage, grid, status, now):
    uow.session.add(
        EvaluationRow(
            proposal_id=proposal_row.id,
            stage=stage.value,
            call_id=call_id,
            score=status.score,
            passed=status.passed,
            assessments=status.assessments,
            evaluated_at=now,
        )
    )
    uow.emit(
        "proposal_evaluated",
        {
            "proposal_id": proposal_row.id,
            "reference": proposal_row.reference,
            "call_id": call_id,
            "stage": stage.value,
            "score": status.score,
            "max_score": int(grid.out_of),
            "threshold": grid.threshold,
            "passed": status.passed,
        },
        occurred_at=now,
    )


def get_scores(uow: UnitOfWork, data: dict) -> list[dict]:
    call_row = store.call_row(uow, data["call_id"])
    profile = store.profile_of(call_row)
    evaluations = _evaluations(uow, call_row.id)
    assigned = defaultdict(list)
    for a in _active(uow, call_row.id):
        assigned[(a.proposal_id, a.stage)].append(a.assessor)
    result = []
    for row in _in_evaluation(uow, call_row.id, data["window"]):
        stages = {}
        for stage in (CN, FA):
            rows = _assessments(uow, row.id, stage)
            if not rows and not assigned[(row.id, stage.value)]:
                continue
            evaluation = evaluations.get((row.id, stage))
            stages[stage.value] = {
                "assessors": assigned[(row.id, stage.value)],
                "assessments": [
                    {
                        "assessor": r.assessor,
                        "total": r.total,
                        "scores": r.scores,
                        "comments": r.comments,
                        "criterion_comments": r.criterion_comments,
                        "recorded_at": r.recorded_at,
                    }
                    for r in rows
                ],
                "needs_third_assessor": _status(profile, stage, rows).needs_third_assessor,
                "score": evaluation.score if evaluation else None,
                "passed": evaluation.passed if evaluation else None,
                "out_of": profile.grid(stage).out_of,
                "threshold": profile.grid(stage).threshold,
            }
        result.append(
            {
                "proposal_id": row.id,
                "reference": row.reference,
                "window": row.window,
                "target_country": row.target_country,
                "screening": row.screening,
                "stages": stages,
            }
        )
    return result


# --- ranking ---------------------------------------------------------------------------------------------------


def publish_ranking(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Rank a window (or every window not yet published) on the full-application scores, publish it and lock
    its scores; the call is evaluated once every window is published."""
    call_row = _closed_call(uow, data["call_id"])
    call = store.call_of(call_row)
    ranked = _ranked_windows(uow, call_row.id)
    if data["window"] is not None:
        call.window(data["window"])  # NotFound for a window not in the call
        if data["window"] in ranked:
            raise Conflict(
                "ranking.already_published",
                f"the ranking of {data['window']} is published",
                [{"call_id": call_row.id, "window": data["window"]}],
            )
        windows = [data["window"]]
    else:
        windows = [w for w in call.window_codes if w not in ranked]
    profile = store.profile_of(call_row)
    evaluations = _evaluations(uow, call_row.id)
    problems, results = [], []
    for window in windows:
        problems += _not_ready(uow, call_row.id, window, evaluations)
    if problems:
        raise Conflict("ranking.evaluation_incomplete", f"{len(problems)} proposal(s) not ready for ranking", problems)
    for window in windows:
        results.append(
            _publish_window(
                uow, call_row, call.window(window).allocation, window, evaluations, profile.grid(FA).threshold, now
            )
        )
    if ranked | set(windows) >= set(call.window_codes):
        _mark_evaluated(uow, call_row, now)
    return {"call_id": call_row.id, "status": call_row.status, "rankings": results}


def _not_ready(uow, call_id, window, evaluations) -> list[dict]:
    problems = []
    flagged = uow.session.execute(
        select(ProposalRow).where(
            ProposalRow.call_id == call_id,
            ProposalRow.window == window,
            ProposalRow.status == "submitted",
            ProposalRow.screening == "flagged",
        )
    ).scalars()
    problems += [
        {"proposal_id": p.id, "reference": p.reference, "window": window, "missing": "screening decision"}
        for p in flagged
    ]
    for p in _in_evaluation(uow, call_id, window):
        cn, fa = evaluations.get((p.id, CN)), evaluations.get((p.id, FA))
        missing = CN if cn is None else (FA if cn.passed and fa is None else None)
        if missing is not None:
            problems.append(
                {
                    "proposal_id": p.id,
                    "reference": p.reference,
                    "window": window,
                    "missing": f"{missing.value} evaluation",
                }
            )
    return problems


def _publish_window(uow, call_row, allocation, window, evaluations, threshold, now) -> dict:
    scored, failed_cn = [], []
    for p in _in_evaluation(uow, call_row.id, window):
        cn, fa = evaluations[(p.id, CN)], evaluations.get((p.id, FA))
        if not cn.passed:
            failed_cn.append(
                {"proposal_id": p.id, "reference": p.reference, "country": p.target_country, "score": cn.score}
            )
        else:
            scored.append(
                ScoredProposal(
                    p.id, p.reference, window, p.target_country, p.ec_amount_requested, fa.score, p.submitted_at
                )
            )
    ranking = rank(window, allocation, scored, threshold)

    def entries(items):
        return [
            {
                "proposal_id": s.proposal_id,
                "reference": s.reference,
                "rank": position,
                "score": s.score,
                "country": s.country,
                "ec_amount_requested_eur": s.ec_amount,
            }
            for position, s in enumerate(items, 1)
        ]

    excluded = [s.proposal_id for s in ranking.excluded] + [f["proposal_id"] for f in failed_cn]
    uow.emit(
        "ranking_published",
        {
            "call_id": call_row.id,
            "window": window,
            "threshold": threshold,
            "main": entries(ranking.main),
            "reserve": entries(ranking.reserve),
            "excluded": excluded,
            "published_at": now,
        },
        occurred_at=now,
    )
    body = ranking_to_dict(ranking)
    for name in ("main", "reserve", "excluded"):  # the event's vocabulary: rank, ec_amount_requested_eur
        body[name] = [
            {"rank": e.pop("position"), "ec_amount_requested_eur": e.pop("ec_amount"), **e} for e in body[name]
        ]
    body.update(call_id=call_row.id, concept_note_failed=to_wire(failed_cn), published_at=now.isoformat())
    uow.session.add(
        RankingRow(
            call_id=call_row.id,
            window=window,
            body=body,
            published_at=now,
            published_by=uow.identity.user if uow.identity else None,
        )
    )
    return body


def _mark_evaluated(uow, call_row, now) -> None:
    """The last window's ranking is out: the call is evaluated (no event of its own; the rankings are)."""
    call = store.call_of(call_row)
    call.mark_evaluated()
    store.save_call(call_row, call)
    call_row.evaluated_at = now
    uow.audit("calls.mark_evaluated", f"call:{call_row.id}", {"status": "evaluated"})


def get_ranking(uow: UnitOfWork, data: dict) -> list[dict]:
    store.call_row(uow, data["call_id"])
    query = select(RankingRow).where(RankingRow.call_id == data["call_id"]).order_by(RankingRow.window)
    if data["window"]:
        query = query.where(RankingRow.window == data["window"])
    return [{**row.body, "published_by": row.published_by} for row in uow.session.execute(query).scalars()]
