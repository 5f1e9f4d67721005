"""The one row a query always answers (`show`, an aggregate, `insert ... returning`): a missing
one is a broken database, said as such rather than as a failure to unpack None."""

from __future__ import annotations

from typing import TypeVar

Row = TypeVar("Row")


def one(row: Row | None) -> Row:
    """row, or LookupError when the query answered none."""
    if row is None:
        raise LookupError("the query answered no row")
    return row
