"""/api/v1/import/products: CSV upload, dry-run reports per row and line, commit all or nothing
through the bulk-upsert path, names of categories and suppliers resolved in the organization."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import error_code
from tests.api.test_bulk import stored

HEADER = "sku,name,description,barcode,unit,price,unit_cost,low_stock_threshold,reorder_point,"
HEADER += "safety_stock,category,supplier\n"
CSV = {"Content-Type": "text/csv"}


def prefix() -> str:
    """A unique SKU prefix for one test."""
    return "I-" + uuid.uuid4().hex[:8] + "-"


def good_file(p: str, category: str = "", supplier: str = "") -> str:
    """Three valid rows, two naming the given category and supplier (none by default)."""
    return (
        HEADER
        + f'{p}1,"Bolt, M6",Zinc,{p}bc1,each,0.20,0.05,100,50,10,{category},{supplier}\n'
        + f"{p}2,Nut,,,,0.10,,,,,{category},\n"
        + f"{p}3,Washer,,,box,,,,,,,{supplier}\n"
    )


def test_dry_run_is_the_default_and_writes_nothing(api, database_url) -> None:
    """Without mode the file is only checked: counts of what would happen, no rows written."""
    p = prefix()
    r = api.as_("manager").post("/import/products", content=good_file(p), headers=CSV)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["mode"] == "dry-run" and data["errors"] == []
    assert (data["total"], data["valid"], data["created"], data["updated"]) == (3, 3, 3, 0)
    assert stored(database_url, p) == {}


def test_dry_run_reports_every_bad_row_with_its_line(api, database_url) -> None:
    """Bad values, unknown names, a repeated sku and an existing barcode are reported per row
    index and CSV line (a quoted newline makes lines differ from indexes)."""
    p = prefix()
    text = (
        HEADER
        + f'{p}1,"Two\nlines",,,,1,,,,,,\n'
        + f"{p}2,,,,,-1,,,,,Nope,\n"
        + f"{p}1,Repeat,,,,,,,,,,\n"
        + f"{p}4,Barcode,,bc-a-P1,,,,,,,,\n"
        + f"{p}5,Fine,,,,,,,,,Spare,\n"
        + f"{p}6,Ghost,,,,,,,,,,Ghost\n"
    )
    r = api.as_("manager").post(
        "/import/products", params={"mode": "dry-run"}, content=text, headers=CSV
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    got = {(e["index"], e["line"]): {x["field"] for x in e["errors"]} for e in data["errors"]}
    assert got == {
        (1, 4): {"name", "price", "category"},
        (2, 5): {"sku"},
        (3, 6): {"barcode"},
        (5, 8): {"supplier"},
    }
    assert (data["total"], data["valid"]) == (6, 2)
    assert stored(database_url, p) == {}


def test_commit_writes_all_then_updates_by_sku(api, database_url) -> None:
    """mode=commit creates every row (names resolved to ids); the same file again updates."""
    mgr = api.as_("manager")
    p = prefix()
    category = mgr.post("/categories", json={"name": p + "cat"}).json()["data"]
    supplier = mgr.post("/suppliers", json={"name": p + "sup"}).json()["data"]
    text = good_file(p, p + "cat", p + "sup")
    r = mgr.post("/import/products", params={"mode": "commit"}, content=text, headers=CSV)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["mode"], data["created"], data["updated"]) == ("commit", 3, 0)
    first = data["rows"][0]
    assert first["name"] == "Bolt, M6"
    assert first["category_id"] == category["id"]
    assert first["supplier_id"] == supplier["id"]
    again = mgr.post("/import/products", params={"mode": "commit"}, content=text, headers=CSV)
    assert again.status_code == 200 and again.json()["data"]["updated"] == 3
    assert len(stored(database_url, p)) == 3


def test_commit_with_a_bad_row_writes_nothing(api, database_url) -> None:
    """One bad row: 422 naming it (index and line), and no row of the file is written."""
    p = prefix()
    text = good_file(p) + f"{p}9,Bad,,,,abc,,,,,,\n"
    r = api.as_("manager").post(
        "/import/products", params={"mode": "commit"}, content=text, headers=CSV
    )
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert [(d["index"], d["line"]) for d in details] == [(3, 5)]
    assert stored(database_url, p) == {}


def test_multipart_upload(api, database_url) -> None:
    """The file may come as the multipart field `file`."""
    p = prefix()
    r = api.as_("manager").post(
        "/import/products",
        params={"mode": "commit"},
        files={"file": ("products.csv", good_file(p).encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert len(stored(database_url, p)) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sku,name,colour\nx,y,red\n", "unknown column 'colour'"),
        ("name\ny\n", "missing column 'sku'"),
        ("sku,name\n", "no data rows"),
        ("", "missing column 'sku'"),
    ],
)
def test_bad_files_are_422(api, text, message) -> None:
    """Unknown or missing columns and empty files are refused before any row is checked."""
    r = api.as_("manager").post("/import/products", content=text, headers=CSV)
    assert r.status_code == 422, r.text
    assert message in [d["message"] for d in r.json()["error"]["details"]]


def test_limits_types_and_mode(api) -> None:
    """More rows than NIMBUS_BULK_MAX become a job (202, tests/api/test_import_jobs.py); a JSON
    body and an unknown mode are refused."""
    mgr = api.as_("manager")
    many = "sku,name\n" + "".join(f"s{i},n\n" for i in range(501))
    r = mgr.post("/import/products", content=many, headers=CSV)
    assert r.status_code == 202, r.text
    assert r.json()["data"]["total"] == 501
    assert r.headers["Location"] == "/api/v1/imports/" + r.json()["data"]["id"]
    js = mgr.post("/import/products", json={"rows": []})
    assert js.status_code == 415 and error_code(js) == "unsupported_media_type"
    bad = mgr.post("/import/products", params={"mode": "yes"}, content=HEADER, headers=CSV)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "mode"


@pytest.mark.parametrize("mode", ["dry-run", "commit"])
def test_viewer_is_denied(api, database_url, mode) -> None:
    """Below manager an import is 403, in either mode."""
    p = prefix()
    r = api.as_("viewer").post(
        "/import/products", params={"mode": mode}, content=good_file(p), headers=CSV
    )
    assert r.status_code == 403 and error_code(r) == "forbidden"
    assert stored(database_url, p) == {}


def test_an_unclosed_quote_is_refused_not_swallowed(api, database_url) -> None:
    """A quote never closed ran on to the end of the file: the rows after it became one name,
    imported (`total 2, created 2`) without a word (found by a hostile probe). Now the file is
    refused, naming the line where the open quote's record begins, and nothing is written."""
    p = prefix()
    text = f'sku,name\n{p}1,first\n{p}2,"second\n{p}3,third\n{p}4,fourth\n'
    for mode in ("dry-run", "commit"):
        r = api.as_("manager").post(f"/import/products?mode={mode}", content=text, headers=CSV)
        assert r.status_code == 422, r.text
        [detail] = r.json()["error"]["details"]
        assert detail["field"] == "file" and "line 3" in detail["message"], detail
    assert stored(database_url, p) == {}


def test_dry_run_counts_what_the_valid_rows_would_do(api, database_url) -> None:
    """A dry run with a row only SQL refuses (a barcode another product of the organization
    has) counted nothing for the valid ones (0 created, 0 updated), and a dry-run job added
    such chunks up into a number that was neither (found by a hostile probe). The counts are
    what the valid rows would do."""
    p = prefix()
    manager = api.as_("manager")
    first = manager.post(
        "/import/products?mode=commit",
        content=f"sku,name,barcode\n{p}0,Zero,{p}bc\n{p}1,One,\n",
        headers=CSV,
    )
    assert first.status_code == 200, first.text
    text = f"sku,name,barcode\n{p}1,One again,\n{p}2,Two,{p}bc\n{p}3,Three,\n"
    r = manager.post("/import/products?mode=dry-run", content=text, headers=CSV)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [e["line"] for e in data["errors"]] == [3], data["errors"]
    assert (data["valid"], data["created"], data["updated"]) == (2, 1, 1), data
