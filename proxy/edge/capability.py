"""The start-up check of the aiohttp internals the edge leans on.

proxy/edge/protocol.py subclasses aiohttp's RequestHandler and reaches into it: its request queue,
parser, waiter, keep-alive timer and flow control. Those are private names, free to change in any
release, so aiohttp is pinned exactly (pyproject.toml) and, before serving, `missing()` verifies
each of them — every attribute, every overridden method with its parameters, the version — in
the aiohttp actually installed. When anything differs (an upgrade, a patched build), the proxy
logs what and serves through stock aiohttp: no hit path, no relay path, aiohttp's own protocol
errors; slower, never wrong. NIMBUS_HIT_PATH=false chooses the same on purpose.

tests/test_edge_fallback.py breaks the check and runs the HTTP suite through stock aiohttp."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import aiohttp
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import RawRequestMessage
from aiohttp.http_parser import HttpRequestParser
from aiohttp.web_protocol import RequestHandler

from proxy.edge.protocol import ProxyRunner

log = logging.getLogger(__name__)

PINNED = "3.14.5"  # the exact version pyproject.toml pins
# Instance attributes of RequestHandler (and BaseProtocol) that protocol.py reads or writes.
ATTRIBUTES = (
    "_request_factory",
    "_messages",
    "_waiter",
    "_manager",
    "_force_close",
    "_keepalive_handle",
    "_next_keepalive_close_time",
    "_keepalive_timeout",
    "_max_msg_queue_size",
    "_msg_queue_resume_size",
    "_current_request",
    "_parser",
    "_buffer_paused",
    "_loop",
    "transport",
)
# Methods protocol.py overrides or calls, with their parameters (self included).
METHODS: dict[type, dict[str, tuple[str, ...]]] = {
    RequestHandler: {
        "_handle_request": ("self", "request", "start_time", "request_handler"),
        "_process_keepalive": ("self",),
        "_resume_reading_if_drained": ("self",),
        "connection_made": ("self", "transport"),
        "connection_lost": ("self", "exc"),
        "data_received": ("self", "data"),
        "shutdown": ("self", "timeout"),
        "handle_error": ("self", "request", "status", "exc", "message"),
    },
    BaseProtocol: {
        "_pause_reading_for_buffer": ("self",),
        "_drain_helper": ("self",),
    },
    HttpRequestParser: {"message_consumed": ("self",)},
    web.AppRunner: {"_make_server": ("self",)},
}
# The parsed request's fields the fast paths read.
MESSAGE_FIELDS = ("method", "path", "version", "headers", "should_close", "upgrade", "url")


def _slots(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
        names.update(klass.__dict__)
    return names


def _parameters(function: Callable[..., object]) -> tuple[str, ...] | None:
    try:
        return tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: only that it exists can be checked


def missing(
    handler: type = RequestHandler,
    methods: dict[type, dict[str, tuple[str, ...]]] | None = None,
    version: str = aiohttp.__version__,
) -> list[str]:
    """What differs from the internals protocol.py was written against; [] when nothing does."""
    found: list[str] = []
    if version != PINNED:
        found.append(f"aiohttp {version} (written against {PINNED})")
    known = _slots(handler)
    found += [f"RequestHandler.{name}" for name in ATTRIBUTES if name not in known]
    for owner, expected in (methods if methods is not None else METHODS).items():
        cls = handler if owner is RequestHandler else owner
        for name, params in expected.items():
            function = getattr(cls, name, None)
            if not callable(function):
                found.append(f"{owner.__name__}.{name}")
                continue
            actual = _parameters(function)
            if actual is not None and actual != params:
                found.append(f"{owner.__name__}.{name}{actual}")
    found += [f"RawRequestMessage.{n}" for n in MESSAGE_FIELDS if not hasattr(RawRequestMessage, n)]
    if "_app" not in _slots(web.AppRunner):
        found.append("AppRunner._app")
    # web.Server keeps them in its instance dict (no slots): read where __init__ sets them.
    source = inspect.getsource(web.Server.__init__)
    found += [f"Server.{n}" for n in ("_loop", "_kwargs") if f"self.{n} =" not in source]
    return found


def edge_runner(hit_path: bool, check: Callable[[], list[str]] = missing) -> type[web.AppRunner]:
    """The proxy's own runner (protocol handler, fast paths) when hit_path is on and every
    internal it uses is as expected; stock aiohttp's otherwise (said in a warning)."""
    if not hit_path:
        return web.AppRunner
    differs = check()
    if differs:
        log.warning(
            "aiohttp internals differ from what the fast paths were written against (%s):"
            " serving through stock aiohttp, fast paths off",
            ", ".join(differs),
        )
        return web.AppRunner
    return ProxyRunner
