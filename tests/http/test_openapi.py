"""The OpenAPI document (server/http/openapi.yaml): complete, valid, served, and its page.

Completeness both ways: every route the app registers (``HEAD`` and ``/static/`` aside) is
an operation of the document with its method, and every operation is a route. The document
is valid OpenAPI 3.1 (openapi-spec-validator), and every dotted error code a response's
description names is one of ``server/errors.py`` with that response's status.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator

from server.errors import CODES
from server.http.app import create_app
from server.http.openapi_page import METHODS, operations
from server.http.openapi_routes import document
from server.schedule.model import Event
from tests.conftest import TOKENS, Serve, server_config

#: A backticked word that looks like an error code of one of our areas.
AREAS = {code.split(".")[0] for code in CODES}
CODE = re.compile(r"`([a-z]+\.[a-z_]+)`")


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if route.method == "HEAD" or resource is None or isinstance(resource, web.StaticResource):
            continue
        found.add((route.method.lower(), resource.canonical))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for method, path, _ in operations(doc)}


def test_every_route_is_documented_and_every_operation_is_a_route(event: Event, tmp_path: Path) -> None:
    app = create_app(server_config(tmp_path / "data"), event, tokens=TOKENS)
    routes, doc = app_routes(app), documented(document())
    assert len(routes) > 40
    assert routes - doc == set(), "routes missing from server/http/openapi.yaml"
    assert doc - routes == set(), "documented operations that are no route"
    for path, item in document()["paths"].items():
        unknown = set(item) - set(METHODS) - {"parameters", "summary", "description"}
        assert not unknown, f"{path}: {unknown}"


def test_the_document_is_valid_openapi_3_1() -> None:
    errors = [e.message for e in OpenAPIV31SpecValidator(document()).iter_errors()]
    assert errors == []
    assert document()["openapi"] == "3.1.0"


def _responses(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for method, path, op in operations(doc):
        for status, answer in op["responses"].items():
            if "$ref" in answer:
                answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
            found.append((f"{method.upper()} {path}", status, answer["description"], answer))
    return found


def test_error_codes_named_are_real_and_have_the_response_status() -> None:
    named = 0
    for where, status, description, answer in _responses(document()):
        for code in CODE.findall(description):
            if code.split(".")[0] not in AREAS:
                continue
            named += 1
            assert code in CODES, f"{where} {status}: unknown code {code}"
            assert CODES[code].http == int(status), f"{where} {status}: {code} is {CODES[code].http}"
        json_body = answer.get("content", {}).get("application/json", {}).get("schema")
        if json_body == {"$ref": "#/components/schemas/Error"}:
            assert int(status) >= 400 and CODE.search(description), f"{where} {status}: name the codes"
        elif int(status) >= 400 and json_body is not None:
            assert where == "GET /readyz", f"{where} {status}: errors are Error bodies"
    assert named > 80


def test_every_operation_has_a_unique_id_and_says_who_may_call_it() -> None:
    ids = [op["operationId"] for _, _, op in operations(document())]
    assert len(ids) == len(set(ids))
    schemes = set(document()["components"]["securitySchemes"])
    for method, path, op in operations(document()):
        for requirement in op.get("security", [{}]):
            assert set(requirement) <= schemes, f"{method} {path}"
        templated = set(re.findall(r"{(\w+)}", path))
        params = [p if "$ref" not in p else document()["components"]["parameters"][p["$ref"].split("/")[-1]]
                  for p in op.get("parameters", ())]  # fmt: skip
        assert {p["name"] for p in params if p["in"] == "path"} == templated, f"{method} {path}"


async def test_served_document_names_the_request_base_url(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    body = await response.json()
    assert body["servers"] == [{"url": str(client.make_url("")).rstrip("/")}]
    assert body["paths"].keys() == document()["paths"].keys()
    assert "servers" not in document()  # the shared copy is left alone
    behind = await client.get("/api/v1/openapi.json", headers={"Host": "forum.example:8443"})
    assert (await behind.json())["servers"] == [{"url": "http://forum.example:8443"}]


async def test_served_document_uses_public_url(serve: Serve) -> None:
    client = await serve(public_url="https://live.example.org/")
    body = await (await client.get("/api/v1/openapi.json")).json()
    assert body["servers"] == [{"url": "https://live.example.org"}]


async def test_docs_page_lists_every_operation_without_scripts(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/api/v1/docs")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    for method, path, op in operations(document()):
        assert f'id="{op["operationId"]}"' in page, f"{method} {path}"
    # Works under a CSP without 'unsafe-inline': no script at all, no inline style.
    assert "<script" not in page and "<style" not in page and " style=" not in page
    assert "on" + "click" not in page
    assert "<code>schedule.bad_day</code>" in page and "<code>meeting.rate_limited</code>" in page
    assert "https://" not in page  # nothing from elsewhere
    css = await client.get("/static/api-docs.css")
    assert css.status == 200 and css.content_type == "text/css"
