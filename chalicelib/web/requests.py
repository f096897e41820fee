"""Request bodies: refused when empty or too large, then parsed by their pydantic model."""

from typing import TYPE_CHECKING, TypeVar

from chalicelib.errors import BadRequestError, PayloadTooLargeError

if TYPE_CHECKING:
    from pydantic import BaseModel

MAX_BODY_BYTES = 16 * 1024
Model = TypeVar("Model", bound="BaseModel")


def parse_body(raw: bytes | None, model: type[Model]) -> Model:
    """``raw`` as ``model``: raises ``PayloadTooLargeError`` (413), ``BadRequestError`` when empty,
    and pydantic's ``ValidationError`` (400 in ``responses.translate``) for the rest."""
    parse_size(raw)
    return model.model_validate_json(raw or b"")


def parse_size(raw: bytes | None) -> None:
    """Refuse an empty or oversized body before parsing it; pydantic reports the rest."""
    if raw is not None and len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw:
        raise BadRequestError("a JSON object body is required")
