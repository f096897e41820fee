"""`make whatsapp-templates`: every template the code sends, as the Graph API request that creates it.

    python scripts/whatsapp_templates.py           # print each create request's JSON body
    python scripts/whatsapp_templates.py --apply   # POST them

Prints one JSON document per template (``chalicelib.whatsapp_templates.TEMPLATES``),
the body of ``POST {WHATSAPP_API_URL}/{WHATSAPP_BUSINESS_ACCOUNT_ID}/message_templates``.
``--apply`` posts each with ``WHATSAPP_TOKEN`` (a system user's token with
``whatsapp_business_management``); without ``WHATSAPP_API_URL`` it posts to the local
sink of ``make run`` (``http://127.0.0.1:$WHATSAPP_PORT/v21.0``).  Exit 0 when every
template was accepted, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.message_templates import TEMPLATES

LOCAL_ACCOUNT_ID = "100000000000009"


def main(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="scripts/whatsapp_templates.py", description=__doc__.splitlines()[0])
    parser.add_argument("--apply", action="store_true", help="POST each template to the Graph API (or the local sink)")
    args = parser.parse_args(argv)
    if not args.apply:
        for template in TEMPLATES:
            print(json.dumps(template.create_request(), indent=2, ensure_ascii=False))
        return 0
    local = not env.get("WHATSAPP_API_URL")
    api_url = env.get("WHATSAPP_API_URL") or f"http://127.0.0.1:{env.get('WHATSAPP_PORT', '8025')}/v21.0"
    account = env.get("WHATSAPP_BUSINESS_ACCOUNT_ID") or (LOCAL_ACCOUNT_ID if local else "")
    token = env.get("WHATSAPP_TOKEN") or ("local" if local else "")
    if not account or not token:
        print("set WHATSAPP_BUSINESS_ACCOUNT_ID and WHATSAPP_TOKEN (or unset WHATSAPP_API_URL for the local sink)")
        return 2
    url = f"{api_url.rstrip('/')}/{account}/message_templates"
    ok = True
    for template in TEMPLATES:
        status, answer = _post(url, token, template.create_request())
        ok = ok and 200 <= status < 300
        print(json.dumps({"template": template.name, "language": template.language, "http": status, "answer": answer}))
    return 0 if ok else 1


def _post(url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 (an http(s) URL from the operator's settings)
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")[:300]
    except OSError as error:
        return 0, f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    sys.exit(main())
