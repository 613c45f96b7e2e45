import pytest

from services.common.values.errors import InvalidInput
from services.grants.domain import (
    IBAN_LENGTHS,
    Organisation,
    format_iban,
    iban_checksum_ok,
    validate_bic,
    validate_iban,
)

VALID = [  # published example IBANs of EU and programme countries
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "BE68539007547034",
    "NL91ABNA0417164300",
    "IT60X0542811101000000123456",
    "ES9121000418450200051332",
    "GR1601101250000000012300695",
    "MT84MALT011000012345MTLCAST001S",
    "TN5910006035183598478831",
    "GE29NB0000000101904917",
    "MD24AG000225100013104168",
    "EG380019000500000000263180002",
    "MA64011519000001205000534921",
]
EU_27_2008 = "AT BE BG CY CZ DE DK EE ES FI FR GB GR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()


@pytest.mark.parametrize("iban", VALID)
def test_valid_ibans(iban):
    assert validate_iban(iban) == iban


def test_normalised_from_the_paper_form():
    assert validate_iban("  iban de89 3704 0044 0532 0130 00 ") == "DE89370400440532013000"
    assert format_iban("DE89370400440532013000") == "DE89 3704 0044 0532 0130 00"


def test_every_eu_member_state_has_a_length():
    assert set(EU_27_2008) <= set(IBAN_LENGTHS)


def reason(iban):
    with pytest.raises(InvalidInput) as err:
        validate_iban(iban)
    return " ".join(err.value.errors["iban"])


def test_one_mistyped_digit_fails_the_checksum():
    assert "checksum" in reason("DE89370400440532013001")
    assert "checksum" in reason("MA64011519000001205000534922")


def test_swapped_check_digits_fail_the_checksum():
    assert "checksum" in reason("DE98370400440532013000")
    assert iban_checksum_ok("DE89370400440532013000")


def test_wrong_length_for_the_country():
    assert "22 characters" in reason("DE8937040044053201300")
    assert "24 characters" in reason("TN59100060351835984788310")


def test_country_without_iban():
    assert "not a country that uses IBAN" in reason("NG12345678901234567890")


@pytest.mark.parametrize("iban", ["", None, "DE89-3704-0044", "89DE370400440532013000", "D"])
def test_malformed(iban):
    with pytest.raises(InvalidInput) as err:
        validate_iban(iban)
    assert "iban" in err.value.errors


def test_bic():
    assert validate_bic("deutdeff") == "DEUTDEFF"
    assert validate_bic("DEUTDEFF500") == "DEUTDEFF500"
    with pytest.raises(InvalidInput):
        validate_bic("DEUT1EFF")


def test_organisation_normalises_and_collects_every_error():
    org = Organisation(
        "Association Migrations et Développement",
        "RC-1234",
        "ma",
        "MA64 0115 1900 0001 2050 0053 4921",
        "Jamal Lahlou",
        bic="bcmamamc",
    )
    assert (org.country, org.iban, org.bic, org.account_validated) == (
        "MA",
        "MA64011519000001205000534921",
        "BCMAMAMC",
        False,
    )
    with pytest.raises(InvalidInput) as err:
        Organisation("", "RC-1", "Morocco", "MA00", "")
    assert {"legal_name", "country", "iban", "signatory"} <= set(err.value.errors)


def test_account_validation_is_lost_when_the_account_changes():
    org = Organisation("ONG", "R-1", "TN", "TN5910006035183598478831", "A. Ben Ali").validate_account()
    assert org.account_validated
    changed = org.change_account("DE89370400440532013000")
    assert not changed.account_validated
    with pytest.raises(InvalidInput):
        Organisation("ONG", "R-1", "GH", None, "K. Mensah").validate_account()


def test_an_account_shared_with_another_organisation_is_validated_only_with_a_reason():
    from services.common.values.errors import Conflict
    from services.grants.domain import check_shared_account

    other = {
        "organisation_id": "o-2",
        "legal_name": "Réseau Diaspora Oujda",
        "country": "MA",
        "registration_number": "MA-1",
    }
    with pytest.raises(Conflict) as refused:
        check_shared_account("MA64011519000001205000534921", [other], None)
    assert (
        refused.value.rule == "organisation.iban_shared" and "Réseau Diaspora Oujda (MA MA-1)" in refused.value.reason
    )
    assert "MA64 0115 1900 0001 2050 0053 4921" in refused.value.reason and refused.value.details == [other]
    with pytest.raises(Conflict):
        check_shared_account("MA64011519000001205000534921", [other], "   ")
    check_shared_account("MA64011519000001205000534921", [other], "the association's account held by its federation")
    check_shared_account("MA64011519000001205000534921", [], None)
