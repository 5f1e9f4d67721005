"""LISTEN nimbus_changes: writes made anywhere but through this proxy (dashboard, SQL, cron)
reach the cache as generation bumps. One connection per process, reconnecting with backoff; a
(re)connect bumps the epoch, since anything may have changed while nobody was listening."""

from __future__ import annotations

import logging

import orjson

from proxy.generations import Generations
from proxy.pglisten import listen_forever

log = logging.getLogger(__name__)
CHANNEL = "nimbus_changes"


def table_of(payload: str) -> str | None:
    """The table named by a notification: {"table": ...} or a bare name."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.strip() or None
    if isinstance(data, dict) and isinstance(data.get("table"), str):
        return data["table"]
    return None


async def listen(database_url: str, generations: Generations) -> None:
    """Run until cancelled: every notification bumps its table; every (re)connect the epoch."""

    async def changed(payload: str) -> None:
        table = table_of(payload)
        # Nobody waits on an external write's response here: no need for acks.
        await generations.bump([table] if table else [], wait=False)

    await listen_forever(
        database_url,
        CHANNEL,
        on_notify=changed,
        on_state=generations.set_listener,
        application_name="nimbus-listener",
    )
