"""The /api/v1 error type and the mapping of PostgREST/PostgreSQL errors onto it.

Every failure becomes `{"error": {"code", "message", "details", "request_id"}}` with a stable
code; SQL's deliberate errors (`PTxxx`, the code in `hint`) keep their status and code."""

from __future__ import annotations

import re
from typing import Any

import orjson

from proxy.ops.errors import ProxyError, database_connection_lost

CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    406: "not_acceptable",
    409: "conflict",
    422: "validation_failed",
    429: "rate_limited",
    501: "not_implemented",
}
KEY = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>.*)\) (?P<rest>.*)")
TABLE = re.compile(r'table "(?P<table>[^"]+)"')
CONSTRAINT = re.compile(r'constraint "(?P<name>[^"]+)"')
INVALID_INPUT = ("22P02", "22007", "22008", "22003", "22001", "22023", "23514", "23502")


class ApiError(ProxyError):
    """An /api/v1 error; details may be any JSON value (field errors, conflicting rows)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, status=status, code=code)
        self.details = details


def validation(details: Any, message: str = "Request is invalid") -> ApiError:
    """422 validation_failed with every field error in details."""
    return ApiError(422, "validation_failed", message, details)


def _details(raw: Any) -> Any:
    if isinstance(raw, str) and raw[:1] in "[{":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return raw


def _key_columns(details: str, message: str) -> list[str]:
    """The columns of a violated key: from the detail, else (PostgreSQL hides the detail under
    RLS) from the constraint's conventional name, e.g. products_organization_id_sku_key."""
    match = KEY.match(details or "")
    if match:
        return [c.strip() for c in match["cols"].split(",") if c.strip() != "organization_id"]
    named = CONSTRAINT.search(message or "")
    if not named:
        return []
    name = re.sub(r"_(key|pkey|fkey)$", "", named["name"]).replace("organization_id_", "")
    column = name.partition("_")[2]
    if named["name"].endswith("_fkey"):
        column += "_id"
    return [column] if column else []


def from_postgrest(status: int, body: dict[str, Any]) -> ProxyError:
    """The error to answer for a PostgREST error response (status, parsed JSON body)."""
    pg = str(body.get("code") or "")
    message = str(body.get("message") or "Request failed")
    details, hint = body.get("details"), body.get("hint")
    if pg.startswith("PT"):
        code = hint if isinstance(hint, str) and CODE.match(hint) else None
        if code == "validation_failed":
            status = 422  # the API's one status for invalid input, whichever layer found it
        return ApiError(status, code or BY_STATUS.get(status, "error"), message, _details(details))
    if pg == "23505":
        cols = _key_columns(details or "", message)
        what = ", ".join(cols) or "a unique value"
        return ApiError(409, "conflict", f"Already exists: {what}", {"fields": cols})
    if pg == "23503":
        text = str(details or "")
        table = TABLE.search(text)
        if "still referenced" in text:
            by = table["table"] if table else "other rows"
            return ApiError(409, "conflict", f"Still referenced by {by}", {"referenced_by": by})
        cols = _key_columns(text, message)
        return validation(
            [{"field": c, "message": "does not exist"} for c in cols] or text,
            "A referenced row does not exist",
        )
    if pg in INVALID_INPUT:
        return validation(details or message, message)
    if pg == "42501":
        return ApiError(403, "forbidden", "Your role may not do this", message)
    if pg == "PGRST116":
        if "0 rows" in str(details):
            return ApiError(404, "not_found", "Not found")
        return ApiError(409, "conflict", "More than one row matched", details)
    if pg == "PGRST202":
        return ApiError(
            501, "not_implemented", "The database has no function for this yet", message
        )
    if pg in ("40001", "40P01"):
        return ApiError(409, "conflict", "Concurrent update; retry", message)
    if pg == "57014":
        return ApiError(504, "upstream_timeout", "The database took too long", None)
    lost = database_connection_lost(status, body)
    if lost is not None:
        return lost
    if status >= 500:
        code = "upstream_unavailable" if status in (502, 503) else "upstream_error"
        if status == 500:  # PostgreSQL's words may name internals: they go to the log only
            message, pg = "PostgREST could not answer this request", ""
        return ApiError(503 if status in (502, 503) else 502, code, message, pg or None)
    if status in (401, 403):
        return ApiError(status, BY_STATUS[status], message, details)
    # Remaining PostgREST 4xx (a filter or body PostgREST could not parse): the request's fault.
    return ApiError(400 if status < 500 else 502, "bad_request", message, details or pg)
