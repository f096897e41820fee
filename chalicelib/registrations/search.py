"""Staff search, ``GET /registrations?q=``: what kind of thing ``q`` is, and the value to look for.

- an e-mail address (it has an ``@``): the whole address, in any letter case;
- a phone number (only digits, spaces, ``+``, ``-``, ``.``, parentheses; 8 digits or more):
  normalised as on create, so ``0812-3456-7890``, ``+62 812 3456 7890`` and ``6281234567890``
  find the same registration;
- anything else: part of the name, in any letter case, at least ``MIN_NAME_PART``
  characters (``pg_trgm`` needs three to use its index).

Each kind has its own SQL statement (``repository``) and its own index (migration 010).
"""

import re
from dataclasses import dataclass
from enum import StrEnum

MIN_NAME_PART = 3
_PHONE_LIKE = re.compile(r"^[\d\s+().-]+$")


class SearchKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    NAME = "name"


@dataclass(frozen=True)
class Search:
    kind: SearchKind
    value: str  # E.164 for a phone; the address for an e-mail; a LIKE pattern for a name


def parse(q: str) -> Search:
    """What ``q`` asks for; ``ValueError`` (said to the client as the problem with ``query.q``) otherwise."""
    text = q.strip()
    if "@" in text:
        return Search(SearchKind.EMAIL, text)
    if _PHONE_LIKE.match(text) and sum(c.isdigit() for c in text) >= 8:
        from chalicelib.registrations.models import normalise_phone

        digits = re.sub(r"\D", "", text)
        # As typed on create (0812…, +62 812…), or the E.164 digits without their + (6281…).
        for candidate in (text, f"+{digits}"):
            try:
                return Search(SearchKind.PHONE, normalise_phone(candidate))
            except ValueError:
                continue
        raise ValueError("looks like a phone number but is not an Indonesian mobile number")
    if len(text) < MIN_NAME_PART:
        raise ValueError(f"a part of a name needs at least {MIN_NAME_PART} characters")
    return Search(SearchKind.NAME, f"%{_escape_like(text)}%")


def _escape_like(text: str) -> str:
    # Backslash is LIKE's escape character: the client's % and _ are literal.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
