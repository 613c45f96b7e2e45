"""Exclusion screening: does any consortium member appear on an exclusion list (e.g. the EC early-warning list)?

Names are compared after normalisation so that spelling noise does not hide a match:
  1. Unicode NFKD, accents dropped ("Développement" -> "developpement"), casefolded ("Straße" -> "strasse");
  2. "&" read as "and"; the dot after a one-letter token removed ("S.A.R.L." -> "sarl", "e.V." -> "ev");
  3. every other run of punctuation or whitespace becomes one space;
  4. legal-form tokens (LEGAL_FORMS: asbl, sarl, ltd, gmbh...) dropped at the start or the end of the name only.
Generic words such as "association", "foundation" or "ong" are kept on purpose: they are often the distinctive part
of a small organisation's name, and dropping them would make "Association Femmes et Migration" match an unrelated
"Femmes et Migration". A hit is a flag for a person to review, not an automatic rejection.
Registration numbers are compared with case, spaces and punctuation removed; an empty number never matches.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

from services.common.values.errors import InvalidInput

LEGAL_FORMS = frozenset(
    {
        "asbl",
        "aisbl",
        "vzw",
        "ivzw",
        "sarl",
        "sa",
        "sas",
        "sarlau",
        "eurl",
        "scs",
        "snc",
        "ltd",
        "limited",
        "llc",
        "inc",
        "incorporated",
        "corp",
        "plc",
        "gmbh",
        "ggmbh",
        "ev",
        "ag",
        "bv",
        "nv",
        "srl",
        "spa",
        "onlus",
        "cic",
        "cio",
        "pvt",
        "co",
        "cie",
    }
)
_PUNCT_RUN = re.compile(r"[\W_]+", re.UNICODE)
_ABBREV_DOT = re.compile(r"(?<=\b\w)\.")  # the dot after a one-letter token: S.A.R.L., e.V.


def normalise_name(name: str) -> str:
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = _ABBREV_DOT.sub("", text)
    tokens = _PUNCT_RUN.sub(" ", text).split()
    dropped = False
    while tokens:
        if tokens[-1] in LEGAL_FORMS:
            tokens.pop()
            dropped = True
        elif dropped and len(tokens) > 1 and tokens[-1] in ("and", "et"):
            tokens.pop()  # "& Co", "et Cie"
        else:
            break
    while tokens and tokens[0] in LEGAL_FORMS:
        tokens.pop(0)
    return " ".join(tokens)


def normalise_registration(number: str | None) -> str:
    if not number:
        return ""
    text = unicodedata.normalize("NFKD", number)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return _PUNCT_RUN.sub("", text)


@dataclass(frozen=True)
class ExclusionEntry:
    name: str
    registration_number: str
    reason: str
    line: int

    @property
    def name_key(self) -> str:
        return normalise_name(self.name)

    @property
    def registration_key(self) -> str:
        return normalise_registration(self.registration_number)


@dataclass(frozen=True)
class Hit:
    """One consortium member matching one list entry; `matched_on` says by what ("name", "registration_number")."""

    applicant_index: int
    applicant_name: str
    matched_on: tuple[str, ...]
    entry: ExclusionEntry

    def to_dict(self) -> dict:
        return {
            "applicant_index": self.applicant_index,
            "applicant_name": self.applicant_name,
            "matched_on": list(self.matched_on),
            "entry_name": self.entry.name,
            "entry_registration_number": self.entry.registration_number,
            "reason": self.entry.reason,
            "line": self.entry.line,
        }


class ExclusionList:
    def __init__(self, entries):
        self.entries = tuple(entries)
        self._by_name: dict[str, list[ExclusionEntry]] = {}
        self._by_number: dict[str, list[ExclusionEntry]] = {}
        for entry in self.entries:
            if entry.name_key:
                self._by_name.setdefault(entry.name_key, []).append(entry)
            if entry.registration_key:
                self._by_number.setdefault(entry.registration_key, []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def from_csv(cls, text: str) -> "ExclusionList":
        """Columns: name, registration_number (either may be blank, not both), reason (optional column)."""
        try:
            return cls._parse(text)
        except csv.Error as exc:  # e.g. a field beyond the csv module's size limit: the file is unreadable
            raise InvalidInput({"csv": [f"not a readable CSV file: {exc}"]}) from None

    @classmethod
    def _parse(cls, text: str) -> "ExclusionList":
        if text.startswith("\ufeff"):
            text = text[1:]
        reader = csv.reader(io.StringIO(text))
        try:
            header = [h.strip().casefold() for h in next(reader)]
        except StopIteration:
            raise InvalidInput({"header": ["the exclusion list is empty: expected a header row"]}) from None
        missing = [c for c in ("name", "registration_number") if c not in header]
        if missing:
            raise InvalidInput({"header": [f"missing column(s) {', '.join(missing)}"]})
        index = {name: header.index(name) for name in ("name", "registration_number", "reason") if name in header}
        entries, errors = [], {}
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            cell = lambda col: row[index[col]].strip() if col in index and index[col] < len(row) else ""
            name, number, reason = cell("name"), cell("registration_number"), cell("reason")
            if not normalise_name(name) and not normalise_registration(number):
                errors[f"line {line}"] = ["needs a name or a registration number"]
                continue
            entries.append(ExclusionEntry(name, number, reason, line))
        if errors:
            raise InvalidInput(errors)
        return cls(entries)

    def match(self, name: str, registration_number: str | None = None) -> list[tuple[ExclusionEntry, tuple]]:
        found: dict[int, tuple[ExclusionEntry, list]] = {}
        for entry in self._by_name.get(normalise_name(name), ()):
            found.setdefault(entry.line, (entry, []))[1].append("name")
        for entry in self._by_number.get(normalise_registration(registration_number), ()):
            found.setdefault(entry.line, (entry, []))[1].append("registration_number")
        return [(entry, tuple(on)) for _, (entry, on) in sorted(found.items())]

    def screen(self, proposal) -> list[Hit]:
        """Every (consortium member, list entry) pair that matches, in applicant then list order."""
        hits = []
        for i, applicant in enumerate(proposal.applicants):
            for entry, on in self.match(applicant.name, applicant.registration_number):
                hits.append(Hit(i, applicant.name, on, entry))
        return hits
