"""docs/api.md's "Every route by curl" has a curl line, with its body, for every route app.py serves."""

import re

import app as app_module
from chalicelib.registrations.actions import BODY_BY_ACTION
from chalicelib.workflow import Action
from tests.conftest import ROOT

ACTION_ROUTE = "/registrations/{registration_id}/{action}"
# The reference page (named beside /openapi.json) and its own files, which the page loads.
PAGE_ROUTES = {("GET", "/docs"), ("GET", "/docs/{name}")}


def _examples() -> str:
    readme = (ROOT / "docs" / "api.md").read_text()
    section = readme.split("## Every route by curl", 1)[1].split("\n## ", 1)[0]
    # Continuation lines belong to their curl line.
    return section.replace("\\\n", " ")


def _curls() -> list[tuple[str, str, str]]:
    """(method, route, the whole line) for each curl line of the section."""
    found = []
    for line in _examples().splitlines():
        if not line.lstrip().startswith("curl"):
            continue
        explicit = re.search(r"-X (\w+)", line)
        method = explicit.group(1) if explicit else "GET"
        url = re.search(r"\$API(/[^\s\"?']*)", line)
        assert url, line
        route = url.group(1).replace("$ID", "{registration_id}")
        found.append((method, route, line))
    return found


def _routes() -> set[tuple[str, str]]:
    routes = set()
    for path, entries in app_module.app.routes.items():
        for method in entries:
            if path == ACTION_ROUTE:
                actions = [*BODY_BY_ACTION, Action.CREATE_CUSTOMER]
                routes |= {(method, path.replace("{action}", action.value)) for action in actions}
            else:
                routes.add((method, path))
    return routes - PAGE_ROUTES


def test_every_route_has_a_curl_example() -> None:
    shown = {(method, route) for method, route, _ in _curls()}
    assert _routes() <= shown, sorted(_routes() - shown)
    assert shown <= _routes(), sorted(shown - _routes())
    assert "$API/docs" in _examples()


def test_every_example_of_a_route_with_a_body_sends_one() -> None:
    bodies = {f"/registrations/{{registration_id}}/{a.value}" for a, model in BODY_BY_ACTION.items() if model}
    bodies |= {"/registrations", "/packages"}
    for method, route, line in _curls():
        if method == "POST" and route in bodies:
            assert " -d '" in line, line
