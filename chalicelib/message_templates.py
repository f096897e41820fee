"""Every WhatsApp message template the code sends, defined once, as data.

A template must exist, exactly like this (name, language, category, body with its
numbered parameters), in the WhatsApp Business Account before the first message can
go out: ``make whatsapp-templates`` prints each one as the body of the Graph API's
``POST /{business-account-id}/message_templates`` request, and ``--apply`` posts them.
The producers build a send's components with ``Template.components``; the sender
checks each send against its template (``Template.problems``) before calling WhatsApp.
"""

import re
from dataclasses import dataclass
from typing import Any, Literal

Category = Literal["AUTHENTICATION", "UTILITY", "MARKETING"]
_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


@dataclass(frozen=True)
class Template:
    """One message template; ``body`` numbers its parameters ``{{1}}``, ``{{2}}``, … in order."""

    name: str
    language: str
    category: Category
    body: str
    examples: tuple[str, ...]
    # AUTHENTICATION only: Meta writes the body itself (``body`` is the text it shows, for
    # reference); the template has a copy-code button and says when the code expires.
    copy_code_button: str | None = None
    code_expiration_minutes: int | None = None

    def __post_init__(self) -> None:
        numbers = [int(n) for n in _PLACEHOLDER.findall(self.body)]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"template {self.name}: parameters must be {{{{1}}}}..{{{{n}}}} in order, not {numbers}")
        if len(self.examples) != len(numbers):
            raise ValueError(f"template {self.name}: {len(numbers)} parameters, {len(self.examples)} examples")
        if (self.category == "AUTHENTICATION") != (self.copy_code_button is not None):
            raise ValueError(f"template {self.name}: a copy-code button is for AUTHENTICATION templates only")

    @property
    def parameter_count(self) -> int:
        return len(self.examples)

    def components(self, *values: str) -> list[dict[str, Any]]:
        """The ``components`` of a send with these parameter values (an authentication code twice: body and button)."""
        if len(values) != self.parameter_count:
            raise ValueError(f"template {self.name} takes {self.parameter_count} parameters, not {len(values)}")
        text = [{"type": "text", "text": value} for value in values]
        components: list[dict[str, Any]] = [{"type": "body", "parameters": text}]
        if self.copy_code_button is not None:
            components.append({"type": "button", "sub_type": "url", "index": "0", "parameters": text[:1]})
        return components

    def problems(self, components: Any, language: str) -> list[str]:
        """What makes a send's ``components`` and ``language`` not fit this template (empty when it fits)."""
        found = []
        if language != self.language:
            found.append(f"language {language!r}, the template is {self.language!r}")
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            return [*found, "components must be a list of objects"]
        bodies = [c for c in components if c.get("type") == "body"]
        parameters = bodies[0].get("parameters") if len(bodies) == 1 else None
        if not isinstance(parameters, list) or len(parameters) != self.parameter_count:
            count = len(parameters) if isinstance(parameters, list) else 0
            found.append(f"{count} body parameters, the template has {self.parameter_count}")
        elif not all(isinstance(p, dict) and p.get("type") == "text" and p.get("text") for p in parameters):
            found.append("every body parameter must be non-empty text")
        buttons = [c for c in components if c.get("type") == "button"]
        if len(buttons) != (1 if self.copy_code_button else 0):
            found.append(f"{len(buttons)} buttons, the template has {1 if self.copy_code_button else 0}")
        return found

    def create_request(self) -> dict[str, Any]:
        """The JSON body of ``POST /{business-account-id}/message_templates`` that creates this template."""
        request: dict[str, Any] = {"name": self.name, "language": self.language, "category": self.category}
        if self.category == "AUTHENTICATION":
            request["components"] = [
                {"type": "BODY", "add_security_recommendation": True},
                {"type": "FOOTER", "code_expiration_minutes": self.code_expiration_minutes},
                {
                    "type": "BUTTONS",
                    "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": self.copy_code_button}],
                },
            ]
        else:
            request["components"] = [
                {"type": "BODY", "text": self.body, "example": {"body_text": [list(self.examples)]}}
            ]
        return request


REGISTRATION_OTP = Template(
    name="registration_otp",
    language="id",
    category="AUTHENTICATION",
    body="*{{1}}* adalah kode verifikasi Anda. Demi keamanan, jangan bagikan kode ini.",
    examples=("123456",),
    copy_code_button="Salin kode",
    code_expiration_minutes=10,
)

CUSTOMER_CREATED = Template(
    name="customer_created",
    language="id",
    category="UTILITY",
    body=(
        "Halo {{1}}, pendaftaran Anda telah disetujui. Nomor pelanggan Anda {{2}} dan nomor tiket "
        "pemasangan {{3}}. Teknisi kami akan menghubungi Anda untuk menjadwalkan pemasangan."
    ),
    examples=("Budi Santoso", "CUS-0000123", "INS-0000456"),
)

# To the phone of an active registration when someone (maybe its registrant) tries to
# register again with its phone or e-mail: the public 409 says nothing, this says the rest.
REGISTRATION_STATUS = Template(
    name="registration_status",
    language="id",
    category="UTILITY",
    body=(
        "Ada yang mencoba mendaftar dengan nomor atau e-mail Anda. Pendaftaran Anda {{1}} berstatus "
        "{{2}} (per {{3}}). Jika itu bukan Anda, abaikan pesan ini."
    ),
    examples=("3f2b8c1e-5d4a-4c1b-9e7f-0a1b2c3d4e5f", "pending_verification", "2026-11-30 10:15 WIB"),
)

TEMPLATES: tuple[Template, ...] = (REGISTRATION_OTP, CUSTOMER_CREATED, REGISTRATION_STATUS)
TEMPLATE_BY_NAME: dict[str, Template] = {template.name: template for template in TEMPLATES}
