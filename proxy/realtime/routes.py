"""Which channels a change may concern, without weighing every channel for every change: those
with a binding on the table (or on every table) that is unfiltered or filtered by anything but
`eq`, and those whose `eq` filter names the changed row's value. The hub still checks each
candidate's bindings and rights; this only narrows the list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxy.realtime.bindings import compare

if TYPE_CHECKING:
    from proxy.realtime.hub import Channel


def _wide(channel: Channel) -> set[str | None]:
    """The tables (None: every table) channel has an unfiltered or non-eq binding on."""
    return {b.table for b in channel.bindings if b.table is None or b.operator != "eq"}


def _eq(channel: Channel) -> set[tuple[str, str, str]]:
    """(table, column, value) of channel's eq-filtered bindings."""
    return {
        (b.table, b.column or "", b.values[0])
        for b in channel.bindings
        if b.table is not None and b.operator == "eq"
    }


class Routes:
    """add(channel), remove(channel), candidates(table, row)."""

    def __init__(self) -> None:
        self.wide: dict[str | None, set[Channel]] = {}
        # table -> column -> value -> channels
        self.eq: dict[str, dict[str, dict[str, set[Channel]]]] = {}

    def add(self, channel: Channel) -> None:
        """Route channel's bindings."""
        for table in _wide(channel):
            self.wide.setdefault(table, set()).add(channel)
        for table, column, value in _eq(channel):
            values = self.eq.setdefault(table, {}).setdefault(column, {})
            values.setdefault(value, set()).add(channel)

    def remove(self, channel: Channel) -> None:
        """Unroute channel (idempotent)."""
        for table in _wide(channel):
            same = self.wide.get(table)
            if same is not None:
                same.discard(channel)
                if not same:
                    del self.wide[table]
        for table, column, value in _eq(channel):
            columns = self.eq.get(table, {})
            values = columns.get(column, {})
            found = values.get(value)
            if found is None:
                continue
            found.discard(channel)
            if not found:
                del values[value]
                if not values:
                    del columns[column]
                    if not columns:
                        del self.eq[table]

    def candidates(self, table: str, row: dict[str, Any] | None) -> set[Channel]:
        """The channels that may want a change of table whose row (new, or old for a delete)
        is row."""
        found = set(self.wide.get(table, ()))
        found.update(self.wide.get(None, ()))
        for column, values in self.eq.get(table, {}).items():
            value = (row or {}).get(column)
            if value is None:
                continue
            if isinstance(value, str):
                found.update(values.get(value, ()))
            else:  # numbers and booleans: compared as the filter would
                for text, channels in values.items():
                    if compare(value, "eq", (text,)):
                        found.update(channels)
        return found
