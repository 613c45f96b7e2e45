"""The organisation register: legal identity, signatory and the bank account the grant is paid to.

IBANs are checked as ISO 13616 says: two-letter country code, two check digits, the national account number
(BBAN) of the country's length, and the mod-97 checksum. Lengths are those of the SWIFT IBAN registry, plus
the national IBAN formats used in programme countries outside that registry (MA, DZ, CV, SN, ML: marked
below). A changed account needs validating again (a finance officer checks the financial identification form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from services.common.values.errors import Conflict, InvalidInput

from ._values import text

# country -> IBAN length (SWIFT IBAN registry)
IBAN_LENGTHS = {
    # EU member states (EU-27 of 2008 plus HR) and the United Kingdom
    "AT": 20,
    "BE": 16,
    "BG": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FR": 27,
    "GB": 22,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IT": 27,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MT": 31,
    "NL": 18,
    "PL": 28,
    "PT": 25,
    "RO": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    # rest of Europe
    "AD": 24,
    "AL": 28,
    "BA": 20,
    "BY": 28,
    "CH": 21,
    "FO": 18,
    "GI": 23,
    "GL": 18,
    "IS": 26,
    "LI": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "NO": 15,
    "RS": 22,
    "SM": 27,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "XK": 20,
    "GE": 22,
    "AZ": 28,
    "KZ": 20,
    # Middle East and Africa
    "AE": 23,
    "BH": 22,
    "EG": 29,
    "IL": 23,
    "IQ": 23,
    "JO": 30,
    "KW": 30,
    "LB": 28,
    "LY": 25,
    "MR": 27,
    "MU": 30,
    "OM": 23,
    "PS": 29,
    "QA": 29,
    "SA": 24,
    "SC": 31,
    "SD": 18,
    "ST": 25,
    "TN": 24,
    "BI": 27,
    "DJ": 27,
    "SO": 23,
    "YE": 30,
    # Americas and Asia
    "BR": 29,
    "CR": 22,
    "DO": 28,
    "GT": 28,
    "LC": 32,
    "SV": 28,
    "VG": 24,
    "NI": 28,
    "FK": 18,
    "PK": 24,
    "TL": 23,
    "MN": 20,
    "RU": 33,
}
# Programme countries with a national IBAN outside the SWIFT registry (same ISO 13616 structure and checksum).
NATIONAL_IBAN_LENGTHS = {"MA": 28, "DZ": 26, "CV": 25, "SN": 28, "ML": 28}
ALL_IBAN_LENGTHS = {**IBAN_LENGTHS, **NATIONAL_IBAN_LENGTHS}

_IBAN_CHARS = re.compile(r"^[A-Z0-9]+$")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")


def iban_checksum_ok(iban: str) -> bool:
    """ISO 13616 / ISO 7064 mod 97-10: move the first four characters to the end, letters to 10..35, mod 97 == 1."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def validate_iban(iban) -> str:
    """Normalise (spaces out, upper case) and check an IBAN; raise InvalidInput({"iban": [reason]})."""
    if not isinstance(iban, str) or not iban.strip():
        raise InvalidInput({"iban": ["is required"]})
    value = "".join(iban.split()).upper()
    if value.startswith("IBAN"):  # the paper form "IBAN DE89 3704 ..."
        value = value[4:]
    if not _IBAN_CHARS.match(value):
        raise _bad("may contain only letters, digits and spaces")
    country = value[:2]
    if len(value) < 5 or not country.isalpha() or not value[2:4].isdigit():
        raise _bad("must start with a two-letter country code and two check digits")
    if country not in ALL_IBAN_LENGTHS:
        raise _bad(f"{country} is not a country that uses IBAN (give the bank account details instead)")
    expected = ALL_IBAN_LENGTHS[country]
    if len(value) != expected:
        raise _bad(f"an IBAN from {country} has {expected} characters, this one has {len(value)}")
    if not iban_checksum_ok(value):
        raise _bad("the check digits do not match (mod-97 checksum failed): a character is probably mistyped")
    return value


def format_iban(iban: str) -> str:
    """Print form, in groups of four: 'DE89 3704 0044 0532 0130 00'."""
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def validate_bic(bic) -> str:
    value = "".join(str(bic).split()).upper() if isinstance(bic, str) else ""
    if not _BIC.match(value):
        raise InvalidInput(
            {
                "bic": [
                    "must be 8 or 11 characters: bank (4 letters), country (2 letters), "
                    "location (2), optional branch (3)"
                ]
            }
        )
    return value


def _bad(reason: str) -> InvalidInput:
    return InvalidInput({"iban": [reason]})


@dataclass(frozen=True)
class Organisation:
    """A registered organisation (a consortium's lead applicant is paid). `account_validated` is set by a
    finance officer once the bank account is proven; changing the account clears it."""

    legal_name: str
    registration_number: str
    country: str
    iban: str | None
    signatory: str
    bic: str | None = None
    account_validated: bool = False

    def __post_init__(self):
        errors = {}
        values = {}
        for name, check in (
            ("legal_name", lambda v: text(v, "legal_name", 300)),
            ("registration_number", lambda v: text(v, "registration_number", 100)),
            ("country", _country),
            ("signatory", lambda v: text(v, "signatory", 200)),
            ("iban", lambda v: None if v is None else validate_iban(v)),
            ("bic", lambda v: None if v in (None, "") else validate_bic(v)),
        ):
            try:
                values[name] = check(getattr(self, name))
            except InvalidInput as exc:
                errors.update(exc.errors)
        if errors:
            raise InvalidInput(errors)
        if self.account_validated and values["iban"] is None:
            raise InvalidInput({"account_validated": ["an account can be validated only with its IBAN"]})
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def change_account(self, iban: str, bic: str | None = None) -> "Organisation":
        """A new bank account: it must be validated again before any payment."""
        return replace(self, iban=iban, bic=bic, account_validated=False)

    def validate_account(self) -> "Organisation":
        if self.iban is None:
            raise InvalidInput({"iban": ["no bank account to validate"]})
        return replace(self, account_validated=True)


def check_shared_account(iban: str, others: list[dict], reason: str | None) -> None:
    """An IBAN that is also another organisation's account is a warning sign (a diverted payment, a shell
    organisation): the finance approver validating it must say why it is right, or it is refused."""
    if others and not (reason or "").strip():
        names = ", ".join(f"{o['legal_name']} ({o['country']} {o['registration_number']})" for o in others)
        raise Conflict(
            "organisation.iban_shared",
            f"the account {format_iban(iban)} is also registered for {names}: "
            f"validate it only if they really share it, giving the reason (shared_iban_reason)",
            others,
        )


def _country(value) -> str:
    if not isinstance(value, str) or len(value.strip()) != 2 or not value.strip().isalpha():
        raise InvalidInput({"country": ["must be an ISO 3166-1 alpha-2 country code"]})
    return value.strip().upper()
