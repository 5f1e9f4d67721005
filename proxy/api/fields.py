"""Field types with the limits of the SQL constraints (the database stays the authority)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    create_model,
)
from pydantic.fields import FieldInfo

INT4 = 2_147_483_647
NO_NUL = r"^[^\x00]*$"


# The limits below are Annotated metadata, written where a field is declared:
# `Annotated[str, text(1, 200)]`, `Annotated[Decimal, *money(12, 2)]` (a type checker reads
# the type; pydantic reads the limits).


def text(low: int, high: int) -> StringConstraints:
    """A string of low..high characters without NUL (PostgreSQL text cannot hold one)."""
    return StringConstraints(min_length=low, max_length=high, pattern=NO_NUL)


def money(digits: int, places: int, *, positive: bool = False) -> tuple[object, ...]:
    """A numeric(digits, places) that is >= 0 (or > 0): see _numeric."""
    return _numeric(digits, places, signed=False, positive=positive)


def delta(digits: int, places: int) -> tuple[object, ...]:
    """A signed, non-zero numeric(digits, places): see _numeric."""
    return _numeric(digits, places, signed=True, positive=True)


def _numeric(digits: int, places: int, *, signed: bool, positive: bool) -> tuple[object, ...]:
    """A JSON number (rounded half away from zero to `places`, as PostgreSQL rounds a numeric
    to its column's scale: a float cannot say 0.1 exactly) or a decimal string (exact, at most
    `places` decimals). The JSON schema states exactly what is accepted."""
    step = Decimal(1).scaleb(-places)
    top = Decimal(10) ** (digits - places) - step / 2  # rounds to the largest value that fits
    low = step / 2 if positive else Decimal(0)  # the smallest that does not round to zero
    sign = "-?" if signed else ""
    # [0-9], not \d: Python's \d (and Decimal) take any script's digits (Arabic-Indic, full-width).
    whole = rf"[0-9]{{1,{digits - places}}}" if places else rf"[0-9]{{1,{digits}}}"
    frac = rf"(\.[0-9]{{1,{places}}})?" if places else ""
    if positive:  # some digit is not zero
        lead = rf"[1-9][0-9]{{0,{digits - places - 1}}}{frac}"
        pattern = (
            rf"^{sign}({lead}|0\.[0-9]{{0,{places - 1}}}[1-9])$" if places else rf"^{sign}{lead}$"
        )
    else:
        pattern = rf"^{whole}{frac}$"

    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("must be a finite number")
            if not low <= abs(Decimal(repr(value))) < top or (value < 0 and not signed):
                raise ValueError(f"must be {'non-zero and ' if positive else ''}within range")
            return Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP)
        if isinstance(value, str) and not re.fullmatch(pattern, value):
            kind = "a" if signed else "a non-negative"
            raise ValueError(f"must be {kind} decimal number with at most {places} decimals")
        return value

    number: dict[str, Any] = {"type": "number", "exclusiveMaximum": float(top)}
    number["minimum"] = float(low)
    ranges = [number]
    if signed:
        ranges.append({"type": "number", "maximum": -float(low), "exclusiveMinimum": -float(top)})
    schema = {"anyOf": [*ranges, {"type": "string", "pattern": pattern}]}
    limit = (
        Field(max_digits=digits, decimal_places=places, allow_inf_nan=False, gt=0)
        if positive and not signed
        else Field(max_digits=digits, decimal_places=places, allow_inf_nan=False)
        if signed
        else Field(max_digits=digits, decimal_places=places, allow_inf_nan=False, ge=0)
    )
    return (BeforeValidator(parse), limit, WithJsonSchema(schema))


Count = Annotated[int, Field(ge=0, le=INT4)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]


class Body(BaseModel):
    """A request body: unknown fields (organization_id, id, timestamps, stock) are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def partial(model: type[Body], name: str) -> type[Body]:
    """The PATCH variant of model: every field optional, but an explicit null only where the
    column is nullable (types are reused, so the limits are the same)."""
    # Any: each value is a (runtime-built type, FieldInfo) pair create_model reads by name.
    fields: dict[str, Any] = {
        key: (_annotated(info), Field(None, validate_default=False, description=info.description))
        for key, info in model.model_fields.items()
    }
    made = create_model(
        name, __base__=Body, __doc__=f"Partial update of {model.__name__}.", **fields
    )
    made.model_config["json_schema_extra"] = {"minProperties": 1}  # "send at least one field"
    made.model_rebuild(force=True)
    return made


def _annotated(info: FieldInfo) -> Any:
    """The field's type with its constraints (FieldInfo keeps them apart in `metadata`)."""
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
