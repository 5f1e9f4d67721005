"""Running the proxy: logging, the event loop (uvloop when installed), graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Callable

import orjson
from aiohttp import web

from proxy.app import create_app
from proxy.config import Settings
from proxy.edge.capability import edge_runner
from proxy.edge.workers import RESTARTED
from proxy.ops.metrics import WORKER_RESTARTS

# How long an idle keep-alive connection is kept (what web.run_app sets; aiohttp's own default,
# an hour, would hold idle clients' descriptors far too long).
KEEPALIVE_S = 75.0


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else the default one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the access log's message is already a JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
        }
        if record.name == "nimbus.access":
            entry.update(orjson.loads(message))
        else:
            entry["message"] = message
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(level: str, access_log: bool) -> None:
    """JSON lines on stderr; tokens, keys and connection strings are never passed to a logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("nimbus.access").setLevel(logging.INFO if access_log else logging.WARNING)


def serve(settings: Settings, *, announce: Callable[[str], None] | None = print) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get the shutdown grace to finish.

    announce is called once the port is listening (never before: a banner printed earlier
    invites a first request that is refused)."""
    configure_logging(settings.log_level, settings.access_log)
    if os.environ.get(RESTARTED):
        WORKER_RESTARTS.inc()
    loop = new_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_run(settings, announce))
    try:
        loop.run_until_complete(main)  # a start-up failure is raised from here, whole
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)  # the runner's cleanup: drain, close pools
        finally:
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


async def _run(settings: Settings, announce: Callable[[str], None] | None) -> None:
    """What web.run_app does, with the proxy's runner (the hit path, JSON protocol errors) when
    the aiohttp installed is the one it was written for (proxy/edge/capability.py)."""
    runner = edge_runner(settings.hit_path)(
        create_app(settings),
        handle_signals=True,  # SIGINT/SIGTERM raise GracefulExit
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_s,
        keepalive_timeout=KEEPALIVE_S,
    )
    await runner.setup()
    # Everything built so far (modules, the app) lives as long as the process: keep it out of
    # the cyclic collector's full passes, which otherwise rescan it all, stalling requests.
    gc.freeze()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True)
        await site.start()
        if announce is not None:
            announce(f"listening on {site.name}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
