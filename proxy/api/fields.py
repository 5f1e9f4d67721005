"""Field types with the limits of the SQL constraints (the database stays the authority)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

INT4 = 2_147_483_647
NO_NUL = r"^[^\x00]*$"


def text(low: int, high: int) -> Any:
    """A string of low..high characters without NUL (PostgreSQL text cannot hold one)."""
    return Annotated[str, StringConstraints(min_length=low, max_length=high, pattern=NO_NUL)]


def money(digits: int, places: int, *, positive: bool = False) -> Any:
    """A numeric(digits, places) that is >= 0 (or > 0)."""
    bound = {"gt": 0} if positive else {"ge": 0}
    return Annotated[
        Decimal, Field(max_digits=digits, decimal_places=places, allow_inf_nan=False, **bound)
    ]


def delta(digits: int, places: int) -> Any:
    """A signed numeric(digits, places)."""
    return Annotated[Decimal, Field(max_digits=digits, decimal_places=places, allow_inf_nan=False)]


Count = Annotated[int, Field(ge=0, le=INT4)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class Body(BaseModel):
    """A request body: unknown fields (organization_id, id, timestamps, stock) are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def partial(model: type[Body], name: str) -> type[Body]:
    """The PATCH variant of model: every field optional, but an explicit null only where the
    column is nullable (types are reused, so the limits are the same)."""
    fields = {
        key: (info.annotation, Field(None, validate_default=False, **_meta(info)))
        for key, info in model.model_fields.items()
    }
    return create_model(
        name, __base__=Body, __doc__=f"Partial update of {model.__name__}.", **fields
    )


def _meta(info) -> dict[str, Any]:
    return {"description": info.description} if info.description else {}
