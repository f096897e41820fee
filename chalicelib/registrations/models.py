"""Request bodies as pydantic models: what may come in, and nothing else (``extra="forbid"``).

No model has a ``status`` field: a registration never takes its status from a body.
"""

import re
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from chalicelib.statuses import RegistrationStatus

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here makes it a 400, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("is not an e-mail address")
    return value


def _indonesian_mobile(value: str) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(value, "ID")
    except phonenumbers.NumberParseException as error:
        raise ValueError("is not a phone number") from error
    kind = phonenumbers.number_type(number)
    mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if number.country_code != 62 or not phonenumbers.is_valid_number(number) or not mobile:
        raise ValueError("is not an Indonesian mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _text(max_length: int, min_length: int = 1) -> type[str]:
    # Stored exactly as sent (no stripping: the documented maxLength is what is checked);
    # required text must hold more than whitespace.
    pattern = r"\S" if min_length else None
    return Annotated[  # type: ignore[return-value]
        str, Field(min_length=min_length, max_length=max_length, pattern=pattern), AfterValidator(_no_nul)
    ]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RegistrationIn(_Body):
    full_name: _text(200)  # type: ignore[valid-type]
    email: Annotated[str, Field(max_length=254), AfterValidator(_no_nul), AfterValidator(_email)]
    phone: Annotated[str, Field(max_length=32), AfterValidator(_no_nul), AfterValidator(_indonesian_mobile)]
    address: _text(500)  # type: ignore[valid-type]
    city: _text(100)  # type: ignore[valid-type]
    package_id: UUID
    notes: _text(1000, 0) | None = None  # type: ignore[valid-type]


class PackageIn(_Body):
    name: _text(100)  # type: ignore[valid-type]
    speed_mbps: Annotated[int, Field(gt=0, le=100_000)]
    monthly_price_idr: Annotated[int, Field(ge=0, le=1_000_000_000)]


class VerifyIn(_Body):
    code: Annotated[str, Field(pattern=r"^\d{6}$")] | None = None


class ScheduleSurveyIn(_Body):
    scheduled_at: AwareDatetime
    surveyor: _text(100)  # type: ignore[valid-type]


class CompleteSurveyIn(_Body):
    feasible: bool
    notes: _text(1000, 0)  # type: ignore[valid-type]


class ReasonIn(_Body):
    reason: _text(500)  # type: ignore[valid-type]


def _iso_8601(value: object) -> object:
    # Outside strict mode pydantic would read "0.5" as a Unix time; a URL gives ISO 8601 or nothing.
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-25T08:00:00+07:00")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]


class ListQuery(BaseModel):
    """``GET /registrations`` query parameters (strings from the URL, hence not strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: RegistrationStatus | None = None
    city: Annotated[str, Field(max_length=100), AfterValidator(_no_nul)] | None = None
    created_from: _QueryTime | None = None
    created_to: _QueryTime | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=200)] | None = None
