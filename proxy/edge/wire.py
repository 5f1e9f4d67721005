"""The one wire renderer of the fast paths (proxy/edge/hitpath.py, proxy/edge/relaypath.py): an
answer's status line and headers as bytes, rendered the way aiohttp's own writer renders the full
path's answers, so a client cannot tell which path answered (tests/test_hitpath.py and
tests/test_relaypath.py compare them header by header).

aiohttp's rules, kept here: header text is UTF-8; a body (not an empty one) without a
Content-Type is `application/octet-stream`; 1xx, 204 and 304 carry no body framing; a body of
unknown length is sent chunked. The per-request lines (RateLimit, X-Request-Id, Date, Server) come
last."""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

from aiohttp.http import SERVER_SOFTWARE

SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode()
CHUNK_END = b"0\r\n\r\n"
NO_BODY = frozenset({204, 304})


class Clock:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self.second = 0
        self.header = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.header = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self.header


def reason(status: int) -> str:
    """The reason phrase aiohttp sends for status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"  # as aiohttp says for a status it has no phrase for


def head(status: int, headers: Iterable[tuple[str, str]], length: int | None) -> bytes:
    """The status line and the answer's own headers, with its framing: Content-Length when
    length is known, chunked when it is None (neither for a status that has no body)."""
    lines = [f"HTTP/1.1 {status} {reason(status)}\r\n"]
    typed = False
    for name, value in headers:
        lines.append(f"{name}: {value}\r\n")
        typed = typed or name.lower() == "content-type"
    if status not in NO_BODY and status >= 200:
        if not typed and length != 0:
            lines.append("Content-Type: application/octet-stream\r\n")
        if length is None:
            lines.append("Transfer-Encoding: chunked\r\n")
        else:
            lines.append(f"Content-Length: {length}\r\n")
    return "".join(lines).encode()


def finish(own: bytes, limits: bytes, request_id: str, clock: Clock) -> bytes:
    """own (from head()) + the per-request lines + the blank line that ends the head."""
    rid = request_id.encode()
    return b"".join((own, limits, b"X-Request-Id: ", rid, b"\r\n", clock.date(), SERVER, b"\r\n"))


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)
