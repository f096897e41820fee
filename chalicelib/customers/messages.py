"""Queue messages as pydantic models: the pinned shapes, and nothing else."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class CreateCustomer(BaseModel):
    """Turn an approved registration into a customer (``customer_worker``'s message, pinned)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["create_customer"]
    registration_id: UUID
    requested_by: str = Field(min_length=1, max_length=200)

    def to_body(self) -> dict[str, str]:
        """The JSON object sent to the queue."""
        return {"type": self.type, "registration_id": str(self.registration_id), "requested_by": self.requested_by}
