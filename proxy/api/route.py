"""The declarative route entry: everything needed to build a PostgREST request, validate the
input, cache the answer, invalidate after a write, and describe the route in OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from proxy.api.params import Query
from proxy.cache.dependencies import read_dependencies, write_targets

# action -> what the route does upstream
#   list     GET table or set-returning RPC, paginated, counted
#   get      GET one row by id (404 when invisible)
#   create   POST table, organization_id set server-side
#   replace  PATCH every field of one row by id (PUT semantics)
#   update   PATCH the sent fields of one row by id
#   archive  PATCH active=false, archived_at=now() (soft delete)
#   delete   DELETE one row by id
#   read     GET an RPC returning one JSON document (analytics)
#   call     POST an RPC that writes (arguments from the validated body)
#   custom   a hand-written handler
ACTIONS = frozenset(
    {"list", "get", "create", "replace", "update", "archive", "delete", "read", "call", "custom"}
)
Handler = Callable[[web.Request, "Route"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One /api/v1 endpoint."""

    method: str
    path: str  # under /api/v1, aiohttp syntax: /products/{id}
    action: str
    target: str  # PostgREST path: `products` or `rpc/create_order`
    summary: str
    tag: str
    select: str = "*"
    query: tuple[Query, ...] = ()
    sort: tuple[str, ...] = ()  # sortable columns
    default_sort: str = "-created_at"
    fixed: tuple[tuple[str, str], ...] = ()  # always-sent PostgREST params
    body: type[BaseModel] | None = None
    org: str = "filter"  # filter | arg | resolve | none: how the chosen organization applies
    # body (None when the route takes none) -> RPC args
    args: Callable[[BaseModel | None, web.Request], dict[str, Any]] | None = None
    payload: Callable[[BaseModel], dict[str, Any]] | None = None  # body -> row JSON
    key: str = "id"  # column the path's {id} (or, with org="resolve", the organization) names
    roles: str = "any member"
    status: int = 200
    single: bool = False  # an RPC returning rows, answered as one object (404 when none)
    handler: Handler | None = None
    public: bool = False  # True: no token needed, the gate lets it pass (proxy/gate/gate.py)
    deps: frozenset[str] | None = None
    writes: frozenset[str] | None = None
    responses: tuple[int, ...] = ()  # error statuses worth documenting besides the usual
    operation_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, e.g. CSV settings

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} for {self.path}")

    @property
    def reads(self) -> bool:
        """A GET."""
        return self.method == "GET"

    def dependencies(self, select: str | None = None) -> tuple[str, ...]:
        """Tables the cached answer depends on (declared, else derived from target/select)."""
        found = (
            self.deps
            if self.deps is not None
            else read_dependencies(self.target, select if select is not None else self.select)
        )
        return tuple(sorted(found))

    def targets(self) -> frozenset[str]:
        """Tables a write through this route may change."""
        return self.writes if self.writes is not None else write_targets(self.target)
