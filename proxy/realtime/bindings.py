"""postgres_changes bindings: what a join asks for (event, schema, table, filter) and whether a
change matches it. Filters are Supabase's `column=op.value` with eq, neq, lt, lte, gt, gte, in."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in")


class BadBinding(ValueError):
    """A postgres_changes entry the proxy cannot serve; the join is refused with its message."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One postgres_changes entry of a join, with the id the client matches events by."""

    id: int
    event: str
    schema: str
    table: str | None  # None: every published table of the schema
    filter: str | None
    column: str | None = None
    operator: str | None = None
    values: tuple[str, ...] = ()

    def reply(self) -> dict[str, Any]:
        """The entry as the join's reply lists it (the clients compare it with their own)."""
        return {
            "id": self.id,
            "event": self.event,
            "schema": self.schema,
            "table": self.table,
            "filter": self.filter,
        }

    def matches(self, kind: str, record: dict[str, Any] | None) -> bool:
        """Whether a change of this kind, whose row (as the client sees it) is record, is one."""
        if self.event != "*" and self.event != kind:
            return False
        if self.column is None:
            return True
        if not record or self.column not in record:
            return False
        return compare(record[self.column], self.operator or "eq", self.values)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compare(value: Any, operator: str, values: tuple[str, ...]) -> bool:
    """SQL-like comparison of a row's JSON value with the filter's text: numbers as numbers,
    everything else as text; null matches nothing."""
    if value is None:
        return False
    if operator == "in":
        return any(compare(value, "eq", (v,)) for v in values)
    wanted = values[0]
    left: float | str
    right: float | str
    if isinstance(value, int | float) and not isinstance(value, bool):
        other = _number(wanted)
        if other is None:
            return operator == "neq"
        left, right = float(value), other
    else:
        left, right = _text(value), wanted
    if operator == "eq":
        return left == right
    if operator == "neq":
        return left != right
    if operator == "lt":
        return left < right  # type: ignore[operator]
    if operator == "lte":
        return left <= right  # type: ignore[operator]
    if operator == "gt":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _parse_filter(text: str, columns: set[str] | None) -> tuple[str, str, tuple[str, ...]]:
    column, sep, rest = text.partition("=")
    operator, dot, value = rest.partition(".")
    if not sep or not dot or not column:
        raise BadBinding(f"filter {text!r} is not column=operator.value")
    if operator not in OPERATORS:
        raise BadBinding(f"filter operator {operator!r} is not one of {', '.join(OPERATORS)}")
    if columns is not None and column not in columns:
        raise BadBinding(f"filter column {column!r} is not a column of the table")
    if operator == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise BadBinding("an in filter is in.(a,b,c)")
        items = tuple(v.strip().strip('"') for v in value[1:-1].split(",") if v.strip())
        if not items or len(items) > 100:
            raise BadBinding("an in filter lists 1 to 100 values")
        return column, operator, items
    return column, operator, (value,)


def parse(raw: object, tables: dict[str, set[str]]) -> Binding:
    """The Binding of one join entry; tables maps each published table to its columns."""
    if not isinstance(raw, dict):
        raise BadBinding("each postgres_changes entry is an object")
    event = raw.get("event", "*")
    schema = raw.get("schema") or "public"
    table = raw.get("table")
    text = raw.get("filter")
    if event not in EVENTS:
        raise BadBinding(f"event must be one of {', '.join(EVENTS)}")
    if schema != "public":
        raise BadBinding("only the public schema is published")
    if table in ("*", ""):
        table = None
    if table is not None and (not isinstance(table, str) or table not in tables):
        raise BadBinding(f"table {table!r} is not published to Realtime")
    if text in ("", None):
        text = None
    elif not isinstance(text, str):
        raise BadBinding("filter must be a string")
    key = f"{event}|{schema}|{table or ''}|{text or ''}"
    # Stable ids: the same binding has the same id on every socket and process, so one frame
    # serves every socket of a topic with the same bindings.
    binding_id = zlib.crc32(key.encode()) & 0x7FFFFFF or 1
    if text is None:
        return Binding(binding_id, event, schema, table, None)
    if table is None:
        raise BadBinding("a filter needs a table")
    column, operator, values = _parse_filter(text, tables[table])
    return Binding(binding_id, event, schema, table, text, column, operator, values)
