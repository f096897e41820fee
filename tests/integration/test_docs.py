"""GET /docs: the page and its Swagger UI files, served by the app itself (no CDN), cached for a year.

(The browser's view of it is tests/browser/test_docs_page.py.)
"""

import re
import subprocess
import sys
from pathlib import Path

from chalice.test import Client

from tests.conftest import ROOT

NPM_PACKAGE = ROOT / "node_modules" / "swagger-ui-dist"


def test_the_page_loads_only_files_the_app_serves_each_with_a_years_cache(api_client: Client) -> None:
    page = api_client.http.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    html = page.body.decode()
    # Relative URLs only: no CDN, and the page works under API Gateway's /api stage too.
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert loaded
    assert not [url for url in loaded if "//" in url or url.startswith("/")]
    for url in (u for u in loaded if u.startswith("docs/")):
        path, _, version = url.partition("?v=")
        asset = api_client.http.get(f"/{path}")
        assert asset.status_code == 200, url
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert asset.body == (NPM_PACKAGE / Path(path).name).read_bytes()
        assert version, f"{url}: without a version in the URL a year's cache would outlive an upgrade"
    assert "openapi.json" in html


def test_the_files_have_their_types_and_nothing_else_is_served(api_client: Client) -> None:
    assert (
        api_client.http.get("/docs/swagger-ui-bundle.js").headers["Content-Type"].startswith("application/javascript")
    )
    assert api_client.http.get("/docs/swagger-ui.css").headers["Content-Type"].startswith("text/css")
    for name in ("index.html", "package.json", "..%2F..%2Fapp.py", "LICENSE"):
        answer = api_client.http.get(f"/docs/{name}")
        assert answer.status_code == 404, name
        assert answer.json_body["error"]["code"] == "not_found"


def test_importing_the_app_reads_no_asset() -> None:
    """Cold start: the 1.5 MB bundle is read at the first request for the page, not at import."""
    probe = "import sys, app; print('chalicelib.web.docs' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_page_is_served_with_a_strict_policy_and_cannot_be_framed(api_client: Client) -> None:
    import base64
    import hashlib
    import re

    response = api_client.http.get("/docs")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'", "a token typed into the page goes back to this API only"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert response.headers["X-Frame-Options"] == "DENY"
    # The page's inline scripts are exactly those the policy allows by hash.
    inline = re.findall(r"<script>(.*?)</script>", response.body.decode(), flags=re.DOTALL)
    hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline}
    assert hashes
    assert hashes <= set(directives["script-src"].split())
