"""The API's reference page, rendered on the server from the OpenAPI document.

One static HTML document: every operation grouped by tag, with who may call it, its
parameters, request bodies, responses (statuses, error codes, media types, schemas), then
every named schema. No script and no inline style (only ``/static/api-docs.css``), so it
works under a Content-Security-Policy that allows neither; nothing comes from a CDN.
Pure functions of the document: :func:`render_page` is called once per process.
"""

from __future__ import annotations

import html
import re
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: The constraints of a schema shown beside its type, with how to say them.
CONSTRAINTS = (
    ("format", "format {}"),
    ("pattern", "pattern {}"),
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "items ≥ {}"),
    ("maxItems", "items ≤ {}"),
    ("default", "default {}"),
    ("contentMediaType", "{}"),
)
_CODE = re.compile(r"`([^`]+)`")


def text(value: str) -> str:
    """Escaped prose, with `backticked` spans as <code>."""
    return _CODE.sub(r"<code>\1</code>", html.escape(value.strip(), quote=False))


def _code(value: Any) -> str:
    return f"<code>{html.escape(str(value))}</code>"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def resolve(doc: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """``item`` itself, or the component a local ``$ref`` names."""
    ref = item.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return item
    found: Any = doc
    for part in ref[2:].split("/"):
        found = found[part]
    return dict(found)


def schema_html(schema: Any, depth: int = 0) -> str:
    """A schema as nested lists: types, constraints, properties (required ones marked)."""
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    parts: list[str] = []
    for key, word in (("allOf", "all of"), ("anyOf", "one of"), ("oneOf", "one of")):
        if key in schema:
            items = "".join(f"<li>{schema_html(s, depth + 1)}</li>" for s in schema[key])
            parts.append(f"{word}:<ul>{items}</ul>")
    kind = schema.get("type")
    if kind is not None:
        parts.append(" or ".join(_code(k) for k in (kind if isinstance(kind, list) else [kind])))
    if "const" in schema:
        parts.append(f"always {_code(schema['const'])}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(_code(v) for v in schema["enum"]))
    if isinstance(schema.get("not"), dict) and "const" in schema["not"]:
        parts.append(f"not {_code(schema['not']['const'])}")
    parts.extend(word.format(_code(schema[key])) for key, word in CONSTRAINTS if key in schema)
    if schema.get("uniqueItems"):
        parts.append("distinct items")
    if "description" in schema:
        parts.append(f"— {text(schema['description'])}")
    if "items" in schema:
        parts.append(f"items: {schema_html(schema['items'], depth + 1)}")
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        required = set(schema.get("required", ()))
        rows = "".join(
            f"<li>{_code(name)}{' <em>required</em>' if name in required else ''}: "
            f"{schema_html(sub, depth + 1)}</li>"
            for name, sub in properties.items()
        )
        parts.append(f'<ul class="props">{rows}</ul>')
    extra = schema.get("additionalProperties")
    if extra is False:
        parts.append("no other properties")
    elif isinstance(extra, dict):
        parts.append(f"other properties: {schema_html(extra, depth + 1)}")
    return " ".join(parts)


def _security(doc: dict[str, Any], op: dict[str, Any]) -> str:
    requirements = op.get("security", doc.get("security", [{}]))
    ways = []
    for requirement in requirements:
        if not requirement:
            ways.append("anyone")
        for scheme, roles in requirement.items():
            who = ", ".join(_code(r) for r in roles) if roles else "any valid one"
            ways.append(f"{_code(scheme)} ({who})")
    return "; ".join(ways)


def _parameters(doc: dict[str, Any], op: dict[str, Any]) -> str:
    params = [resolve(doc, p) for p in op.get("parameters", ())]
    if not params:
        return ""
    rows = "".join(
        f"<tr><td>{_code(p['name'])}</td><td>{html.escape(p['in'])}</td>"
        f"<td>{'yes' if p.get('required') else 'no'}</td><td>{schema_html(p.get('schema'))}</td>"
        f"<td>{text(p.get('description', ''))}</td></tr>"
        for p in params
    )
    head = "<tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>"
    return f"<h4>Parameters</h4><table>{head}{rows}</table>"


def _content(content: dict[str, Any]) -> str:
    return "".join(
        f"<div>{_code(media)}: {schema_html(body.get('schema'))}</div>" for media, body in content.items()
    )


def _body(doc: dict[str, Any], op: dict[str, Any]) -> str:
    if "requestBody" not in op:
        return ""
    body = resolve(doc, op["requestBody"])
    need = "required" if body.get("required") else "optional"
    return f"<h4>Request body ({need})</h4>{_content(body.get('content', {}))}"


def _responses(doc: dict[str, Any], op: dict[str, Any]) -> str:
    rows = []
    for status, item in op.get("responses", {}).items():
        answer = resolve(doc, item)
        headers = ", ".join(_code(h) for h in answer.get("headers", {}))
        rows.append(
            f"<tr><td>{html.escape(str(status))}</td><td>{text(answer.get('description', ''))}"
            f"{f'<div>headers: {headers}</div>' if headers else ''}</td>"
            f"<td>{_content(answer.get('content', {}))}</td></tr>"
        )
    head = "<tr><th>status</th><th>meaning and codes</th><th>body</th></tr>"
    return f"<h4>Responses</h4><table>{head}{''.join(rows)}</table>"


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the document, in its order."""
    return [
        (method, path, op)
        for path, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]


def _operation(doc: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> str:
    anchor = html.escape(op.get("operationId", f"{method}-{path}"))
    described = f"<p>{text(op['description'])}</p>" if "description" in op else ""
    return (
        f'<article id="{anchor}"><h3><span class="method {method}">{method.upper()}</span> {_code(path)}</h3>'
        f"<p>{text(op.get('summary', ''))}</p>{described}"
        f"<p><strong>Who:</strong> {_security(doc, op)}</p>"
        f"{_parameters(doc, op)}{_body(doc, op)}{_responses(doc, op)}</article>"
    )


def render_page(doc: dict[str, Any]) -> str:
    """The whole page for ``doc``."""
    info = doc.get("info", {})
    ops = operations(doc)
    tags = [t["name"] for t in doc.get("tags", ())]
    tags += sorted({op.get("tags", ["other"])[0] for _, _, op in ops} - set(tags))
    toc, sections = [], []
    for tag in tags:
        mine = [(m, p, op) for m, p, op in ops if op.get("tags", ["other"])[0] == tag]
        if not mine:
            continue
        links = "".join(
            f'<li><a href="#{html.escape(op.get("operationId", ""))}">{m.upper()} {html.escape(p)}</a></li>'
            for m, p, op in mine
        )
        toc.append(f"<li>{html.escape(tag)}<ul>{links}</ul></li>")
        described = next((t.get("description", "") for t in doc.get("tags", ()) if t["name"] == tag), "")
        body = "".join(_operation(doc, m, p, op) for m, p, op in mine)
        sections.append(f"<section><h2>{html.escape(tag)}</h2><p>{text(described)}</p>{body}</section>")
    schemas = "".join(
        f'<article id="schema-{html.escape(name)}"><h3>{html.escape(name)}</h3>'
        f"{schema_html(schema)}</article>"
        for name, schema in doc.get("components", {}).get("schemas", {}).items()
    )
    schemes = "".join(
        f"<li>{_code(name)}: {text(s.get('description', ''))}</li>"
        for name, s in doc.get("components", {}).get("securitySchemes", {}).items()
    )
    title = html.escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title} API</title><link rel="stylesheet" href="/static/api-docs.css"></head><body>'
        f"<header><h1>{title} API</h1><p>{text(info.get('description', ''))}</p>"
        '<p>The same as OpenAPI 3.1: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p></header>'
        f"<nav><h2>Operations</h2><ul>{''.join(toc)}</ul></nav><main>"
        f"<section><h2>Credentials</h2><ul>{schemes}</ul></section>{''.join(sections)}"
        f'<section id="schemas"><h2>Schemas</h2>{schemas}</section></main></body></html>\n'
    )
