"""The API's OpenAPI 3.1 document: assembled from ``api/spec/*.yaml``, served with its reference page.

``refract.yaml`` holds the document's base (info, security schemes, shared components); every
other file adds the ``paths`` (and ``tags``, ``components``) of one API module, so a module's
routes and their documentation change together. Each operation states the scope it needs in
``x-refract-scope`` (null: no key); from it the loader fills in ``security`` and the 401, 403
and 429 answers every authenticated operation may give. A fragment that repeats a path, an
operation id or a component, forgets a scope, or refers to a component that does not exist
stops the worker from starting (and fails the tests), instead of serving a wrong document.
``tests/api/test_openapi.py`` checks the document against the routes the app really has.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from api.cors import PUBLIC_PATHS
from engine.errors import ConfigurationError
from engine.settings import SCOPES

SPEC_FOLDER = Path(__file__).with_name("spec")
BASE_FILE = "refract.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SECURITY_SCHEMES = ("bearerKey", "headerKey")
# Answers every operation that needs a key may give, added unless the operation says otherwise.
_AUTH_RESPONSES = {"401": "Unauthorized", "403": "Forbidden", "429": "RateLimited"}
_FRAGMENT_SECTIONS = {"tags", "paths", "components"}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when there: 10 times faster


@dataclass(slots=True, frozen=True)
class Operation:
    path: str
    method: str  # lower case, as in the document
    spec: Mapping[str, Any]

    @property
    def scope(self) -> str | None:
        scope: str | None = self.spec["x-refract-scope"]
        return scope


def operations(document: Mapping[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield Operation(path, method, item[method])


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path}: expected a mapping with paths (and tags, components)")
    return loaded


def merge(base: Mapping[str, Any], fragments: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The base document with every fragment's tags, paths and components added; no overlaps."""
    document: dict[str, Any] = orjson.loads(orjson.dumps(base))
    document.setdefault("tags", [])
    document.setdefault("paths", {})
    components = document.setdefault("components", {})
    for name, fragment in sorted(fragments.items()):
        unknown = sorted(set(fragment) - _FRAGMENT_SECTIONS)
        if unknown:
            raise ConfigurationError(
                f"{name}: {unknown[0]!r} belongs in {BASE_FILE}; a fragment has only tags, paths, components"
            )
        known_tags = {tag["name"] for tag in document["tags"]}
        for tag in fragment.get("tags", []):
            if tag["name"] in known_tags:
                raise ConfigurationError(f"{name}: the tag {tag['name']!r} is defined twice")
            document["tags"].append(tag)
        for path, item in fragment.get("paths", {}).items():
            existing = document["paths"].setdefault(path, {})
            for method, operation in item.items():
                if method in existing:
                    raise ConfigurationError(f"{name}: {method.upper()} {path} is documented twice")
                existing[method] = operation
        for section, entries in fragment.get("components", {}).items():
            target = components.setdefault(section, {})
            for entry, value in entries.items():
                if entry in target and target[entry] != value:
                    raise ConfigurationError(f"{name}: components.{section}.{entry} is defined twice")
                target[entry] = value
    return document


def _complete(document: dict[str, Any]) -> None:
    """Check every operation, and fill in its security and auth answers from its scope."""
    tags = {tag["name"] for tag in document["tags"]}
    ids: set[str] = set()
    for operation in operations(document):
        where = f"{operation.method.upper()} {operation.path}"
        spec: dict[str, Any] = operation.spec  # type: ignore[assignment]
        if "x-refract-scope" not in spec:
            raise ConfigurationError(f"{where}: say the scope it needs in x-refract-scope (null: no key)")
        scope = spec["x-refract-scope"]
        if scope is not None and scope not in SCOPES:
            raise ConfigurationError(f"{where}: x-refract-scope {scope!r} is not one of {', '.join(SCOPES)}")
        operation_id = spec.get("operationId")
        if not operation_id or operation_id in ids:
            raise ConfigurationError(f"{where}: needs an operationId of its own")
        ids.add(operation_id)
        if not spec.get("tags") or not set(spec["tags"]) <= tags:
            raise ConfigurationError(f"{where}: needs tags defined in a tags section")
        if not spec.get("responses"):
            raise ConfigurationError(f"{where}: documents no responses")
        if scope is None:
            spec["security"] = []
        else:
            spec["security"] = [{scheme: [scope]} for scheme in SECURITY_SCHEMES]
            for status, response in _AUTH_RESPONSES.items():
                spec["responses"].setdefault(status, {"$ref": f"#/components/responses/{response}"})
        if operation.path in PUBLIC_PATHS:
            spec["x-refract-cors"] = True


def _check_references(node: Any, document: Mapping[str, Any], where: str = "") -> None:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str):
            target: Any = document
            for part in reference.removeprefix("#/").split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            if not reference.startswith("#/") or target is None:
                raise ConfigurationError(f"{where}: $ref {reference!r} points at nothing")
        for key, value in node.items():
            _check_references(value, document, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_references(value, document, f"{where}/{index}")


def load_document(folder: Path = SPEC_FOLDER) -> dict[str, Any]:
    """The whole document, checked; raises ConfigurationError naming the file or operation at fault."""
    base = _read(folder / BASE_FILE)
    fragments = {path.name: _read(path) for path in folder.glob("*.yaml") if path.name != BASE_FILE}
    document = merge(base, fragments)
    _complete(document)
    _check_references(document, document)
    return document


@functools.cache
def document_json() -> bytes:
    return orjson.dumps(load_document())


@functools.cache
def reference_html() -> bytes:
    from api.reference_page import render_reference

    return render_reference(orjson.loads(document_json())).encode("utf-8")


async def get_document(request: web.Request) -> web.Response:
    return web.Response(body=document_json(), content_type="application/json")


async def get_reference(request: web.Request) -> web.Response:
    return web.Response(body=reference_html(), content_type="text/html", charset="utf-8")


def install_openapi(router: web.UrlDispatcher) -> None:
    """Serve the document and its reference page (both without a key: they hold no secrets)."""
    document_json()  # a broken document stops the worker here, not at the first request
    router.add_get("/openapi.json", get_document)
    router.add_get("/docs/api", get_reference)
