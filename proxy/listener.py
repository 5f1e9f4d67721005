"""LISTEN nimbus_changes: writes made anywhere but through this proxy (dashboard, SQL, cron)
reach the cache as generation bumps. One connection per process, reconnecting with backoff; a
(re)connect bumps the epoch, since anything may have changed while nobody was listening."""

from __future__ import annotations

import logging

import orjson

from proxy.dependencies import changed_names
from proxy.generations import Generations
from proxy.pglisten import listen_forever

log = logging.getLogger(__name__)
CHANNEL = "nimbus_changes"


def names_of(payload: str) -> set[str]:
    """The generation names a notification moves: {"table": ..., "products": [...]} (products
    only from private.notify_stock_change), {"table": ...}, or a bare table name."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        table = payload.strip()
        return changed_names(table, None) if table else set()
    if not isinstance(data, dict) or not isinstance(data.get("table"), str):
        return set()
    products = data.get("products")
    if not (isinstance(products, list) and all(isinstance(p, str) for p in products)):
        products = None
    return changed_names(data["table"], products)


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
