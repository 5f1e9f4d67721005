"""`GET /openapi.json`: OpenAPI 3.1 generated from the route map and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from proxy.api.route import Route

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Malformed request (JSON, organization)",
    401: "Missing, invalid or revoked token",
    403: "Your role may not do this",
    404: "Not found, or not visible to you",
    409: "Conflict (unique value, still referenced, insufficient stock, transition)",
    413: "Body larger than NIMBUS_MAX_BODY_BYTES",
    415: "Unsupported content type",
    422: "Invalid input: every field error in details",
    429: "Rate limited",
    503: "Upstream unavailable",
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
                "request_id": {"type": ["string", "null"]},
            },
        }
    },
}
PAGINATION = {
    "type": "object",
    "required": ["page", "limit", "total", "pages"],
    "properties": {
        "page": {"type": "integer", "minimum": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "total": {"type": "integer", "minimum": 0},
        "pages": {"type": "integer", "minimum": 0},
        "count": {"type": "string", "enum": ["exact", "estimated"]},
    },
}
PAGING = [
    ("page", {"type": "integer", "minimum": 1, "maximum": 1_000_000}, "page number, from 1"),
    ("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "rows per page (default 10)"),
]


def _param(
    name: str, where: str, schema: dict[str, Any], description: str = "", required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "schema": schema,
        "description": description,
    }


def _parameters(route: Route) -> list[dict[str, Any]]:
    params = [
        _param(n, "path", {"type": "string", "format": "uuid"}, required=True)
        for n in re.findall(r"{(\w+)}", route.path)
    ]
    if route.action == "list":
        params += [_param(n, "query", s, d) for n, s, d in PAGING]
        if route.sort:
            terms = "|".join(route.sort)
            params.append(
                _param(
                    "sort",
                    "query",
                    {"type": "string", "pattern": rf"^-?({terms})(,-?({terms}))*$"},
                    "comma-separated, `-` for descending: " + ", ".join(route.sort),
                )
            )
    params += [_param(q.name, "query", q.schema(), q.description, q.required) for q in route.query]
    if route.org != "none" and route.action != "custom":
        params.append(
            _param(
                "X-Organization-Id",
                "header",
                {"type": "string", "format": "uuid"},
                "organization to act on (default: token claim, else your only one)",
            )
        )
    if route.target == "rpc/create_order":
        params.append(
            _param(
                "Idempotency-Key",
                "header",
                {"type": "string", "minLength": 1, "maxLength": 255},
                "same key and body: same response, one order",
            )
        )
    return params


def _success(route: Route) -> dict[str, Any]:
    if route.action == "list":
        schema = {
            "type": "object",
            "required": ["data", "pagination"],
            "properties": {
                "data": {"type": "array", "items": {"type": "object"}},
                "pagination": {"$ref": REF.format(model="Pagination")},
            },
        }
    else:
        data = {} if route.action in ("read", "call", "custom") else {"type": "object"}
        schema = {"type": "object", "required": ["data"], "properties": {"data": data}}
    status = str(route.status if route.method == "POST" else 200)
    if route.extra.get("csv"):
        return {
            status: {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
        }
    if route.extra.get("sse"):
        # Each event's data is a JSON object.
        stream: dict[str, Any] = {"text/event-stream": {"schema": {}}}
        return {status: {"description": "Server-Sent Events", "content": stream}}
    return {status: {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    errors = {400, 401, 403, 404, 422, 429, 503, *route.responses}
    if route.method != "GET":
        errors.add(409)
    if route.body is not None or route.extra.get("request_body"):
        errors.add(413)  # any body can exceed NIMBUS_MAX_BODY_BYTES
    responses = _success(route)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": ERRORS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    answer = route.extra.get("response")
    if answer is not None:  # a declared answer model (bulk, import)
        schema = answer.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[answer.__name__] = schema
        for content in responses[str(route.status)]["content"].values():
            content["schema"]["properties"]["data"] = {"$ref": REF.format(model=answer.__name__)}
    accepted = route.extra.get("accepted")
    if accepted is not None:  # the route may answer 202 with a job (CSV import)
        schema = accepted.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[accepted.__name__] = schema
        data = {"data": {"$ref": REF.format(model=accepted.__name__)}}
        body = {"type": "object", "required": ["data"], "properties": data}
        responses["202"] = {
            "description": "Accepted: a job, see its Location",
            "content": {"application/json": {"schema": body}},
        }
    op: dict[str, Any] = {
        "operationId": route.operation_id or _op_id(route),
        "summary": route.summary,
        "description": f"Roles: {route.roles}. PostgREST: `{route.target or '-'}`.",
        "tags": [route.tag],
        "parameters": _parameters(route),
        "responses": responses,
    }
    if route.body is not None:
        schema = route.body.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[route.body.__name__] = schema
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}
            },
        }
    elif route.extra.get("request_body"):  # a non-JSON upload (CSV import)
        op["requestBody"] = route.extra["request_body"]
    if route.path == "/auth/refresh":
        op["security"] = []
    return op


def _op_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.path).replace("-", "_").strip("/").replace("/", "_")
    return f"{route.method.lower()}_{words}"


def document(routes: list[Route], prefix: str) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    components: dict[str, Any] = {"Error": ERROR, "Pagination": PAGINATION}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = operation(
            route, components
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NIMBUS inventory API",
            "version": "1.0.0",
            "description": "The /api/v1 resource API, a declarative map onto PostgREST.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def setup(app: web.Application, spec: dict[str, Any]) -> None:
    """Serve the document (built once at start-up)."""
    body = orjson.dumps(spec)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/openapi.json", openapi_json)
