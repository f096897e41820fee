"""Request bodies as pydantic models: what may come in, and nothing else (``extra="forbid"``).

No model has a ``status`` field: a registration never takes its status from a body.
"""

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from chalicelib.registrations import text_checks
from chalicelib.statuses import RegistrationStatus

if TYPE_CHECKING:
    import phonenumbers


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here makes it a 400, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _indonesian_mobile(value: str) -> str:
    import phonenumbers

    number = _parse_phone(value)
    # number_type is UNKNOWN for a number that is not valid: no need to ask is_valid_number too.
    kind = phonenumbers.number_type(number)
    mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if number.country_code != 62 or not mobile:
        raise ValueError("is not an Indonesian mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# How nearly everyone types an Indonesian mobile number: 0812... or +62812..., digits only.
# Read directly, it is what phonenumbers.parse(value, "ID") gives (tests/unit/test_models.py
# checks that), at a fifth of the cost; anything else goes through parse.
_PLAIN_MOBILE = re.compile(r"(?:\+62|0)(8\d{8,11})")


def _parse_phone(value: str) -> "phonenumbers.PhoneNumber":
    import phonenumbers

    plain = _PLAIN_MOBILE.fullmatch(value)
    if plain:
        return phonenumbers.PhoneNumber(country_code=62, national_number=int(plain.group(1)))
    try:
        return phonenumbers.parse(value, "ID")
    except phonenumbers.NumberParseException as error:
        raise ValueError("is not a phone number") from error


def normalise_phone(value: str) -> str:
    """A phone as people type it (``0812…``, ``+62 812…``) as E.164 (``+62812…``); ``ValueError``
    unless it is an Indonesian mobile number.  Staff search normalises with it too."""
    return _indonesian_mobile(value)


def _text(max_length: int, min_length: int = 1, *, line_breaks: bool = False) -> type[str]:
    # Stored exactly as sent (no stripping: the documented maxLength is what is checked);
    # required text must hold more than whitespace, and no text hides control or
    # text-direction characters (a name that displays as something else).
    pattern = r"\S" if min_length else None
    return Annotated[  # type: ignore[return-value]
        str,
        Field(min_length=min_length, max_length=max_length, pattern=pattern),
        AfterValidator(_no_nul),
        AfterValidator(lambda value: text_checks.plain_text(value, line_breaks=line_breaks)),
    ]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RegistrationIn(_Body):
    full_name: _text(200)  # type: ignore[valid-type]
    # Stored as text_checks.email_address normalises it; duplicates compare ignoring case.
    email: Annotated[str, Field(max_length=254), AfterValidator(_no_nul), AfterValidator(text_checks.email_address)]
    phone: Annotated[str, Field(max_length=32), AfterValidator(_no_nul), AfterValidator(_indonesian_mobile)]
    address: _text(500)  # type: ignore[valid-type]
    city: _text(100)  # type: ignore[valid-type]
    package_id: UUID
    notes: _text(1000, 0, line_breaks=True) | None = None  # type: ignore[valid-type]


class PackageIn(_Body):
    name: _text(100)  # type: ignore[valid-type]
    speed_mbps: Annotated[int, Field(gt=0, le=100_000)]
    monthly_price_idr: Annotated[int, Field(ge=0, le=1_000_000_000)]


class VerifyIn(_Body):
    # ASCII digits: pydantic's \d would take Arabic-Indic and other decimal digits too.
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None


# How far ahead a survey may be booked: beyond that, plans change and the slot is lost;
# schedule-survey may move a booked survey (survey_scheduled -> survey_scheduled) later.
MAX_SURVEY_AHEAD = timedelta(days=90)


def _future_within_limit(value: datetime) -> datetime:
    now = datetime.now(UTC)
    if value <= now:
        raise ValueError("must be in the future")
    if value > now + MAX_SURVEY_AHEAD:
        raise ValueError(f"must be within {MAX_SURVEY_AHEAD.days} days from now")
    return value


class ScheduleSurveyIn(_Body):
    scheduled_at: Annotated[AwareDatetime, AfterValidator(_future_within_limit)]
    surveyor: _text(100)  # type: ignore[valid-type]


class CompleteSurveyIn(_Body):
    feasible: bool
    notes: _text(1000, 0, line_breaks=True)  # type: ignore[valid-type]


class ReasonIn(_Body):
    reason: _text(500)  # type: ignore[valid-type]


# A plain date in a query is a day in Indonesia's western time (WIB, UTC+7: Jakarta, Bandung),
# as is a date-time without an offset.
WIB = timezone(timedelta(hours=7), "WIB")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _day_or_moment(value: object, next_day: bool) -> object:
    # Outside strict mode pydantic would read "0.5" as a Unix time; a URL gives ISO 8601 or nothing.
    if not isinstance(value, str):
        return value
    if _ISO_DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError("is not a date that exists") from None
        start = datetime.combine(day, time(), WIB)
        return start + timedelta(days=1) if next_day else start
    if not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date (2026-11-25) or date-time (2026-11-25T08:00:00+07:00)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date-time that exists") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=WIB)


# created_from=2026-11-25: from the start of that day; created_to=2026-11-25: to its end (exclusive bound).
_From = Annotated[AwareDatetime, BeforeValidator(lambda v: _day_or_moment(v, next_day=False))]
_To = Annotated[AwareDatetime, BeforeValidator(lambda v: _day_or_moment(v, next_day=True))]


class ListQuery(BaseModel):
    """``GET /registrations`` query parameters (strings from the URL, hence not strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)] | None = None
    status: RegistrationStatus | None = None
    city: Annotated[str, Field(max_length=100), AfterValidator(_no_nul)] | None = None
    created_from: _From | None = None
    created_to: _To | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=200)] | None = None
