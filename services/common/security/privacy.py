"""Personal and bank data only for the roles that need them (least privilege on data).

Every operation's result passes through `redact(result, identity)` in the kit (`@operation`), whatever service and
operation it is: a value under the key `iban` is shown in full only to the roles of `roles.FULL_BANK_DETAILS`
(those who pay, validate accounts or audit), masked (`MA64 **** **** 4921`: country, check digits and the last
four) for everyone else; a value under `email` (applicants' and contacts' addresses) or `recipient` (whom an
e-mail went to) only to the roles of `roles.CONTACT_DETAILS` (those who write to applicants), masked
(`a***@example.org`) for everyone else. The same masks keep both out of the logs (`redact_text`, a filter of the
kit's log handler).
"""

import re
from collections.abc import Callable
from typing import TypeVar, overload

from .roles import CONTACT_DETAILS, FULL_BANK_DETAILS

MASKED_KEYS = {"iban": FULL_BANK_DETAILS, "email": CONTACT_DETAILS, "recipient": CONTACT_DETAILS}

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+)")
# an IBAN as people and programs write it: country, check digits, then 10-30 letters/digits, maybe grouped by 4
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}\b")


_T = TypeVar("_T")


# a string comes back masked, anything else (None, a number) as it was
@overload
def mask_iban(iban: str) -> str: ...
@overload
def mask_iban(iban: _T) -> _T: ...
def mask_iban(iban: object) -> object:
    if not isinstance(iban, str) or not iban:
        return iban
    compact = "".join(iban.split())
    if len(compact) <= 8:
        return "*" * len(compact)
    return f"{compact[:4]} **** **** {compact[-4:]}"


@overload
def mask_email(address: str) -> str: ...
@overload
def mask_email(address: _T) -> _T: ...
def mask_email(address: object) -> object:
    if not isinstance(address, str) or "@" not in address:
        return address
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


_MASKS: dict[str, Callable[[str], str]] = {"iban": mask_iban, "email": mask_email, "recipient": mask_email}


def hidden_keys(roles) -> set[str]:
    """The keys whose values these roles see masked."""
    held = set(roles or ())
    return {key for key, allowed in MASKED_KEYS.items() if not held & allowed}


def redact(value, identity):
    """The result as this identity may see it (a new structure when anything is masked; the same otherwise)."""
    hidden = hidden_keys(getattr(identity, "roles", ()))
    return _walk(value, hidden) if hidden else value


def _walk(value, hidden: set[str]):
    if isinstance(value, dict):
        return {k: (_MASKS[k](v) if k in hidden and isinstance(v, str) else _walk(v, hidden)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, hidden) for v in value]
    return value


def redact_text(text: str) -> str:
    """A log line without e-mail addresses or IBANs in clear."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _IBAN.sub(lambda m: mask_iban(m.group(0)), text)
