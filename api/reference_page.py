"""The API reference page (``/docs/api``): the OpenAPI document rendered as one HTML page.

Self-contained on purpose (inline CSS, no script, no font or CDN): it must read the same in a
browser without internet access. Schemas referenced by name are linked to their definition at
the end of the page rather than expanded, so the page stays the size of the document.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from api.openapi import operations

_CODE = re.compile(r"`([^`]+)`")
_CONSTRAINTS = (
    ("format", "format"),
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("pattern", "pattern"),
    ("minimum", "≥"),
    ("maximum", "≤"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
    ("minProperties", "min properties"),
    ("maxProperties", "max properties"),
    ("contentMediaType", "content"),
)
_MAX_DEPTH = 12

_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;display:flex}
nav{width:270px;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6f8;
  padding:16px;box-sizing:border-box;font-size:13px}
nav a{color:#1d232a;text-decoration:none;display:block;padding:2px 0}
nav h3{margin:14px 0 4px;font-size:12px;text-transform:uppercase;color:#5b6570}
main{padding:24px 40px;max-width:980px;min-width:0}
h1{margin-top:0}h2{border-bottom:1px solid #dde2e7;padding-bottom:4px;margin-top:40px}
section.op{border:1px solid #dde2e7;border-radius:6px;padding:12px 18px;margin:18px 0}
.m{display:inline-block;min-width:58px;text-align:center;border-radius:4px;color:#fff;
  font:600 12px monospace;padding:2px 6px;margin-right:8px}
.get{background:#2b6cb0}.post{background:#2f855a}.put{background:#b7791f}.delete{background:#c53030}
.patch{background:#6b46c1}.path{font:600 15px monospace}
.scope{display:inline-block;font:12px monospace;background:#edf2f7;border-radius:4px;padding:1px 6px}
.public{background:#fefcbf}
code{font:13px monospace;background:#f1f3f5;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:6px 0}
td,th{border-top:1px solid #e6e9ed;padding:4px 8px;vertical-align:top;text-align:left;font-size:14px}
th{font-size:12px;color:#5b6570;font-weight:600}
ul.schema{list-style:none;padding-left:16px;margin:2px 0;border-left:2px solid #edf0f3}
.t{color:#6b46c1;font:13px monospace}.req{color:#c53030;font-size:12px}.d{color:#4a5560}
.status{font:600 13px monospace;width:56px}
"""


def _text(value: object) -> str:
    """Escaped text with `code` spans."""
    return _CODE.sub(r"<code>\1</code>", html.escape(str(value)))


def _ref_name(reference: str) -> str:
    return reference.rsplit("/", 1)[-1]


def _resolve(node: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    """A response or parameter given by $ref, looked up; anything else as it is."""
    while "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _literal(value: object) -> str:
    return f"<code>{html.escape(json.dumps(value))}</code>"


def schema_html(schema: Any, depth: int = 0) -> str:
    """One schema as nested lists: types, constraints, properties; named schemas as links."""
    if schema is True or schema == {}:
        return '<span class="t">any</span>'
    if schema is False:
        return '<span class="t">nothing</span>'
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return ""
    if "$ref" in schema:
        name = html.escape(_ref_name(schema["$ref"]))
        return f'<a class="t" href="#schema-{name}">{name}</a>'
    parts: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        parts.append(f'<span class="t">{html.escape(" | ".join(kinds))}</span>')
    if "const" in schema:
        parts.append(f"always {_literal(schema['const'])}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(_literal(value) for value in schema["enum"]))
    for keyword, label in _CONSTRAINTS:
        if keyword in schema:
            parts.append(f"{label} {_literal(schema[keyword])}")
    if schema.get("description"):
        parts.append(f'<span class="d">{_text(schema["description"])}</span>')
    out = " · ".join(parts)
    if "items" in schema:
        out += f"<div>items: {schema_html(schema['items'], depth + 1)}</div>"
    for combiner, label in (("oneOf", "exactly one of"), ("anyOf", "any of"), ("allOf", "all of")):
        if combiner in schema:
            options = "".join(f"<li>{schema_html(option, depth + 1)}</li>" for option in schema[combiner])
            out += f'<div>{label}:</div><ul class="schema">{options}</ul>'
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        rows = []
        for name, value in properties.items():
            mark = ' <span class="req">required</span>' if name in required else ""
            rows.append(f"<li><code>{html.escape(name)}</code>{mark}: {schema_html(value, depth + 1)}</li>")
        out += f'<ul class="schema">{"".join(rows)}</ul>'
    elif schema.get("required"):
        out += "<div>requires " + ", ".join(f"<code>{html.escape(r)}</code>" for r in schema["required"])
        out += "</div>"
    if "propertyNames" in schema:
        out += f"<div>property names: {schema_html(schema['propertyNames'], depth + 1)}</div>"
    extra = schema.get("additionalProperties")
    if extra is False:
        out += '<div class="d">no other properties</div>'
    elif isinstance(extra, Mapping):
        out += f"<div>other properties: {schema_html(extra, depth + 1)}</div>"
    return out or '<span class="t">any</span>'


def _scope(spec: Mapping[str, Any]) -> str:
    scope = spec["x-refract-scope"]
    badge = (
        '<span class="scope">no key needed</span>'
        if scope is None
        else f'<span class="scope">scope {html.escape(scope)}</span>'
    )
    if spec.get("x-refract-cors"):
        badge += ' <span class="scope public">public key · CORS for configured origins</span>'
    return badge


def _parameters(params: list[Mapping[str, Any]]) -> str:
    if not params:
        return ""
    required = ' <span class="req">required</span>'
    rows = "".join(
        f"<tr><td><code>{html.escape(p['name'])}</code>{required if p.get('required') else ''}"
        f"</td><td>{html.escape(p['in'])}</td><td>{schema_html(p.get('schema', {}))}</td>"
        f"<td class=d>{_text(p.get('description', ''))}</td></tr>"
        for p in params
    )
    return (
        f"<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>schema</th><th></th></tr>{rows}</table>"
    )


def _content(content: Mapping[str, Any]) -> str:
    return "".join(
        f"<div><code>{html.escape(media)}</code>: {schema_html(body.get('schema', {}))}</div>"
        for media, body in content.items()
    )


def _responses(responses: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    rows = []
    for status in sorted(responses):
        response = _resolve(responses[status], document)
        headers = "".join(
            f"<div>header <code>{html.escape(name)}</code>: {schema_html(header.get('schema', {}))}"
            f" <span class=d>{_text(header.get('description', ''))}</span></div>"
            for name, header in response.get("headers", {}).items()
        )
        rows.append(
            f"<tr><td class=status>{html.escape(status)}</td><td>{_text(response.get('description', ''))}"
            f"{headers}{_content(response.get('content', {}))}</td></tr>"
        )
    return f"<h4>Responses</h4><table>{''.join(rows)}</table>"


def _operation(
    path: str, method: str, spec: Mapping[str, Any], path_item: Mapping[str, Any], document: Mapping[str, Any]
) -> str:
    anchor = html.escape(spec["operationId"])
    params = [_resolve(p, document) for p in [*path_item.get("parameters", []), *spec.get("parameters", [])]]
    body = spec.get("requestBody")
    request = ""
    if body is not None:
        body = _resolve(body, document)
        request = (
            f"<h4>Request body{' (required)' if body.get('required') else ''}</h4>{_content(body['content'])}"
        )
    return (
        f'<section class="op" id="{anchor}"><div><span class="m {method}">{method.upper()}</span>'
        f'<span class="path">{html.escape(path)}</span></div>'
        f"<p><strong>{_text(spec.get('summary', ''))}</strong> {_scope(spec)}</p>"
        f"<p>{_text(spec.get('description', ''))}</p>"
        f"{_parameters(params)}{request}{_responses(spec['responses'], document)}</section>"
    )


def render_reference(document: Mapping[str, Any]) -> str:
    info = document["info"]
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    nav: dict[str, list[str]] = {name: [] for name in by_tag}
    for operation in operations(document):
        tag = operation.spec["tags"][0]
        by_tag[tag].append(
            _operation(
                operation.path, operation.method, operation.spec, document["paths"][operation.path], document
            )
        )
        nav[tag].append(
            f'<a href="#{html.escape(operation.spec["operationId"])}">{operation.method.upper()}'
            f" {html.escape(operation.path)}</a>"
        )
    descriptions = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    sections = "".join(
        f'<h2 id="tag-{html.escape(tag)}">{html.escape(tag)}</h2>'
        f"<p>{_text(descriptions[tag])}</p>{''.join(ops)}"
        for tag, ops in by_tag.items()
        if ops
    )
    schemas = document.get("components", {}).get("schemas", {})
    definitions = "".join(
        f'<section class="op" id="schema-{html.escape(name)}"><strong>{html.escape(name)}</strong>'
        f"<div>{schema_html(schema)}</div></section>"
        for name, schema in sorted(schemas.items())
    )
    menu = "".join(f"<h3>{html.escape(tag)}</h3>{''.join(links)}" for tag, links in nav.items() if links)
    menu += '<h3>schemas</h3><a href="#schemas">all schemas</a>'
    description = "".join(f"<p>{_text(part)}</p>" for part in info.get("description", "").split("\n\n"))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(info['title'])} reference</title><style>{_STYLE}</style></head><body>"
        f"<nav><strong>{html.escape(info['title'])} {html.escape(info['version'])}</strong>{menu}</nav>"
        f"<main><h1>{html.escape(info['title'])}</h1>{description}"
        '<p>The machine-readable document is at <a href="/openapi.json"><code>/openapi.json</code></a>'
        f" (OpenAPI {html.escape(document['openapi'])}).</p>"
        f'{sections}<h2 id="schemas">Schemas</h2>{definitions}</main></body></html>'
    )
