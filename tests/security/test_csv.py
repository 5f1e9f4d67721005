"""CSV as an attack surface (issue 13, point 8): spreadsheet formula injection through exported
cells, exports silently cut at PostgREST's max-rows, and formulas smuggled in through the import.

Exported text cells that a spreadsheet would evaluate (first character `=`, `+`, `-`, `@`, tab or
CR) carry a leading `'`; numbers stay numbers; an exported cell imports back unchanged; an
import cell that starts with a formula character and no `'` is refused, naming row and column.
Exports page upstream by keyset and stream every row; a failure mid-stream ends the response
without its terminating chunk, so the client sees a broken download, never a short file."""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.api.csvsafe import FORMULA, guard, unguard
from proxy.gate.tokens import mint
from proxy.local.localstack import free_port
from tests.support.domain import World, acting, build_world
from tests.support.process import start_proxy

CSV = {"Content-Type": "text/csv"}
ATTACKS = {
    "hyperlink": '=HYPERLINK("http://x","y")',
    "dde_cmd": "=cmd|' /C calc'!A0",
    "plus_arithmetic": "+1-2",
    "at_function": "@SUM(A1)",
    "leading_tab": "\tx",
    "leading_carriage_return": "\rx",
}
IMPORTABLE = ("sku", "name", "unit", "price", "unit_cost")  # export columns the import takes


@pytest.fixture(scope="module")
def own(database_url: str) -> World:
    """Organizations of this module's own, so 2,500 movements cost no other test anything."""
    return build_world(database_url)


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    """The CSV rows of a 200 export answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def named_product(database_url: str, org: str, name: str) -> str:
    """Insert a product called name (as the superuser) and return its unique sku."""
    sku = "X-" + uuid.uuid4().hex[:10]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.products (organization_id, sku, name, price, unit_cost)"
            " values (%s, %s, %s, 2.50, 1.25)",
            (org, sku, name),
        )
    return sku


def stored_name(database_url: str, org: str, sku: str) -> str | None:
    """The name of the organization's product sku, None when there is none."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "select name from public.products where organization_id = %s and sku = %s", (org, sku)
        ).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("name", ATTACKS.values(), ids=list(ATTACKS))
def test_formula_name_exports_neutralised_and_reimports_unchanged(
    own, database_url, client, bearer, name
) -> None:
    """A product named like a formula exports as `'` + name (quoted where CSV needs it), and the
    exported cells, imported under a new sku, give back exactly the same name."""
    sku = named_product(database_url, own.a.id, name)
    manager = bearer(own.a.users["manager"])
    r = client.get("/api/v1/export/products.csv", params={"search": sku}, headers=manager)
    [row] = rows_of(r)
    assert row["name"] == "'" + name
    assert (row["price"], row["unit_cost"]) == ("2.50", "1.25")
    # The file as a spreadsheet would read it: the raw cell begins with the quote.
    assert ",'" in r.text or ",\"'" in r.text
    again = "R-" + sku
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(IMPORTABLE)
    writer.writerow([again if column == "sku" else row[column] for column in IMPORTABLE])
    imported = client.post(
        "/api/v1/import/products",
        params={"mode": "commit"},
        content=out.getvalue(),
        headers={**manager, **CSV},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["data"]["rows"][0]["name"] == name
    assert stored_name(database_url, own.a.id, again) == name


def test_negative_numbers_stay_numbers_and_minus_text_is_neutralised(
    own, database_url, client, bearer
) -> None:
    """A -3 adjustment exports its quantity as the number -3 (no quote); its reason, text that
    starts with `-`, is neutralised."""
    product, wh = own.b.products["P2"], own.b.locations["WH1"]
    reason = "-3 broken in transit"
    with psycopg.connect(database_url) as conn, acting(conn, own.b.users["staff"]):
        conn.execute("select public.adjust_stock(%s, %s, 10, 'received')", (product, wh))
        conn.execute("select public.adjust_stock(%s, %s, -3, %s)", (product, wh, reason))
    staff = bearer(own.b.users["staff"])
    rows = rows_of(
        client.get("/api/v1/export/movements.csv", params={"product": product}, headers=staff)
    )
    [minus] = [row for row in rows if row["reason"].endswith("broken in transit")]
    assert minus["quantity"].startswith("-") and Decimal(minus["quantity"]) == -3
    assert minus["reason"] == "'" + reason
    assert {row["quantity"][0] for row in rows} <= set("-0123456789")


def test_export_over_max_rows_streams_every_row_once_in_order(
    own, database_url, client, bearer
) -> None:
    """2,500 movements (more than PostgREST's max-rows of 1,000): the export has every one of
    them exactly once, in the ledger's order (created_at, then id), and nothing else."""
    product, wh = own.a.products["P1"], own.a.locations["WH1"]
    with psycopg.connect(database_url) as conn, acting(conn, own.a.users["staff"]):
        conn.execute(
            "select count(public.adjust_stock(%s, %s, case when g %% 2 = 1 then 4 else -3 end,"
            " 'bulk ' || g)) from generate_series(1, 2500) as g",
            (product, wh),
        )
    with psycopg.connect(database_url, autocommit=True) as conn:
        expected = [
            str(r[0])
            for r in conn.execute(
                "select id from public.stock_movements where organization_id = %s"
                " order by created_at, id",
                (own.a.id,),
            ).fetchall()
        ]
    assert len(expected) >= 2500
    staff = bearer(own.a.users["staff"])
    with client.stream("GET", "/api/v1/export/movements.csv", headers=staff) as r:
        assert r.status_code == 200
        text = r.read().decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["id"] for row in rows] == expected


def test_product_export_over_max_rows_with_search_has_every_match_once(
    own, database_url, client, bearer
) -> None:
    """1,100 products matching a search (itself an `or=` filter, combined with the keyset's)
    plus one that does not: the export has exactly the 1,100, in (created_at, id) order."""
    tag = "K" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.products (organization_id, sku, name)"
            " select %s, %s || '-' || g, 'Keyset ' || g from generate_series(1, 1100) as g",
            (own.b.id, tag),
        )
        conn.execute(
            "insert into public.products (organization_id, sku, name) values (%s, 'other', 'x')",
            (own.b.id,),
        )
        expected = [
            r[0]
            for r in conn.execute(
                "select sku from public.products where organization_id = %s and sku like %s"
                " order by created_at, id",
                (own.b.id, tag + "-%"),
            ).fetchall()
        ]
    assert len(expected) == 1100
    viewer = bearer(own.b.users["viewer"])
    rows = rows_of(
        client.get("/api/v1/export/products.csv", params={"search": tag}, headers=viewer)
    )
    assert [row["sku"] for row in rows] == expected


class _Pages(BaseHTTPRequestHandler):
    """A fake PostgREST: the first keyset page of stock_movements, then a 500 for the next."""

    protocol_version = "HTTP/1.1"
    seen: list[str]

    def do_GET(self) -> None:
        """Page 1 (no keyset filter): 3 rows; any later page: a PostgREST error."""
        self.seen.append(self.path)
        query = parse_qs(urlsplit(self.path).query)
        if "or" not in query and "and" not in query and "id" not in query:
            rows = [
                {
                    "id": n,
                    "created_at": f"2026-12-0{n}T10:00:00+00:00",
                    "kind": "adjustment",
                    "product_id": str(uuid.uuid4()),
                    "location_id": str(uuid.uuid4()),
                    "lot_id": None,
                    "quantity": 1,
                    "unit_cost": None,
                    "order_id": None,
                    "reason": "page one",
                }
                for n in (1, 2, 3)
            ]
            self._send(200, json.dumps(rows).encode())
        else:
            self._send(500, b'{"code":"XX000","message":"boom","details":null,"hint":null}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet."""


def test_export_failing_midstream_is_a_broken_download_not_a_short_file(
    database_url, tmp_path
) -> None:
    """When a later upstream page fails after rows were sent, the response ends without its
    terminating chunk (the client's read fails) and the proxy logs the cut."""
    handler = type("Pages", (_Pages,), {"seen": []})
    upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    secret = "csv-secret-" + uuid.uuid4().hex
    proc, url = start_proxy(
        tmp_path,
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{upstream.server_address[1]}",
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=secret,
        NIMBUS_UPSTREAM_TIMEOUT_S="5",
    )
    try:
        token = mint(secret, sub=str(uuid.uuid4()))
        with (
            httpx.Client(base_url=url, timeout=10) as c,
            c.stream(
                "GET",
                "/api/v1/export/movements.csv",
                headers={"Authorization": "Bearer " + token},
            ) as r,
        ):
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                r.read()
        assert len(handler.seen) >= 2  # the second page was asked for, and failed
        assert "export cut" in proc.log() and "Traceback" not in proc.log()
    finally:
        proc.stop()
        upstream.shutdown()
        upstream.server_close()


@pytest.mark.parametrize(
    "cell",
    ["=1+1", '=HYPERLINK("http://x","y")', "+1-2", "-2+3", "@SUM(A1)", "''=1+1x"],
    ids=["equals", "hyperlink", "plus", "minus", "at", "quote_quote_formula"],
)
def test_import_refuses_formula_cell_naming_row_and_column(
    own, database_url, client, bearer, cell
) -> None:
    """A text cell starting with a formula character (and not escaped by one leading `'`) is
    refused: commit is 422 naming the row (index, line) and the column, and writes nothing; a
    dry run reports the same."""
    manager = bearer(own.a.users["manager"])
    p = "F-" + uuid.uuid4().hex[:8] + "-"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([("sku", "name", "description"), (p + "1", "Fine", ""), (p + "2", "Ok", cell)])
    text = out.getvalue()
    r = client.post(
        "/api/v1/import/products",
        params={"mode": "commit"},
        content=text,
        headers={**manager, **CSV},
    )
    if cell.startswith("''"):  # one quote is the escape; the value is '=...: no formula
        assert r.status_code == 200, r.text
        assert r.json()["data"]["rows"][1]["description"] == cell[1:]
        return
    assert r.status_code == 422, r.text
    [problem] = r.json()["error"]["details"]
    assert (problem["index"], problem["line"]) == (1, 3)
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("description", "formula")]
    assert stored_name(database_url, own.a.id, p + "1") is None
    dry = client.post("/api/v1/import/products", content=text, headers={**manager, **CSV})
    assert dry.status_code == 200, dry.text
    assert [(e["index"], e["line"]) for e in dry.json()["data"]["errors"]] == [(1, 3)]


@pytest.mark.parametrize(
    ("cell", "stored"),
    [("'=1+1", "=1+1"), ("'@x", "@x"), ("'-5 off", "-5 off"), ("'plain", "'plain")],
    ids=["equals", "at", "minus", "quote_before_text_is_kept"],
)
def test_import_strips_exactly_the_export_quote(own, client, bearer, cell, stored) -> None:
    """One leading `'` before a formula character is the export's escape and is removed; a `'`
    before anything else is part of the value."""
    manager = bearer(own.a.users["manager"])
    sku = "Q-" + uuid.uuid4().hex[:10]
    out = io.StringIO()
    csv.writer(out).writerows([("sku", "name"), (sku, cell)])
    r = client.post(
        "/api/v1/import/products",
        params={"mode": "commit"},
        content=out.getvalue(),
        headers={**manager, **CSV},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["rows"][0]["name"] == stored


@given(st.text(alphabet=st.sampled_from("=+-@\t\r' a1\"|"), min_size=1, max_size=8) | st.text())
def test_guard_is_never_a_formula_and_unguard_reverses_it(value: str) -> None:
    """For any text: the exported cell never starts with a formula character, and importing it
    gives back exactly the value."""
    exported = guard(value)
    assert not exported or exported[0] not in FORMULA
    if value:
        assert unguard(exported) == (value, True)
