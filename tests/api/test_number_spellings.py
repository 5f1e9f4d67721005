"""Numbers on /api/v1 are plain ASCII decimals (found by a hostile probe): Python's int(),
float(), Decimal and regex \\d also take Arabic-Indic and full-width digits, '1_0', '+3' and
spaces, so a unit_cost of Arabic-Indic one was stored as 1 and a limit of Arabic-Indic three
listed three rows: other spellings of one value, each a cache entry of its own."""

from __future__ import annotations

import pytest

from tests.api.conftest import error_code


def adjustment(api, **fields) -> dict:
    w = api.world.a
    body = {
        "product_id": w.products["P1"],
        "location_id": w.locations["WH1"],
        "quantity_delta": 1,
        "reason": "count",
    }
    return {**body, **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"unit_cost": "\u0661"},  # Arabic-Indic one
        {"unit_cost": "\uff11.5"},  # full-width one
        {"quantity_delta": "1\u0665"},  # one, then Arabic-Indic five
    ],
)
def test_decimal_strings_in_other_scripts_are_422(api, fields) -> None:
    staff = api.as_("staff")
    answer = staff.post("/stock/adjustments", json=adjustment(api, **fields))
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["error"]["details"]] == list(fields)


@pytest.mark.parametrize(
    "query",
    [
        "limit=\u0663",
        "limit=\uff11",
        "page=\u0663",
        "limit=1_0",
        "limit=+3",
        "limit= 3",
        "limit=3%0A",  # a regex $ matches before a final newline, and int() ignores it
    ],
)
def test_integer_parameters_in_other_spellings_are_422(api, query) -> None:
    answer = api.as_("viewer").get("/products?" + query)
    assert answer.status_code == 422, answer.text
    assert error_code(answer) == "validation_failed"
