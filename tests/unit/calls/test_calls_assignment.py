import pytest

from calls_builders import lead, make_proposal, partner
from services.calls.domain import Declaration, DeclaredInterest, assign_assessors, eligible_assessors
from services.common.values.errors import Conflict, InvalidInput


def proposals(n):
    return [
        make_proposal(
            id=f"P-{i}",
            applicants=(
                lead(name=f"Lead {i}", registration_number=f"L{i}"),
                partner(name=f"Partner {i}", registration_number=f"R{i}"),
            ),
        )
        for i in range(1, n + 1)
    ]


def declared(*names):
    return [Declaration(n) for n in names]


def test_balanced_and_deterministic():
    ps = proposals(6)
    result = assign_assessors(ps, ["d", "c", "b", "a"], declared("a", "b", "c", "d"), {}, k=2)
    assert list(result) == [p.id for p in ps]
    assert all(len(v) == 2 and len(set(v)) == 2 for v in result.values())
    counts = {a: sum(a in v for v in result.values()) for a in "abcd"}
    assert counts == {"a": 3, "b": 3, "c": 3, "d": 3}
    assert result["P-1"] == ["a", "b"] and result["P-2"] == ["c", "d"]  # least loaded, then by id
    assert assign_assessors(list(reversed(ps)), ["a", "b", "c", "d"], declared("d", "c", "b", "a")) == result


def test_existing_load_is_respected_and_not_modified():
    load = {"a": 5, "b": 0, "c": 0}
    result = assign_assessors(proposals(1), ["a", "b", "c"], declared("a", "b", "c"), load)
    assert result == {"P-1": ["b", "c"]}
    assert load == {"a": 5, "b": 0, "c": 0}


def test_only_assessors_with_a_declaration():
    result = assign_assessors(proposals(2), ["a", "b", "c"], declared("b", "c"), {})
    assert all(set(v) == {"b", "c"} for v in result.values())


def test_conflict_by_normalised_name_or_registration_number():
    ps = [
        make_proposal(
            id="P-1",
            applicants=(
                lead(name="Migrations & Développement ASBL", registration_number="X1"),
                partner(registration_number="MA-RC-4242"),
            ),
        )
    ]
    decls = [
        Declaration("a", (DeclaredInterest(name="MIGRATIONS and developpement"),)),
        Declaration("b", (DeclaredInterest(registration_number="ma rc 4242"),)),
        Declaration("c", (DeclaredInterest(name="Someone Else", registration_number="Z9"),)),
        Declaration("d"),
    ]
    assert eligible_assessors(ps[0], ["a", "b", "c", "d"], decls) == ["c", "d"]
    assert assign_assessors(ps, ["a", "b", "c", "d"], decls) == {"P-1": ["c", "d"]}


def test_declarations_of_one_assessor_are_merged():
    p = proposals(1)[0]
    decls = [Declaration("a"), Declaration("a", (DeclaredInterest(name="Partner 1"),))]
    assert eligible_assessors(p, ["a"], decls) == []


def test_most_constrained_proposal_is_served_first():
    ps = proposals(2)
    decls = [Declaration("a"), Declaration("b"), Declaration("c", (DeclaredInterest(name="Lead 1"),))]
    result = assign_assessors(ps, ["a", "b", "c"], decls, {}, k=2)
    assert result["P-1"] == ["a", "b"] and result["P-2"] == ["c", "a"]


def test_not_enough_assessors():
    decls = [Declaration("a"), Declaration("b", (DeclaredInterest(registration_number="R2"),))]
    with pytest.raises(Conflict) as exc:
        assign_assessors(proposals(2), ["a", "b", "c"], decls, {}, k=2)
    assert exc.value.rule == "assessment.not_enough_assessors"
    assert exc.value.details == [{"proposal_id": "P-2", "eligible": 1, "needed": 2}]


def test_input_errors():
    with pytest.raises(InvalidInput):
        assign_assessors(proposals(1), ["a"], declared("a"), {}, k=0)
    with pytest.raises(InvalidInput):
        assign_assessors(proposals(1) * 2, ["a", "b"], declared("a", "b"), {})


def test_top_up_counts_assessors_already_on_a_proposal_and_never_repeats_them():
    ps = proposals(2)
    result = assign_assessors(
        ps, ["a", "b", "c"], declared("a", "b", "c"), {"a": 1, "b": 1}, k=2, assigned={"P-1": ["a", "b"], "P-2": ["a"]}
    )
    assert result == {"P-1": [], "P-2": ["c"]}


def test_a_third_assessor_is_the_least_loaded_free_of_conflicts():
    p = make_proposal(id="P-1", applicants=(lead(name="Lead 1"), partner(name="Partner 1")))
    decls = [
        Declaration("a"),
        Declaration("b"),
        Declaration("c", (DeclaredInterest(name="Partner 1"),)),
        Declaration("d"),
        Declaration("e"),
    ]
    result = assign_assessors(
        [p], ["a", "b", "c", "d", "e"], decls, {"d": 4, "e": 2}, k=3, assigned={"P-1": ["a", "b"]}
    )
    assert result == {"P-1": ["e"]}


def test_no_third_assessor_available():
    with pytest.raises(Conflict) as exc:
        assign_assessors(proposals(1), ["a", "b"], declared("a", "b"), {}, k=3, assigned={"P-1": ["a", "b"]})
    assert exc.value.details == [{"proposal_id": "P-1", "eligible": 2, "needed": 3}]
