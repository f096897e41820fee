"""The body of ``DELETE /registrations/{id}/personal-data``."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Why the data is erased (the person's request, say).  Stored with the person's own
    # details taken out, so the record of the erasure holds no personal data.
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*\S[^\x00]*$")]
