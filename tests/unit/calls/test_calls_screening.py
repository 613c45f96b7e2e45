import pytest

from calls_builders import lead, make_proposal, partner
from services.calls.domain import ExclusionList, normalise_name, normalise_registration
from services.common.values.errors import InvalidInput

CSV = """name,registration_number,reason
"Association Marocaine Solidarité ASBL",,early warning W5
,FR-W123456789,exclusion decision 2007/12
"S.A.R.L. Transferts Rapides & Cie",MA 99 001,fraud
"""


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Association Marocaine Solidarité", "association marocaine solidarite"),
        ("  ASSOCIATION   marocaine-solidarite, asbl ", "association marocaine solidarite"),
        ("S.A.R.L. Transferts Rapides & Cie", "transferts rapides"),
        ("Migranten e.V.", "migranten"),
        ("Straße GmbH", "strasse"),
        ("Bread and Co Ltd.", "bread"),
        ("Femmes & Migration", "femmes and migration"),
        ("ASBL", ""),
        ("", ""),
    ],
)
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


def test_generic_words_are_kept():
    assert normalise_name("Association Femmes et Migration") != normalise_name("Femmes et Migration")


def test_legal_forms_dropped_only_at_the_ends():
    assert normalise_name("Banque SA Populaire") == "banque sa populaire"


def test_normalise_registration():
    assert normalise_registration(" fr-w 123.456/789 ") == "frw123456789"
    assert normalise_registration(None) == ""


def test_from_csv_reads_entries():
    lst = ExclusionList.from_csv("\ufeff" + CSV)
    assert len(lst) == 3
    assert lst.entries[1].registration_number == "FR-W123456789" and lst.entries[1].line == 3
    assert lst.entries[0].reason == "early warning W5"


def test_reason_column_is_optional_and_header_case_insensitive():
    lst = ExclusionList.from_csv("Name , Registration_Number\nFoo Ltd,\n\n,123\n")
    assert [(e.name, e.registration_number, e.reason) for e in lst.entries] == [("Foo Ltd", "", ""), ("", "123", "")]


@pytest.mark.parametrize(
    "text, field",
    [
        ("", "header"),
        ("name,reason\nFoo,bar\n", "header"),
        ("name,registration_number\n,\nASBL,--\n", "line 3"),
    ],
)
def test_from_csv_errors(text, field):
    with pytest.raises(InvalidInput) as exc:
        ExclusionList.from_csv(text)
    assert field in exc.value.errors


def test_screen_matches_by_name_and_by_registration_number():
    lst = ExclusionList.from_csv(CSV)
    proposal = make_proposal(
        applicants=(
            lead(registration_number="fr w123456789"),
            partner(name="ASSOCIATION MAROCAINE SOLIDARITE", registration_number="other"),
            partner(name="Transferts rapides SARL", registration_number="MA-99-001"),
        )
    )
    hits = lst.screen(proposal)
    assert [(h.applicant_index, h.matched_on, h.entry.line) for h in hits] == [
        (0, ("registration_number",), 3),
        (1, ("name",), 2),
        (2, ("name", "registration_number"), 4),
    ]
    assert hits[2].to_dict()["reason"] == "fraud"


def test_screen_clean_proposal_and_blank_numbers_never_match():
    lst = ExclusionList.from_csv("name,registration_number\nSomeone Else,\n")
    proposal = make_proposal(applicants=(lead(registration_number=""), partner(registration_number="")))
    assert lst.screen(proposal) == []


def test_an_unreadable_exclusion_file_is_invalid_input():
    import pytest
    from services.calls.domain import ExclusionList
    from services.common.values.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        ExclusionList.from_csv('name,registration_number\n"' + "x" * 200_000 + '",1\n')
    assert "csv" in refused.value.errors
