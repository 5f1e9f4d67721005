"""Cache keys: who is asking (Identity.scope, never the token) and exactly what was asked."""

from __future__ import annotations

import functools
import hashlib

from multidict import CIMultiDictProxy


def normalise_query(query: str) -> str:
    """Parameters stably sorted by name: `a=1&b=2` and `b=2&a=1` are one entry; the order of a
    repeated name (two filters on one column) is kept, since PostgREST reads them in order.
    Only when every name is plain: PostgREST also splits on `;` and decodes names, so with a
    `;`, a `%` or a `+` in a name two spellings of one name could trade places (`select=a&
    %73elect=b` is select=a, `%73elect=b&select=a` select=b); such a query stays as sent."""
    if "&" not in query:
        return query
    if len(query) <= MEMO_MAX:
        return _sorted_memo(query)
    return _sorted(query)


def _sorted(query: str) -> str:
    if ";" in query:
        return query
    pieces = [(p.partition("=")[0], p) for p in query.split("&")]
    if any("%" in name or "+" in name for name, _ in pieces):
        return query
    return "&".join(p for _, p in sorted(pieces, key=lambda np: np[0]))


# Clients repeat the same few queries: short ones are remembered (bounded in count and size).
MEMO_MAX = 512
_sorted_memo = functools.lru_cache(maxsize=4096)(_sorted)


Key = tuple[str, ...]


def cache_key(
    scope_digest: str, method: str, path: str, query: str, headers: CIMultiDictProxy[str]
) -> Key:
    """The entry key: scope, method (HEAD shares GET's entry), path, query, varying headers —
    every value of each, in order: all are forwarded, and PostgREST reads them all (two Prefer
    headers are two sets of preferences). A tuple: the L1 dict hashes it cheaply; Redis gets
    its digest (redis_key) on an L1 miss."""
    getall = headers.getall
    return (
        scope_digest,
        "GET" if method == "HEAD" else method,
        path,
        normalise_query(query),
        # Joined by a line break, which no value can hold: two values stay apart from one.
        "\n".join(getall("Accept", ())),
        "\n".join(getall("Prefer", ())),
        "\n".join(getall("Range", ())),
        "\n".join(getall("Range-Unit", ())),
        "\n".join(getall("Accept-Profile", ())),
    )


def redis_key(key: Key) -> str:
    """The digest naming an entry in Redis."""
    # surrogateescape: header values that were not UTF-8 keep their bytes (proxy/upstream/pool.py)
    text = "\x1f".join(key).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(text, digest_size=16).hexdigest()
