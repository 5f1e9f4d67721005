"""PostgREST's root document (`GET /rest/v1/`, its OpenAPI description) as the proxy serves it:
without the internal address PostgREST believes it is reached at (`host`, `basePath`,
`schemes`, OpenAPI 3 `servers`: e.g. 127.0.0.1:3000), which a client has no business knowing.
Relative to the document, the API is where the client found it: the proxy's /rest/v1."""

from __future__ import annotations

import orjson

from proxy.ops.errors import REST_PREFIX

# The document is held whole to be rewritten (a large schema's runs to a few hundred KiB).
MAX_BYTES = 16 * 1024 * 1024
HIDDEN = ("host", "schemes")


def is_root(resource: str) -> bool:
    """Whether a /rest/v1 resource (path tail without slashes) is the root document."""
    return resource == ""


def without_addresses(body: bytes) -> bytes:
    """The document with no upstream host, scheme or server URL; unchanged if not a JSON object
    (PostgREST answers its root only as OpenAPI JSON)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(doc, dict):
        return body
    for name in HIDDEN:
        doc.pop(name, None)
    if "basePath" in doc:
        doc["basePath"] = REST_PREFIX
    if "servers" in doc:
        doc["servers"] = [{"url": REST_PREFIX}]
    return orjson.dumps(doc)
