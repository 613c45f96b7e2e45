"""Results whose substance is nested, laid out as the tables a person reads (`--json` keeps the reply as it is).

A generic table shows the scalar fields of each row; where what matters sits deeper — the ranked proposals of a
window, the scores of each stage, the grid an assessor scores against — the view for that operation flattens it.
Each view returns [(title, rows, columns)], one table each.
"""

from collections.abc import Callable

Table = tuple[str | None, list[dict], list[str]]


def ranking_tables(result) -> list[Table]:
    """One table per window: the main list, the reserve list, those under the threshold, those whose concept note
    failed — rank, reference, country, score and the EC amount requested."""
    rankings = result.get("rankings", []) if isinstance(result, dict) else result
    tables: list[Table] = []
    for ranking in rankings or []:
        rows = []
        for listed, label in (
            ("main", "main"),
            ("reserve", "reserve"),
            ("excluded", "below threshold"),
            ("concept_note_failed", "concept note failed"),
        ):
            for entry in ranking.get(listed) or []:
                if isinstance(entry, dict):
                    rows.append(
                        {
                            "list": label,
                            "rank": entry.get("rank", ""),
                            "reference": entry.get("reference"),
                            "country": entry.get("country"),
                            "score": entry.get("score"),
                            "ec_amount_requested_eur": entry.get("ec_amount_requested_eur", ""),
                            "proposal_id": entry.get("proposal_id"),
                        }
                    )
        title = (
            f"{ranking.get('window')} — threshold {ranking.get('threshold')}, published "
            f"{str(ranking.get('published_at') or '')[:10]}"
        )
        tables.append(
            (title, rows, ["list", "rank", "reference", "country", "score", "ec_amount_requested_eur", "proposal_id"])
        )
    return tables


def scores_tables(result) -> list[Table]:
    """One row per proposal and stage: each assessor's total, the stage's score against its threshold."""
    rows = []
    for proposal in result or []:
        for stage, detail in (proposal.get("stages") or {}).items():
            totals = "; ".join(f"{a['assessor']} {a['total']}" for a in detail.get("assessments") or [])
            waiting = [
                name
                for name in detail.get("assessors") or []
                if name not in {a["assessor"] for a in detail.get("assessments") or []}
            ]
            rows.append(
                {
                    "reference": proposal.get("reference"),
                    "window": proposal.get("window"),
                    "country": proposal.get("target_country"),
                    "stage": stage,
                    "score": "" if detail.get("score") is None else f"{detail['score']} / {detail.get('out_of')}",
                    "threshold": detail.get("threshold"),
                    "passed": {True: "yes", False: "no", None: ""}[detail.get("passed")],
                    "assessments": totals,
                    "waiting_for": ", ".join(waiting),
                    "third_assessor": "needed" if detail.get("needs_third_assessor") else "",
                    "proposal_id": proposal.get("proposal_id"),
                }
            )
    return [
        (
            None,
            rows,
            [
                "reference",
                "window",
                "country",
                "stage",
                "score",
                "threshold",
                "passed",
                "assessments",
                "waiting_for",
                "third_assessor",
                "proposal_id",
            ],
        )
    ]


def assignment_tables(result) -> list[Table]:
    """The assessor's proposals, then the grid of each stage they score: criteria, weights, scale."""
    assignments = [
        {
            "reference": a.get("reference"),
            "stage": a.get("stage"),
            "window": a.get("window"),
            "country": a.get("target_country"),
            "status": a.get("status"),
            "proposal_id": a.get("proposal_id"),
        }
        for a in result or []
    ]
    tables: list[Table] = [(None, assignments, ["reference", "stage", "window", "country", "status", "proposal_id"])]
    grids: dict[str | None, dict] = {}
    for a in result or []:
        grids.setdefault(a.get("stage"), a)
    for stage, a in grids.items():
        criteria = [
            {
                "criterion": c.get("code"),
                "section": c.get("section"),
                "label": c.get("label"),
                "weight": c.get("weight"),
                "points": "–".join(map(str, c.get("scale") or [])),
            }
            for c in a.get("criteria") or []
        ]
        tables.append(
            (
                f"{stage} grid: out of {a.get('out_of')}, threshold {a.get('threshold')} "
                f"(--score CRITERION=POINTS for each)",
                criteria,
                ["criterion", "section", "label", "weight", "points"],
            )
        )
    return tables


def grant_line_tables(result) -> list[Table]:
    """The page's grant lines, then the cursor of the next page (none on the last page)."""
    rows = result.get("grants", []) if isinstance(result, dict) else []
    nxt = result.get("next") if isinstance(result, dict) else None
    return [
        (
            f"next page: --after {nxt}" if nxt else "last page",
            rows,
            ["reference", "country", "window", "committed_eur", "paid_eur", "outstanding_eur", "grant_id"],
        )
    ]


VIEWS: dict[str, Callable[[object], list[Table]]] = {
    "reporting.grant_lines": grant_line_tables,
    "calls.get_ranking": ranking_tables,
    "calls.publish_ranking": ranking_tables,
    "calls.get_scores": scores_tables,
    "calls.my_assignments": assignment_tables,
}
