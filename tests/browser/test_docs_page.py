"""`GET /docs` in a real browser: headless chromium against the `make run` stack.

The page must render every operation of ``/openapi.json`` from the app's own Swagger UI
files (the stack has no route to the internet to fall back on), and "Try it out" on
``GET /packages`` must reach the API and show its 200.  The screenshot is kept in
``build/test-artifacts/`` (``TEST_ARTIFACTS`` to put it elsewhere).
"""

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

from tests.browser import cdp
from tests.conftest import ROOT

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")

# Each operation Swagger UI rendered, as "METHOD path".
RENDERED = """[...document.querySelectorAll('.opblock')].map(block =>
  block.querySelector('.opblock-summary-method').textContent + ' ' +
  block.querySelector('.opblock-summary-path').getAttribute('data-path'))"""


def _block(method: str, path: str) -> str:
    """A JavaScript expression for the operation's block."""
    return f"""[...document.querySelectorAll('.opblock')].find(block =>
      block.querySelector('.opblock-summary-method').textContent === {json.dumps(method)} &&
      block.querySelector('.opblock-summary-path').getAttribute('data-path') === {json.dumps(path)})"""


@pytest.mark.slow
def test_the_docs_page_renders_every_operation_and_tries_get_packages(
    chromium: str, running_stack: str, tmp_path: Path
) -> None:
    with urllib.request.urlopen(f"{running_stack}/openapi.json", timeout=10) as answer:  # noqa: S310 (loopback)
        document = json.load(answer)
    documented = sorted(f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item)
    packages = _block("GET", "/packages")
    with cdp.browser(chromium, tmp_path / "profile") as page:
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{running_stack}/docs")
        page.wait_for(f"document.querySelectorAll('.opblock').length >= {len(documented)}")
        assert sorted(page.evaluate(RENDERED)) == documented

        page.evaluate(f"{packages}.querySelector('.opblock-summary-control').click()")
        page.wait_for(f"!!{packages}.querySelector('.try-out__btn')")
        page.evaluate(f"{packages}.querySelector('.try-out__btn').click()")
        page.wait_for(f"!!{packages}.querySelector('.execute')")
        page.evaluate(f"{packages}.querySelector('.execute').click()")
        live = f"{packages}.querySelector('.live-responses-table tbody')"
        status = page.wait_for(f"{live}?.querySelector('.response-col_status')?.textContent")
        url = page.evaluate(f"{packages}.querySelector('.request-url pre')?.textContent")
        body = page.evaluate(f"{live}.querySelector('.response-col_description pre')?.textContent")
        page.evaluate(f"{packages}.scrollIntoView()")
        shot = page.screenshot(ARTIFACTS / "docs-try-it-out.png")
    print(f"screenshot: {shot}")
    assert status.strip() == "200", status
    assert url == f"{running_stack}/packages"
    assert [p["name"] for p in json.loads(body)] == ["Rumah 30 Mbps", "Rumah 100 Mbps"]


# The groups Swagger UI rendered, in order.
TAGS_RENDERED = "[...document.querySelectorAll('.opblock-tag')].map(tag => tag.getAttribute('data-tag'))"


@pytest.mark.slow
def test_the_docs_page_groups_operations_by_feature_and_shows_typed_schemas(
    chromium: str, running_stack: str, tmp_path: Path
) -> None:
    with urllib.request.urlopen(f"{running_stack}/openapi.json", timeout=10) as answer:  # noqa: S310 (loopback)
        document = json.load(answer)
    detail = _block("GET", "/registrations/{registration_id}")
    ok = f"{detail}.querySelector('tr.response[data-code=\\'200\\']')"
    with cdp.browser(chromium, tmp_path / "profile") as page:
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{running_stack}/docs")
        page.wait_for("document.querySelectorAll('.opblock-tag').length > 0")
        assert page.evaluate(TAGS_RENDERED) == [tag["name"] for tag in document["tags"]]
        page.wait_for(f"!!{detail}")
        page.evaluate(f"{detail}.querySelector('.opblock-summary-control').click()")
        page.wait_for(f"!!{ok}?.querySelector('button[data-name=\\'model\\']')")
        page.evaluate(f"{ok}.querySelector('button[data-name=\\'model\\']').click()")
        panel = f"{ok}.querySelector('[data-name=\\'modelPanel\\']')"
        page.wait_for(f"{panel}?.textContent.includes('history')")
        text = page.evaluate(f"{panel}.textContent")
    assert "RegistrationDetail" in text, text
    # Swagger UI writes an untyped schema as "any" (a composition as "(any & object)").
    words = text.replace("Expand all", " ").replace("Collapse all", " ")
    assert not re.search(r"\bany\b", words), text
