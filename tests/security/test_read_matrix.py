"""Who reads what (docs/api.md, "Personal data"): every cell of the matrix, role by operation.

A surveyor lists, searches and reads only the registrations whose survey is assigned to them
(``schedule-survey``'s ``surveyor``: their user name); ``cs``, ``approver`` and ``admin`` read every
registration; export and erasure are ``admin``'s alone; without a token, nothing.
"""

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.workflow import Action
from tests.support.api import BODY_BY_ACTION, post, register, token

SURVEYOR = "surveyor-ani"
# role -> operation -> what it gets: "all" (both registrations), "own" (the assigned one only),
# or an HTTP status.
MATRIX: dict[str, dict[str, Any]] = {
    "cs": {"list": "all", "search": "all", "read": "all", "export": 403, "erase": 403},
    "surveyor": {"list": "own", "search": "own", "read": "own", "export": 403, "erase": 403},
    "approver": {"list": "all", "search": "all", "read": "all", "export": 403, "erase": 403},
    "admin": {"list": "all", "search": "all", "read": "all", "export": 200, "erase": 200},
    "anonymous": {"list": 401, "search": 401, "read": 401, "export": 401, "erase": 401},
}
CELLS = [(role, operation) for role, row in MATRIX.items() for operation in row]


def schedule(client: Client, registration: dict[str, Any], surveyor: str) -> None:
    path = f"/registrations/{registration['id']}"
    assert post(client, f"{path}/verify", {}, token("cs")).status_code == 200
    body = {**(BODY_BY_ACTION[Action.SCHEDULE_SURVEY] or {}), "surveyor": surveyor}
    assert post(client, f"{path}/schedule-survey", body, token("cs")).status_code == 200


def headers(role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    return token(role, sub=SURVEYOR) if role == "surveyor" else token(role)


def ids_seen(client: Client, role: str, operation: str, mine: dict[str, Any], theirs: dict[str, Any]) -> Any:
    """The registration ids the caller got from ``operation`` on both registrations, or the status."""
    if operation == "list":
        response = client.http.get(f"/registrations?city={mine['city']}", headers=headers(role))
        return response.status_code if response.status_code != 200 else {i["id"] for i in response.json_body["items"]}
    if operation == "search":
        seen = set()
        for registration in (mine, theirs):
            response = client.http.get(f"/registrations?q={registration['email']}", headers=headers(role))
            if response.status_code != 200:
                return response.status_code
            seen |= {i["id"] for i in response.json_body["items"]}
        return seen
    seen = set()
    for registration in (mine, theirs):
        response = client.http.get(f"/registrations/{registration['id']}", headers=headers(role))
        if response.status_code not in (200, 404):
            return response.status_code
        seen |= {response.json_body["id"]} if response.status_code == 200 else set()
    return seen


@pytest.mark.parametrize(("role", "operation"), CELLS)
def test_each_role_reads_what_its_work_needs(
    api_client: Client, package: dict[str, Any], role: str, operation: str
) -> None:
    city = f"Kota {role} {operation}"
    mine, theirs = register(api_client, package, city=city), register(api_client, package, city=city)
    schedule(api_client, mine, SURVEYOR)
    schedule(api_client, theirs, "surveyor-budi")
    expected = MATRIX[role][operation]
    if operation in ("export", "erase"):
        path = f"/registrations/{theirs['id']}/personal-data"
        body = json.dumps({"reason": "the person asked"}).encode() if operation == "erase" else b""
        method = "DELETE" if operation == "erase" else "GET"
        response = api_client.http.request(
            method, path, body=body, headers={"Content-Type": "application/json", **headers(role)}
        )
        assert response.status_code == expected, response.json_body
        return
    got = ids_seen(api_client, role, operation, mine, theirs)
    if expected == "all":
        assert got == {mine["id"], theirs["id"]}
    elif expected == "own":
        assert got == {mine["id"]}, "a surveyor sees only their own surveys"
    else:
        assert got == expected


def test_a_surveyor_with_another_role_too_reads_as_that_role(api_client: Client, package: dict[str, Any]) -> None:
    registration = register(api_client, package)
    both = token("surveyor", "cs", sub=SURVEYOR)
    assert api_client.http.get(f"/registrations/{registration['id']}", headers=both).status_code == 200
