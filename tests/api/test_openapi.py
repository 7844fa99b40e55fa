"""The OpenAPI document: valid, complete (every route of the app is in it and nothing else), and
rendered as a self-contained reference page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
import yaml

from api.openapi import SPEC_FOLDER, load_document, operations
from api.reference_page import render_reference
from api.server import install
from engine.errors import ConfigurationError
from engine.settings import SCOPES, Settings
from streams.app import build_worker

_TEMPLATE = re.compile(r"\{[^}]+\}")


def shape(path: str) -> str:
    """A path with its parameters' names dropped: /v1/imports/{sync} and /v1/imports/{id} are one."""
    return _TEMPLATE.sub("{}", path)


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[tuple[str, str]]]:
    """(METHOD, path shape) of every route of a worker's web server: faust's and Refract's.

    The web server is set up as a running worker does it, without starting it (no broker needed).
    """
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), signing_secrets=("s" * 32,))
    worker = build_worker(settings, "127.0.0.1:1", on_web_init=install)
    web: Any = worker.app.web
    web.init_server()
    routes = set()
    for route in web.web_app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        routes.add((route.method, shape(str(info.get("path") or info.get("formatter")))))
    worker.producer.close(timeout_s=0)
    yield routes


def documented() -> set[tuple[str, str]]:
    return {(op.method.upper(), shape(op.path)) for op in operations(load_document())}


def test_every_route_of_the_app_is_documented(app_routes: set[tuple[str, str]]) -> None:
    # aiohttp adds a HEAD route to every GET one: documenting the GET covers it.
    served = {(method, path) for method, path in app_routes if method != "HEAD"}
    missing = sorted(served - documented())
    assert not missing, f"routes without documentation: add them to a file in {SPEC_FOLDER}: {missing}"


def test_every_documented_operation_is_a_route_of_the_app(app_routes: set[tuple[str, str]]) -> None:
    extra = sorted(documented() - app_routes)
    assert not extra, f"documented operations the app does not serve: {extra}"


def test_the_document_is_valid_openapi_3_1_with_valid_json_schemas() -> None:
    document = load_document()
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document).validate()
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_every_operation_states_its_scope_and_authenticated_ones_their_auth_answers() -> None:
    for operation in operations(load_document()):
        spec = operation.spec
        assert operation.scope is None or operation.scope in SCOPES
        if operation.scope is None:
            assert spec["security"] == []
        else:
            assert {"bearerKey": [operation.scope]} in spec["security"]
            assert {"401", "403", "429"} <= set(spec["responses"])


def write_spec(folder: Path, fragments: dict[str, dict[str, Any]]) -> None:
    (folder / "refract.yaml").write_text((SPEC_FOLDER / "refract.yaml").read_text())
    for name, fragment in fragments.items():
        (folder / name).write_text(yaml.safe_dump(fragment))


def operation(scope: object = "admin", operation_id: str = "op") -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": ["worker"],
        "x-refract-scope": scope,
        "responses": {"200": {"description": "ok"}},
    }


def test_an_operation_documented_twice_is_refused(tmp_path: Path) -> None:
    write_spec(tmp_path, {"a.yaml": {"paths": {"/healthz": {"get": operation()}}}})
    with pytest.raises(ConfigurationError, match="GET /healthz is documented twice"):
        load_document(tmp_path)


def test_an_operation_without_a_scope_is_refused(tmp_path: Path) -> None:
    spec = operation()
    del spec["x-refract-scope"]
    write_spec(tmp_path, {"a.yaml": {"paths": {"/v1/things": {"get": spec}}}})
    with pytest.raises(ConfigurationError, match="x-refract-scope"):
        load_document(tmp_path)


def test_a_reference_to_a_missing_component_is_refused(tmp_path: Path) -> None:
    spec = operation()
    spec["responses"]["404"] = {"$ref": "#/components/responses/Gone"}
    write_spec(tmp_path, {"a.yaml": {"paths": {"/v1/things": {"get": spec}}}})
    with pytest.raises(ConfigurationError, match="points at nothing"):
        load_document(tmp_path)


def test_a_fragment_adds_its_paths_with_security_filled_from_the_scope(tmp_path: Path) -> None:
    write_spec(tmp_path, {"things.yaml": {"paths": {"/v1/things": {"get": operation("customers:read")}}}})
    spec = load_document(tmp_path)["paths"]["/v1/things"]["get"]
    assert spec["security"] == [{"bearerKey": ["customers:read"]}, {"headerKey": ["customers:read"]}]
    assert spec["responses"]["429"] == {"$ref": "#/components/responses/RateLimited"}


def test_the_reference_page_shows_every_operation_with_its_scope_and_loads_nothing_from_outside() -> None:
    document = load_document()
    page = render_reference(document)
    for op in operations(document):
        assert f'id="{op.spec["operationId"]}"' in page
        assert op.path in page
    assert "scope customers:read" in page and "no key needed" in page
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert 'href="#schema-CustomerUpdate"' in page and 'id="schema-CustomerUpdate"' in page


def test_the_reference_page_escapes_what_the_document_says() -> None:
    document = load_document()
    document["paths"]["/healthz"]["get"]["description"] = "<img src=x onerror=alert(1)>"
    assert "<img" not in render_reference(document)
