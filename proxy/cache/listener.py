"""LISTEN nimbus_changes: writes made anywhere but through this proxy (dashboard, SQL, cron)
reach the cache as generation bumps. One connection per process, reconnecting with backoff; a
(re)connect bumps the epoch, since anything may have changed while nobody was listening."""

from __future__ import annotations

import logging

import orjson

from proxy.cache.dependencies import Place, changed_names
from proxy.cache.generations import Generations
from proxy.ops.pglisten import listen_forever

log = logging.getLogger(__name__)
CHANNEL = "nimbus_changes"


def names_of(payload: str) -> set[str]:
    """The generation names a notification moves: {"table": ..., "products": [...],
    "places": [[product, location], ...], "organizations": [...]} (each optional: products and
    places from private.notify_stock_change, organizations from tables with organization_id),
    or a bare table name. A list that is not
    all strings counts as not given (the whole table)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        table = payload.strip()
        return changed_names(table, None) if table else set()
    if not isinstance(data, dict) or not isinstance(data.get("table"), str):
        return set()
    return changed_names(
        data["table"],
        _strings(data.get("products")),
        _strings(data.get("organizations")),
        _places(data.get("places")),
    )


def _strings(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.lower() for v in value]
    return None


def _places(value: object) -> list[Place] | None:
    """[[product id, location id], ...]; anything else counts as not given."""
    if not isinstance(value, list):
        return None
    places = []
    for pair in value:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        ):
            return None
        places.append((pair[0].lower(), pair[1].lower()))
    return places


async def listen(database_url: str, generations: Generations) -> None:
    """Run until cancelled: every notification bumps its table; every (re)connect the epoch."""

    async def changed(payload: str) -> None:
        # Nobody waits on an external write's response here: no need for acks.
        await generations.bump(names_of(payload), wait=False)

    await listen_forever(
        database_url,
        CHANNEL,
        on_notify=changed,
        on_state=generations.set_listener,
        application_name="nimbus-listener",
    )
