"""What a person's text may hold: e-mail addresses normalised and checked, names without hidden controls.

Each check returns the value to keep or raises ``ValueError`` with a short sentence
(pydantic turns it into the 400's ``problem``).  ``email_validator`` (the library
pydantic's ``EmailStr`` uses) is imported at first use; its DNS check stays off.
"""

import unicodedata

# Bidi embeddings, overrides and isolates, and the invisible direction marks: they
# make a name or an address display as something other than what is stored.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Letters of other scripts that look like Latin ones: a domain label made only of
# them (``аррӏе.com``, all Cyrillic) reads as a Latin name it is not.
LATIN_LOOKALIKES = frozenset("авекмнорстухѕіјһӏԁԛԝүаеорсхαεικνορτυχ")
# Scripts that are written together (Japanese): one script for the check.
_SAME_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK"}


def plain_text(value: str, *, line_breaks: bool = False) -> str:
    """``value`` unless it holds a control character (tab and line breaks too, unless ``line_breaks``)
    or a bidirectional control; raises ``ValueError``."""
    allowed = "\t\n\r" if line_breaks else ""
    for char in value:
        if char in BIDI_CONTROLS:
            raise ValueError("must not contain text direction controls")
        if unicodedata.category(char) == "Cc" and char not in allowed:
            raise ValueError("must not contain control characters")
    return value


def email_address(value: str) -> str:
    """``value`` as one form per mailbox: compatibility characters folded (full-width letters
    become ASCII), the domain in lower case and IDNA form; raises ``ValueError`` for what
    ``email_validator`` refuses (invisible characters among it), for a part that mixes
    scripts (``gmаil.com`` with a Cyrillic а), and for a domain label made only of Latin
    look-alikes.  Compare the result ignoring letter case.
    """
    from email_validator import EmailNotValidError, validate_email

    folded = unicodedata.normalize("NFKC", value)
    try:
        checked = validate_email(folded, check_deliverability=False)
    except EmailNotValidError:
        # email-validator's own sentence names the flaw in its words; the API says it in ours.
        raise ValueError("is not an e-mail address such as siti@example.co.id") from None
    local, _, domain = checked.normalized.rpartition("@")
    if len(_scripts(local)) > 1:
        raise ValueError("is not an e-mail address: its name mixes letters of different scripts")
    for label in domain.split("."):
        scripts = _scripts(label)
        if len(scripts) > 1:
            raise ValueError("is not an e-mail address: its domain mixes letters of different scripts")
        letters = [c for c in label if c.isalpha()]
        if scripts - {"LATIN"} and all(c in LATIN_LOOKALIKES for c in letters):
            raise ValueError("is not an e-mail address: its domain imitates Latin letters")
    return checked.normalized


def _scripts(text: str) -> set[str]:
    names = (unicodedata.name(c, "UNKNOWN").split(" ")[0] for c in text if c.isalpha())
    return {_SAME_SCRIPT.get(name, name) for name in names}
