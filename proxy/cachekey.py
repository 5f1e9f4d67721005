"""Cache keys: who is asking (Identity.scope, never the token) and exactly what was asked."""

from __future__ import annotations

import hashlib

VARY = ("Accept", "Prefer", "Range", "Range-Unit", "Accept-Profile")


def normalise_query(query: str) -> str:
    """Parameters stably sorted by name: `a=1&b=2` and `b=2&a=1` are one entry; the order of a
    repeated name (two filters on one column) is kept, since PostgREST reads them in order."""
    if "&" not in query:
        return query
    return "&".join(sorted(query.split("&"), key=lambda p: p.partition("=")[0]))


def cache_key(scope_digest: str, method: str, path: str, query: str, headers) -> str:
    """The entry key: scope, method (HEAD shares GET's entry), path, query, varying headers."""
    parts = [scope_digest, "GET" if method == "HEAD" else method, path, normalise_query(query)]
    parts.extend(headers.get(name, "") for name in VARY)
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return digest
