"""Request and answer bodies of the bulk and import routes (rows are validated one by one, so
every invalid row is reported by its index; these models give the whole body its contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from proxy.api.catalog_models import PriceChange, ProductIn
from proxy.api.fields import Body
from proxy.api.settings import api_settings

BULK_MAX = api_settings().bulk_max


class BulkProductsIn(Body):
    """Products to create (or, for bulk-upsert, to insert or replace by sku)."""

    rows: list[ProductIn] = Field(min_length=1, max_length=BULK_MAX)


class BulkChangesIn(Body):
    """Price/threshold changes of products named by id."""

    rows: list[PriceChange] = Field(min_length=1, max_length=BULK_MAX)


class RowError(BaseModel):
    """The problems of one row: its index (from 0) and every field error."""

    index: int = Field(ge=0)
    line: int | None = Field(None, description="CSV line (the header is line 1)")
    errors: list[dict[str, Any]]


class BulkResult(BaseModel):
    """What a bulk write did: counts, and the written rows in request order."""

    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    rows: list[dict[str, Any]]


class ImportReport(BaseModel):
    """A CSV import's outcome; a dry run lists the problems and writes nothing."""

    mode: Literal["dry-run", "commit"]
    total: int = Field(ge=0, description="data rows in the file")
    valid: int = Field(ge=0)
    created: int = Field(ge=0, description="rows that create (dry run: would create) products")
    updated: int = Field(ge=0)
    errors: list[RowError]
    rows: list[dict[str, Any]] = Field(description="the written rows (commit only)")
