"""Running the proxy: logging, the event loop (uvloop when installed), graceful shutdown."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from proxy.app import create_app
from proxy.config import Settings


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else the default one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def configure_logging(level: str) -> None:
    """One line per record on stderr; tokens and keys are never passed to a logger."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def serve(settings: Settings, *, print_banner: bool = True) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get the shutdown grace to finish."""
    configure_logging(settings.log_level)
    loop = new_loop()
    asyncio.set_event_loop(loop)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop=loop,
        access_log=None,
        print=print if print_banner else None,
        shutdown_timeout=settings.shutdown_grace_s,
        reuse_port=True,
    )
