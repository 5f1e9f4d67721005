"""CSV round trip (issue 16, point 5): the file `GET /export/products.csv` produces imports back
unchanged (ids match the existing rows, nothing created, every column read, written or ignored as
docs/API.md says), and the export carries each product's stock per location."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import psycopg
import pytest

from tests.support.domain import World, build_world

CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def own(database_url: str) -> World:
    """Organizations of this module's own: their exports hold only what these tests made."""
    return build_world(database_url)


@pytest.fixture
def manager(api, own):
    """An /api/v1 client for the manager of own.a."""
    return api.client(api.token(own.a.users["manager"]))


def rows_of(text: str) -> list[dict[str, str]]:
    """The rows of a CSV text."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


def products(database_url: str, org: str) -> dict[str, tuple]:
    """id -> every writable column of the organization's products, as stored."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = conn.execute(
            "select id::text, sku, name, description, barcode, unit, price, unit_cost,"
            " low_stock_threshold, reorder_point, safety_stock, active, category_id,"
            " supplier_id from public.products where organization_id = %s",
            (org,),
        ).fetchall()
    return {row[0]: row[1:] for row in found}


def test_exported_products_import_back_unchanged(own, manager, database_url) -> None:
    """The export, posted to the import as it is (commit), updates every product by id,
    creates none, changes no stored value; a second export is the same file but for
    updated_at."""
    p1 = own.a.products["P1"]
    category, supplier = own.a.spare["categories"], own.a.spare["suppliers"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "update public.products set category_id = %s, supplier_id = %s, description ="
            " '=1+1 neutralised', reorder_point = 7, safety_stock = 3, barcode = '-bc'"
            " where id = %s",
            (category, supplier, p1),
        )
        # A price POST /products takes (numeric(12, 2)) that the import's check refused as
        # "below 2147483648" (found by a hostile probe): the export must import back.
        conn.execute(
            "update public.products set price = 9999999999.99, unit_cost = 5000000000.1234"
            " where id = %s",
            (own.a.products["P2"],),
        )
    before = products(database_url, own.a.id)
    exported = manager.get("/export/products.csv")
    assert exported.status_code == 200, exported.text
    first = rows_of(exported.text)
    assert {row["id"] for row in first} == set(before)
    by_id = {row["id"]: row for row in first}
    assert by_id[p1]["description"] == "'=1+1 neutralised"  # the OWASP quote, kept
    assert by_id[p1]["category_id"] == category and by_id[p1]["category"] == "Spare"
    r = manager.post(
        "/import/products", params={"mode": "commit"}, content=exported.content, headers=CSV
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["created"], data["updated"], data["errors"]) == (0, len(before), [])
    assert products(database_url, own.a.id) == before
    second = rows_of(manager.get("/export/products.csv").text)

    def still(rows):
        return sorted(
            tuple(sorted((k, v) for k, v in row.items() if k != "updated_at")) for row in rows
        )

    assert still(second) == still(first)


def test_product_export_has_stock_per_location(own, manager) -> None:
    """on_hand (all locations) and one on_hand:<location code> column per location of the
    organization, holding the stock levels' quantities (empty where none is kept)."""
    rows = rows_of(manager.get("/export/products.csv").text)
    columns = list(rows[0])
    assert {"on_hand", "on_hand:WH1", "on_hand:ST1", "on_hand:SPARE"} <= set(columns)
    by_sku = {row["sku"]: row for row in rows}
    p3 = by_sku["a-P3"]  # 100 + a lot of 10 at WH1
    assert Decimal(p3["on_hand:WH1"]) == 110 and Decimal(p3["on_hand"]) == 110
    assert p3["on_hand:ST1"] == ""
    p2 = by_sku["a-P2"]  # 100 at WH1, one sold
    assert Decimal(p2["on_hand:WH1"]) == 99


def test_id_renames_sku_and_unknown_id_is_a_row_error(own, manager, database_url) -> None:
    """A row's id names the product it writes, so its sku may change; an id that is not a
    product of the organization is a row error (not_found), and nothing is written."""
    spare = own.a.spare["products"]
    text = f"id,sku,name\n{spare},a-SPARE-renamed,Spare renamed\n"
    r = manager.post("/import/products", params={"mode": "commit"}, content=text, headers=CSV)
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["created"], r.json()["data"]["updated"]) == (0, 1)
    assert products(database_url, own.a.id)[spare][:2] == ("a-SPARE-renamed", "Spare renamed")
    ghost = own.b.products["P1"]  # another organization's product
    text = f"id,sku,name\n{ghost},G-1,Ghost\n"
    r = manager.post("/import/products", params={"mode": "commit"}, content=text, headers=CSV)
    assert r.status_code in (404, 422), r.text
    [problem] = r.json()["error"]["details"]
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("id", "not_found")]
    assert "G-1" not in {v[0] for v in products(database_url, own.a.id).values()}


def test_category_name_and_id_must_agree(own, manager) -> None:
    """A row naming a category by id and by a different name is a row error, not a guess."""
    category = own.a.spare["categories"]
    text = f"sku,name,category_id,category\nC-1,Cat,{category},Elsewhere\n"
    r = manager.post("/import/products", content=text, headers=CSV)
    assert r.status_code == 200, r.text
    [problem] = r.json()["data"]["errors"]
    assert [e["field"] for e in problem["errors"]] == ["category"]
