"""Query parameters of /api/v1 routes: each declares its type (for validation and OpenAPI) and
the PostgREST parameters it becomes (a filter, an RPC argument, an `or=` search, an embed)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypedDict, Unpack

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")
# A text parameter: something besides whitespace, and no NUL (PostgreSQL text cannot hold one).
TEXT = re.compile(r"^\s*[^\x00\s][^\x00]*$")
# \Z, not $: $ also matches before a final newline (and int() ignores one).
INTEGER = re.compile(r"^-?[0-9]+\Z")
NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?\Z")
# Characters that end a value in PostgREST's logic trees unless it is double-quoted.
RESERVED = set(',.:()"\\ ')


@dataclass(frozen=True)
class Query:
    """One allowed query parameter and how it maps onto PostgREST."""

    name: str
    type: str = "string"  # string | uuid | boolean | integer | number | date | datetime
    key: str = ""  # PostgREST parameter name (a column, or an RPC argument)
    op: str = "eq"  # filter operator; "" for an RPC argument passed as is
    description: str = ""
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = 200
    embed: str = ""  # select item this filter needs, e.g. `stock_levels!inner()`
    search: tuple[str, ...] = ()  # columns an ilike search spans
    resolve: Callable[..., Awaitable[list[tuple[str, str]]]] | None = field(
        default=None, compare=False
    )
    extra_deps: frozenset[str] = frozenset()  # tables a resolver reads
    absent: tuple[tuple[str, str], ...] = ()  # PostgREST params sent when not given
    required: bool = False

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the parameter for OpenAPI."""
        base: dict[str, Any] = {
            "uuid": {"type": "string", "format": "uuid"},
            "boolean": {"type": "boolean"},
            "integer": {"type": "integer"},
            "number": {"type": "number"},
            "date": {"type": "string", "format": "date"},
            "datetime": {"type": "string", "format": "date-time"},
        }.get(
            self.type,
            {
                "type": "string",
                "minLength": 1,
                "maxLength": self.max_length,
                "pattern": TEXT.pattern,
            },
        )
        if self.enum:
            base = {"type": "string", "enum": list(self.enum)}
        if self.minimum is not None:
            base["minimum"] = self.minimum
        if self.maximum is not None:
            base["maximum"] = self.maximum
        return base

    def parse(self, raw: str) -> Any:
        """The validated value; raises ValueError with a message for the client."""
        if self.enum:
            if raw not in self.enum:
                raise ValueError("must be one of " + ", ".join(self.enum))
            return raw
        kind = self.type
        if kind == "uuid":
            return str(uuid.UUID(raw))
        if kind == "boolean":
            if raw.lower() in TRUE + FALSE:
                return raw.lower() in TRUE
            raise ValueError("must be true or false")
        if kind in ("integer", "number"):
            # Plain ASCII decimals only: int() and float() also take other scripts' digits,
            # '1_000', '+3' and surrounding spaces — other spellings of one value.
            if not (INTEGER if kind == "integer" else NUMBER).match(raw):
                raise ValueError(f"must be {'an integer' if kind == 'integer' else 'a number'}")
            value: float = int(raw) if kind == "integer" else float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("must be a finite number")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"must be >= {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"must be <= {self.maximum:g}")
            return value
        if kind == "date":
            return date.fromisoformat(raw).isoformat()
        if kind == "datetime":
            parsed = datetime.fromisoformat(raw)
            # In UTC: PostgreSQL refuses offsets of 16 hours or more, RFC 3339 allows them.
            return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).isoformat()
        if len(raw) > self.max_length or not TEXT.match(raw):
            raise ValueError(f"must be 1 to {self.max_length} characters, not blank, without NUL")
        return raw

    def upstream(self, value: Any) -> list[tuple[str, str]]:
        """The PostgREST parameters for a parsed value."""
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if self.search:
            pattern = quoted("*" + like_escape(text) + "*")
            terms = ",".join(f"{column}.ilike.{pattern}" for column in self.search)
            return [("or", f"({terms})")]
        if not self.op:
            return [(self.key or self.name, text)]
        if self.op == "set":  # a boolean that asks whether a nullable column is set
            return [(self.key, "not.is.null" if value else "is.null")]
        return [(self.key or self.name, f"{self.op}.{text}")]


def like_escape(text: str) -> str:
    """text matched literally by (i)like: its wildcards escaped; `*` (PostgREST's %) dropped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", " ")


def quoted(value: str) -> str:
    """value as a double-quoted PostgREST logic-tree operand (reserved characters kept)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class QueryOptions(TypedDict, total=False):
    """The rest of a Query's fields, for eq() and arg()."""

    enum: tuple[str, ...]
    minimum: float | None
    maximum: float | None
    max_length: int
    embed: str
    search: tuple[str, ...]
    resolve: Callable[..., Awaitable[list[tuple[str, str]]]] | None
    extra_deps: frozenset[str]
    absent: tuple[tuple[str, str], ...]
    required: bool


def eq(
    name: str, column: str, kind: str = "uuid", description: str = "", **kw: Unpack[QueryOptions]
) -> Query:
    """`name=value` -> `column=eq.value`."""
    return Query(name, kind, column, "eq", description, **kw)


def arg(
    name: str,
    key: str = "",
    kind: str = "string",
    description: str = "",
    **kw: Unpack[QueryOptions],
) -> Query:
    """`name=value` -> the RPC argument `key=value`."""
    return Query(name, kind, key or name, "", description, **kw)


def search(name: str, *columns: str, description: str = "") -> Query:
    """A case-insensitive substring search over columns."""
    return Query(
        name, "string", "", "", description or "substring of " + ", ".join(columns), search=columns
    )
