"""The kit's data protection: one notion of "the same person", inert text for files, masks by role, input free
of control characters, logs free of e-mail addresses and IBANs."""

import io
import json
import logging
from types import SimpleNamespace

import pytest
from openpyxl import Workbook, load_workbook

from services.common.launch.logs import JsonFormatter, PersonalDataRedaction
from services.common.security import roles
from services.common.security.identity import canonical_user, require_second_person, same_person
from services.common.security.privacy import mask_email, mask_iban, redact, redact_text
from services.common.service.entrypoints import load_input, unstorable_text
from services.common.values.errors import Conflict, InvalidInput
from services.common.values.fields import Text
from services.common.values.inert import clean_text, formula_like, inert_text, text_cell

IBAN = "MA64011519000001205000534921"


# --- one person, however the name is written -------------------------------------------------------------------
@pytest.mark.parametrize("other", ["farid", "Farid", "FARID", " farid ", "ＦＡＲＩＤ", "farid\u00a0"])
def test_the_same_person_however_the_name_is_written(other):
    assert canonical_user(other) == "farid"
    assert same_person("farid", other)


def test_different_people_and_empty_names_are_not_the_same_person():
    assert not same_person("farid", "farida")
    assert not same_person("", "")  # nobody is not a person: never "the same"
    assert canonical_user("Straße") == canonical_user("STRASSE")  # case folding, not lower()


def test_a_second_person_is_required_by_a_named_rule():
    with pytest.raises(Conflict) as err:
        require_second_person("organisation.four_eyes", "farid", "Farid", "farid registered it")
    assert err.value.rule == "organisation.four_eyes"
    require_second_person("organisation.four_eyes", "farid", "claire", "never raised")


# --- inert text -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+33 1 23", "-2+3", "@SUM(A1)", "\tindent", "\r=1+1"]
)
def test_formula_like_text_is_quoted_for_csv(text):
    assert formula_like(text)
    assert inert_text(text) == "'" + text


@pytest.mark.parametrize("value", ["-1234.56", "+12", "-0.5", "1e5", "Projet de co-développement", "", 42, None])
def test_numbers_and_ordinary_text_stay_as_they_are(value):
    assert inert_text(value) == value


def test_control_characters_are_removed_but_tab_lf_cr_kept():
    assert clean_text("a\x0bb\x00c\x1b[31md\x7f\x85e\tf\ng\rh") == "abc[31mde\tf\ng\rh"
    assert inert_text("\x0b=1+1") == "'=1+1"  # removed first, then judged


def test_xlsx_text_cells_are_never_formulas(tmp_path):
    book = Workbook()
    sheet = book.active
    values = ['=HYPERLINK("http://evil","click")', "@x", "-2+3", "plain\x0btext", "+1"]
    for row, value in enumerate(values, start=1):
        text_cell(sheet.cell(row=row, column=1), value)
    sheet.cell(row=10, column=1, value="=SUM(A1:A2)")  # a formula the report means stays one
    path = tmp_path / "t.xlsx"
    book.save(path)
    read = load_workbook(path).active
    for row, value in enumerate(values, start=1):
        cell = read.cell(row=row, column=1)
        assert cell.data_type == "s" and cell.value == clean_text(value)
        assert cell.quotePrefix == formula_like(clean_text(value))
    assert read.cell(row=10, column=1).data_type == "f"


# --- control characters refused at input ------------------------------------------------------------------------
def test_control_characters_are_refused_at_input_naming_the_field():
    assert unstorable_text({"title": "a\x0bb", "applicants": [{"name": "ok\x1b"}], "note": "tab\tLF\nCR\r"}) == {
        "title": ["must not contain control characters (other than tab, LF, CR)"],
        "applicants.0.name": ["must not contain control characters (other than tab, LF, CR)"],
    }

    from marshmallow import Schema

    class One(Schema):
        title = Text(200)

    with pytest.raises(InvalidInput) as err:
        load_input(One(), {"title": "Développement\x0clocal"})
    assert list(err.value.errors) == ["title"]
    assert load_input(One(), {"title": "\u202edlrow olleh \u200f"}) == {"title": "\u202edlrow olleh \u200f"}


# --- masks by role ----------------------------------------------------------------------------------------------
def test_masks_keep_country_check_digits_last_four_and_the_domain():
    assert mask_iban(IBAN) == "MA64 **** **** 4921"
    assert mask_iban("MA64 0115 1900 0001 2050 0053 4921") == "MA64 **** **** 4921"
    assert mask_email("amina.benali@oujda-jeunes.example.org") == "a***@oujda-jeunes.example.org"
    assert mask_iban(None) is None and mask_email(None) is None


def _as(*role_names):
    return SimpleNamespace(user="someone", roles=list(role_names))


RESULT = {
    "organisation": {"iban": IBAN, "legal_name": "Association"},
    "applicants": [{"email": "amina@example.org", "name": "Amina"}],
    "deliveries": [{"recipient": "amina@example.org"}],
    "iban_shared_with": [{"organisation_id": "o-2"}],
}


@pytest.mark.parametrize("role", sorted(roles.READERS))
def test_full_ibans_only_for_finance_and_auditors_addresses_only_for_who_writes_to_applicants(role):
    seen = redact(RESULT, _as(role))
    full_iban = role in (roles.FINANCE_OFFICER, roles.FINANCE_APPROVER, roles.AUDITOR)
    assert seen["organisation"]["iban"] == (IBAN if full_iban else "MA64 **** **** 4921")
    addresses = role == roles.PM
    assert seen["applicants"][0]["email"] == ("amina@example.org" if addresses else "a***@example.org")
    assert seen["deliveries"][0]["recipient"] == ("amina@example.org" if addresses else "a***@example.org")
    assert seen["iban_shared_with"] == RESULT["iban_shared_with"] and seen["applicants"][0]["name"] == "Amina"
    assert RESULT["organisation"]["iban"] == IBAN  # the original is not modified


def test_a_service_identity_sees_no_personal_data():
    seen = redact(RESULT, _as("service:reporting"))
    assert seen["organisation"]["iban"] == "MA64 **** **** 4921" and "***" in seen["applicants"][0]["email"]


def test_assessor_only_means_no_other_reading_role():
    assert roles.assessor_only([roles.ASSESSOR])
    assert not roles.assessor_only([roles.ASSESSOR, roles.PM])
    assert not roles.assessor_only([roles.COMMITTEE])


# --- the logs ---------------------------------------------------------------------------------------------------
def test_log_lines_carry_neither_addresses_nor_ibans():
    assert (
        redact_text(f"sent to amina@example.org, account {IBAN} / MA64 0115 1900 0001 2050 0053 4921")
        == "sent to a***@example.org, account MA64 **** **** 4921 / MA64 **** **** 4921"
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PersonalDataRedaction())
    logger = logging.getLogger("test.data_protection")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("notification %s sent to %s for %s", "n-1", "amina@example.org", IBAN)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "notification n-1 sent to a***@example.org for MA64 **** **** 4921\n"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_traceback_carries_neither_addresses_nor_ibans(fmt):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PersonalDataRedaction())
    handler.setFormatter(JsonFormatter("grants") if fmt == "json" else logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.data_protection.traceback")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"bank account {IBAN} of amina@example.org rejected")
        except ValueError:
            logger.exception("payment failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "ValueError: bank account MA64 **** **** 4921 of a***@example.org rejected" in (
        json.loads(written)["exception"] if fmt == "json" else written
    )
    assert "amina@" not in written and IBAN not in written and IBAN.replace(" ", "") not in written
