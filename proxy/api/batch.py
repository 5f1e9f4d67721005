"""Batches of product rows for `public.bulk_upsert_products`: each row is validated on its own
(pydantic), the valid ones go to the SQL function in one call (one statement, one transaction:
all or nothing), and every problem, from pydantic or from SQL's checks, is reported by the row's
index in the request (and its line, for a CSV file)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from aiohttp import web
from pydantic import BaseModel, ValidationError

from proxy.api import postgrest, tenancy
from proxy.api.inputs import field_errors
from proxy.api.problems import ApiError, validation
from proxy.api.route import Route
from proxy.api.writes import write
from proxy.gate.identity import Identity

FUNCTION = "rpc/bulk_upsert_products"


@dataclass
class Batch:
    """The rows of one request: the valid ones as JSON and the problems of the others."""

    total: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # request index of each valid row
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    lines: dict[int, int] = field(default_factory=dict)  # CSV line of each request index

    def add(
        self,
        index: int,
        raw: Any,
        model: type[BaseModel],
        *,
        partial: bool,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        """Validate one row; keep its JSON, or its errors (with any found before, e.g. names
        a CSV row refers to)."""
        self.total = max(self.total, index + 1)
        found = list(errors or [])
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            found = field_errors(exc) + found
        if found:
            self.errors[index] = found
            return
        self.rows.append(parsed.model_dump(mode="json", exclude_unset=partial))
        self.positions.append(index)

    def without(self, indexes: Iterable[int]) -> Batch:
        """The same batch less the valid rows at these request indexes."""
        drop = set(indexes)
        kept = [
            (row, at) for row, at in zip(self.rows, self.positions, strict=True) if at not in drop
        ]
        rest = Batch(total=self.total, errors=self.errors, lines=self.lines)
        rest.rows = [row for row, _ in kept]
        rest.positions = [at for _, at in kept]
        return rest

    def problem(self, index: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
        """One entry of the error details: index, line (CSV) and errors."""
        entry: dict[str, Any] = {"index": index}
        if index in self.lines:
            entry["line"] = self.lines[index]
        entry["errors"] = errors
        return entry


def validated(data: Any, model: type[BaseModel], limit: int, *, partial: bool = False) -> Batch:
    """The Batch of a JSON body `{"rows": [...]}`; 422 when the body itself is malformed."""
    if not isinstance(data, dict):
        raise validation([{"field": "body", "message": "a JSON object with rows is required"}])
    unknown = sorted(set(data) - {"rows"})
    rows = data.get("rows")
    errors = [{"field": name, "message": "unknown field"} for name in unknown]
    if not isinstance(rows, list):
        errors.append({"field": "rows", "message": "an array of rows is required"})
    elif not 1 <= len(rows) <= limit:
        errors.append({"field": "rows", "message": f"send 1 to {limit} rows"})
    if errors or not isinstance(rows, list):  # not a list: errors says so
        raise validation(errors)
    batch = Batch(total=len(rows))
    for index, raw in enumerate(rows):
        batch.add(index, raw, model, partial=partial)
    return batch


def _row_list(details: object) -> TypeGuard[list[dict[str, Any]]]:
    return isinstance(details, list) and all(
        isinstance(d, dict) and isinstance(d.get("index"), int) for d in details
    )


def _remapped(batch: Batch, details: list[dict[str, Any]]) -> dict[int, list[Any]]:
    """SQL's problems (indexes into the rows sent) by request index."""
    return {
        batch.positions[d["index"]]: d.get("errors", [])
        for d in details
        if 0 <= d["index"] < len(batch.positions)
    }


async def _call(
    request: web.Request, identity: Identity, route: Route, batch: Batch, mode: str, dry: bool
) -> dict[str, Any]:
    args: dict[str, Any] = {"rows": batch.rows, "mode": mode, "dry_run": dry}
    org = tenancy.chosen(request, identity)
    if org is not None:
        args["organization_id"] = org
    if dry:  # writes nothing: no invalidation needed
        reply = await postgrest.call(request, identity, "POST", FUNCTION, json=args)
    else:
        reply = await write(request, identity, route, "POST", json=args)
    outcome: dict[str, Any] = reply.json()  # {created, updated, rows}
    return outcome


async def check(
    request: web.Request, identity: Identity, route: Route, batch: Batch, mode: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every problem of the batch (pydantic's, then SQL's dry run over the valid rows) and what
    the write would do ({created, updated})."""
    problems = dict(batch.errors)
    outcome: dict[str, Any] = {"created": 0, "updated": 0, "rows": []}
    if batch.rows:
        try:
            outcome = await _call(request, identity, route, batch, mode, True)
        except ApiError as exc:
            if exc.status not in (404, 409, 422) or not _row_list(exc.details):
                raise
            flagged = _remapped(batch, exc.details)
            for index, errors in flagged.items():
                problems.setdefault(index, []).extend(errors)
            # The counts are what the valid rows would do: asked again without the rows SQL
            # refused (they were 0 for the whole batch, and a job added up chunks that way).
            rest = batch.without(flagged)
            if rest.rows:
                try:
                    outcome = await _call(request, identity, route, rest, mode, True)
                except ApiError as again:
                    if again.status not in (404, 409, 422) or not _row_list(again.details):
                        raise  # else: more problems once these are fixed; counts unknown (0)
    listed = [batch.problem(i, problems[i]) for i in sorted(problems)]
    return listed, outcome


def row_errors(batch: Batch, problems: list[dict[str, Any]]) -> ApiError:
    """422 naming every invalid row."""
    return validation(problems, f"{len(problems)} of {batch.total} rows are invalid; none written")


async def commit(
    request: web.Request, identity: Identity, route: Route, batch: Batch, mode: str
) -> dict[str, Any]:
    """Write the whole batch in one transaction, or nothing (422/404 naming every bad row)."""
    if batch.errors:
        problems, _ = await check(request, identity, route, batch, mode)
        raise row_errors(batch, problems)
    try:
        return await _call(request, identity, route, batch, mode, False)
    except ApiError as exc:
        if exc.status in (404, 409, 422) and _row_list(exc.details):
            remapped = _remapped(batch, exc.details)
            exc.details = [batch.problem(i, remapped[i]) for i in sorted(remapped)]
        raise
