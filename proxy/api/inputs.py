"""Validating what the client sent: query parameters, the path id, the JSON body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, ValidationError

from proxy.api.params import INTEGER
from proxy.api.problems import ApiError, validation
from proxy.api.route import Route
from proxy.api.settings import api_settings

B = TypeVar("B", bound=BaseModel)

PAGING = ("page", "limit", "sort")
MAX_PAGE = 1_000_000


@dataclass
class Listing:
    """A validated query: paging, ordering and the PostgREST parameters of the filters."""

    page: int = 1
    limit: int = 10
    order: str = ""
    params: list[tuple[str, str]] = field(default_factory=list)
    embeds: list[str] = field(default_factory=list)
    resolvers: list[tuple[Any, Any]] = field(default_factory=list)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as [{field, message, type}], every one of them."""
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "message": err["msg"].removeprefix("Value error, "),
            "type": err["type"],
        }
        for err in exc.errors(include_url=False)
    ]


def _order(route: Route, raw: str, errors: list[dict[str, str]]) -> str:
    terms = []
    for part in raw.split(","):
        name = part.strip().lstrip("-")
        if name not in route.sort:
            errors.append({"field": "sort", "message": "sortable: " + ", ".join(route.sort)})
            return ""
        terms.append(f"{name}.{'desc' if part.strip().startswith('-') else 'asc'}")
    return ",".join(terms)


def parse_query(route: Route, query: MultiMapping[str]) -> Listing:
    """The Listing for route, or 422 listing every invalid or unknown parameter."""
    listing = Listing(limit=api_settings().api_default_limit)
    known = {q.name: q for q in route.query}
    paged = route.action == "list"
    errors: list[dict[str, str]] = []
    for name in query:
        if len(query.getall(name)) > 1:
            errors.append({"field": name, "message": "given more than once"})
        elif name not in known and not (paged and name in PAGING):
            errors.append({"field": name, "message": "unknown query parameter"})
    if paged:
        for name, low, high in (("page", 1, MAX_PAGE), ("limit", 1, 100)):
            raw = query.get(name)
            if raw is None:
                continue
            try:
                if not INTEGER.match(raw):  # int() also takes '+3', '1_0', other scripts' digits
                    raise ValueError
                value = int(raw)
                if not low <= value <= high:
                    raise ValueError
                setattr(listing, name, value)
            except ValueError:
                errors.append({"field": name, "message": f"must be an integer {low}..{high}"})
        sort = query.get("sort", route.default_sort)  # an empty sort is an invalid one
        if route.sort and (sort or "sort" in query):
            listing.order = _order(route, sort, errors)
    for name, spec in known.items():
        raw = query.get(name)
        if raw is None:
            if spec.required:
                errors.append({"field": name, "message": "required"})
            listing.params.extend(spec.absent)
            continue
        try:
            value = spec.parse(raw)
        except ValueError as exc:
            errors.append({"field": name, "message": str(exc) or "invalid value"})
            continue
        if spec.resolve is not None:
            listing.resolvers.append((spec, value))
        elif spec.embed and value is not False:
            listing.embeds.append(spec.embed)
            listing.params.extend(spec.upstream(value))
        elif not spec.embed:
            listing.params.extend(spec.upstream(value))
    if errors:
        raise validation(errors, "Invalid query parameters")
    return listing


def path_id(request: web.Request) -> str:
    """The `{id}` of the path as a canonical UUID (422 otherwise)."""
    raw = request.match_info.get("id", "")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise validation([{"field": "id", "message": "must be a UUID"}], "Invalid id") from None


async def parse_body(request: web.Request, model: type[B] | None) -> B:
    """The body validated by model: 400 when it is not JSON, 422 with every field error."""
    if model is None:
        raise TypeError("the route declares no body model")
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ApiError(400, "bad_request", "Body must be JSON") from None
    if data is None:
        raise validation([{"field": "body", "message": "a JSON object is required"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation(field_errors(exc)) from None
