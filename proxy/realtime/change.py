"""One row change as the feed delivered it, and the `data` object the clients parse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from proxy.realtime.catalog import Table


@dataclass(frozen=True, slots=True)
class Change:
    """One row change as the feed delivered it."""

    table: Table
    kind: str  # INSERT, UPDATE, DELETE
    new: dict[str, Any] | None
    old: dict[str, Any] | None
    timestamp: str

    def data(self) -> bytes:
        """The `data` object the clients parse, encoded once."""
        body: dict[str, Any] = {
            "schema": "public",
            "table": self.table.name,
            "commit_timestamp": self.timestamp,
            "type": self.kind,
            "columns": self.table.columns,
            "errors": None,
        }
        if self.kind != "DELETE":
            body["record"] = self.new
        if self.kind != "INSERT":
            body["old_record"] = self.table.old_record(self.old)
        return orjson.dumps(body)

    def organization(self) -> str | None:
        """The organization the row belongs to (None: not organization-scoped)."""
        column = self.table.organization_column
        row = self.new if self.new is not None else self.old
        if column is None or row is None:
            return None
        value = row.get(column)
        return value if isinstance(value, str) else None
