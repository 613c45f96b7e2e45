"""One notion of "the same person" for every four-eyes rule.

User names reach the services from tokens (`preferred_username`), typed by people and by identity providers that
do not all normalise them: `farid`, `Farid`, `ＦＡＲＩＤ` (full width) and `farid ` are one person. Every rule that
needs a second person (approving a payment, validating a bank account, approving an amendment that raises an
award, accepting the report that unlocks a tranche) compares `canonical_user` of both names — never the raw
strings — and refuses with its own rule name (`<entity>.four_eyes`).
"""

import unicodedata

from ..values.errors import Conflict


def canonical_user(name) -> str:
    """NFKC, case-folded (then NFKC again: case folding can denormalise), surrounding space removed."""
    text = unicodedata.normalize("NFKC", str(name or ""))
    return unicodedata.normalize("NFKC", text.casefold()).strip()


def same_person(a, b) -> bool:
    return bool(canonical_user(a)) and canonical_user(a) == canonical_user(b)


def require_second_person(rule: str, first, second, reason: str, details: list[dict] | None = None) -> None:
    """Conflict(rule) when `second` is the same person as `first` (the four-eyes principle)."""
    if same_person(first, second):
        raise Conflict(rule, reason, details)
