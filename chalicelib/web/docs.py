"""``GET /docs``: the OpenAPI document in Swagger UI, from the app's own copy of its assets.

The assets come from the npm package ``swagger-ui-dist`` (pinned with its integrity in
``package-lock.json``; ``make install`` runs ``npm ci``), linked from ``vendor/swagger-ui/``.
Chalice copies ``vendor/`` to the root of the deployment zip, so in Lambda they sit in
``swagger-ui/`` beside ``chalicelib/``.  Nothing is loaded from a CDN: the page works
offline under ``make run``.

Each asset's URL carries a hash of its content, so it is served with a year's
``Cache-Control: immutable``; the page itself is revalidated, and names the new hashes
after an upgrade.  The files are read at the first request for the page (not at import:
cold start) and kept for the container's life.
"""

import base64
import functools
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

from chalicelib.errors import NotFoundError

LONG_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"
CONTENT_TYPE_BY_ASSET = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
_ROOT = Path(__file__).resolve().parents[2]
# The zip's layout first, then the source tree's.
_FOLDERS = (_ROOT / "swagger-ui", _ROOT / "vendor" / "swagger-ui")
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css?v={css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js?v={js}"></script>
<script>{script}</script>
</body>
</html>
"""
# The page's one inline script, allowed by its hash (and nothing else inline may run).
_SCRIPT = '\nwindow.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
# Staff paste their tokens into this page, so it is served with a strict policy rather than turned
# off in prod (they need it there too): scripts only from this origin and the one inline script
# above by its hash; requests only back to this API (an injected script could not send a token
# elsewhere); no plugins, no <base>, no form posts elsewhere; and no framing (clickjacking).
# Swagger UI sets style attributes and shows data: images, hence those two allowances.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'self' 'sha256-{_SCRIPT_HASH}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)
# Every response under /docs: the policy, and the older headers that say the same to older browsers.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class AssetsMissingError(Exception):
    """The Swagger UI files are not where the app looks: ``npm ci`` has not run (``make install``)."""


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    version: str


def page(title: str = "Registration backend API") -> str:
    """The HTML page; its relative URLs work under any base path (API Gateway's ``/api`` stage too)."""
    assets = _assets()
    return _PAGE.format(
        script=_SCRIPT,
        title=html.escape(title),
        css=assets["swagger-ui.css"].version,
        js=assets["swagger-ui-bundle.js"].version,
    )


def asset(name: str) -> Asset:
    """One of the files the page loads; ``NotFoundError`` for any other name."""
    if name not in CONTENT_TYPE_BY_ASSET:
        raise NotFoundError(f"no such file under /docs: {name!r}")
    return _assets()[name]


@functools.cache
def _assets() -> dict[str, Asset]:
    folder = next((f for f in _FOLDERS if (f / "swagger-ui-bundle.js").is_file()), None)
    if folder is None:
        raise AssetsMissingError(
            f"Swagger UI's files are missing from {' and '.join(str(f) for f in _FOLDERS)}: run `make install`"
        )
    found = {}
    for name, content_type in CONTENT_TYPE_BY_ASSET.items():
        data = (folder / name).read_bytes()
        found[name] = Asset(data.decode("utf-8"), content_type, hashlib.sha256(data).hexdigest()[:16])
    return found
