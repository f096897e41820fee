"""The one spelling of a JSON object: what services return and the API answers with."""

from typing import Any

Json = dict[str, Any]
