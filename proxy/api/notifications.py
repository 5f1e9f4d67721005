"""Route map of notifications: the live stream (proxy/notifications), the history with an
unread filter, and marking read (rows in notification_reads, inserted as the caller)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field, model_validator

from proxy.api import postgrest, tenancy
from proxy.api.inputs import parse_body, parse_query
from proxy.api.params import Query
from proxy.api.reads import scoped
from proxy.api.respond import envelope, pagination, through_cache
from proxy.api.route import Route
from proxy.api.writes import write
from proxy.cache.dependencies import TENANCY
from proxy.cache.tenants import user_of
from proxy.gate.gate import identity_of
from proxy.gate.identity import Identity
from proxy.notifications.stream import stream

KINDS = ("low_stock", "order_status", "lot_expiring")
SELECT = "id,organization_id,kind,payload,created_at,reads:notification_reads(read_at)"


def _not_bool(value: object) -> object:
    """Refuse what lax int parsing would turn into an id: true/false and strings."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


MARK_PAGE = 1000
# A notification id: a bigint (no bools, no strings), whatever integer form the JSON used.
NotificationId = Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(_not_bool)]


class ReadIn(BaseModel):
    """Which notifications to mark read: some ids, or all unread ones."""

    model_config = {
        "extra": "forbid",
        # The contract says what the validator checks: exactly one of the two forms.
        "json_schema_extra": {
            "oneOf": [
                {
                    "required": ["ids"],
                    "properties": {"ids": {"type": "array", "items": {"type": "integer"}}},
                },
                {"required": ["all"], "properties": {"all": {"const": True}}},
            ]
        },
    }

    ids: list[NotificationId] | None = Field(None, min_length=1, max_length=MARK_PAGE)
    all: bool | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ReadIn:
        if (self.ids is None) == (self.all is not True):
            raise ValueError('send either "ids": [...] or "all": true')
        return self


def shaped(row: dict[str, Any]) -> dict[str, Any]:
    """A notification as the API shows it: read_at instead of the embedded reads."""
    reads = row.pop("reads", None) or []
    row["read_at"] = reads[0]["read_at"] if reads else None
    return row


async def only_unread(
    _request: web.Request, _identity: Identity, value: bool, _org: str | None
) -> list[tuple[str, str]]:
    """`unread=true`: rows without a notification_reads row of the caller (RLS shows only
    the caller's own reads, so the embedded reads are theirs alone)."""
    return [("reads", "is.null")] if value else []


async def history(request: web.Request, route: Route) -> web.StreamResponse:
    """GET a page of the caller's notifications, newest first; `unread=true` for unread only."""
    identity = identity_of(request)
    listing = parse_query(route, request.query)
    org = tenancy.chosen(request, identity)

    async def fetch() -> web.Response:
        params = [*listing.params, *scoped(route, org), ("select", SELECT)]
        for spec, value in listing.resolvers:
            params.extend(await spec.resolve(request, identity, value, org))
        order = listing.order or "id.desc"
        params += [
            ("order", order if order.startswith("id.") else order + ",id.desc"),
            ("limit", str(listing.limit)),
            ("offset", str((listing.page - 1) * listing.limit)),
        ]
        reply = await postgrest.call(
            request,
            identity,
            "GET",
            route.target,
            params=params,
            headers={"Prefer": "count=exact"},
            ok=(416,),
        )
        rows = [shaped(r) for r in reply.json() or []] if reply.status != 416 else []
        return envelope(
            rows, pagination=pagination(listing.page, listing.limit, reply.total(), exact=True)
        )

    return await through_cache(request, identity, route.dependencies(), fetch)


async def unread_ids(
    request: web.Request, identity: Identity, body: ReadIn, org: str | None, route: Route
) -> list[int]:
    """Up to MARK_PAGE ids of the caller's unread notifications (of body.ids, if given)."""
    params = [
        ("select", "id,reads:notification_reads(read_at)"),
        ("reads", "is.null"),
        ("order", "id.asc"),
        ("limit", str(MARK_PAGE)),
        *scoped(route, org),
    ]
    if body.ids is not None:
        params.append(("id", "in.(" + ",".join(str(i) for i in body.ids) + ")"))
    reply = await postgrest.call(request, identity, "GET", "notifications", params=params)
    return [row["id"] for row in reply.json() or []]


async def mark_read(request: web.Request, route: Route) -> web.StreamResponse:
    """POST {"ids": [...]} or {"all": true}: mark them read for the caller. Ids the caller
    cannot see, or has read already, are left alone; `marked` counts the newly read."""
    identity = identity_of(request)
    parse_query(route, request.query)
    body = await parse_body(request, ReadIn)
    org = tenancy.chosen(request, identity)
    caller = user_of(identity)
    marked = 0
    while True:
        ids = await unread_ids(request, identity, body, org, route)
        if ids:
            # Each page a write of its own, by the rule of every write (proxy/api/writes.py):
            # one whose answer never came back (it may have committed) moves the lists too.
            await write(
                request,
                identity,
                route,
                "POST",
                json=[{"user_id": identity.subject, "notification_id": i} for i in ids],
                headers={"Prefer": "resolution=ignore-duplicates,return=minimal"},
                users=None if caller is None else (caller,),  # RLS: the caller's rows only
            )
            marked += len(ids)
        if body.ids is not None or len(ids) < MARK_PAGE:
            break
    return envelope({"marked": marked})


ROUTES: list[Route] = [
    Route(
        "GET",
        "/notifications/stream",
        "custom",
        "notifications",
        "Live notifications of your organizations (Server-Sent Events; honours Last-Event-ID)",
        "Notifications",
        query=(Query("last_event_id", "integer", description="resume after this id"),),
        handler=stream,
        org="none",
        extra={"sse": True},
    ),
    Route(
        "GET",
        "/notifications",
        "list",
        "notifications",
        "Notification history, newest first",
        "Notifications",
        query=(
            Query(
                "unread",
                "boolean",
                description="only the ones you have not marked read",
                resolve=only_unread,
            ),
            Query("kind", "string", "kind", "eq", "only this kind", enum=KINDS),
        ),
        sort=("id", "created_at"),
        default_sort="-id",
        handler=history,
        deps=frozenset({"notifications", "notification_reads", TENANCY}),
    ),
    Route(
        "POST",
        "/notifications/read",
        "custom",
        "notification_reads",
        'Mark notifications read: {"ids": [...]} or {"all": true}',
        "Notifications",
        body=ReadIn,
        handler=mark_read,
        writes=frozenset({"notification_reads"}),
    ),
]
