"""/rest/v1 through the proxy answers exactly like PostgREST, for the official supabase client."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from supabase import create_client


@pytest.fixture
def user(new_user, token_for):
    """A user id and its minted access token."""
    uid = new_user()
    return uid, token_for(uid)


@pytest.fixture
def pair(proxy_url, postgrest, anon_key, user):
    """The same signed-in client twice: through the proxy and straight to PostgREST."""
    _uid, token = user
    via = create_client(proxy_url, anon_key)
    via.postgrest.auth(token)
    direct = create_client(proxy_url, anon_key)
    direct.postgrest.auth(token)
    direct.postgrest.session.base_url = httpx.URL(postgrest.url + "/")
    yield via, direct
    for c in (via, direct):
        c.postgrest.session.close()
        c.auth._http_client.close()


def test_select_filter_embed_order(pair) -> None:
    """Filters, embedding and ordering give identical rows through the proxy."""
    via, direct = pair

    def query(c):
        return (
            c.table("test_items")
            .select("id,name,qty,test_groups(name)")
            .gte("qty", 5)
            .like("name", "item-0*")
            .order("qty", desc=True)
            .limit(7)
            .execute()
        )

    a, b = query(via), query(direct)
    assert a.data == b.data
    assert len(a.data) == 7
    assert a.data[0]["test_groups"]["name"] in {"bolts", "nuts"}


def test_count_and_range(pair) -> None:
    """Exact counts and Range pagination match PostgREST's."""
    via, direct = pair

    def query(c):
        return c.table("test_items").select("id", count="exact").order("id").range(5, 9).execute()

    a, b = query(via), query(direct)
    assert a.count == b.count
    assert a.count >= 40
    assert a.data == b.data
    assert len(a.data) == 5


def test_rpc(pair, database_url) -> None:
    """RPC results pass through unchanged."""
    via, direct = pair
    a = via.rpc("test_total_qty", {"min_qty": 30}).execute()
    b = direct.rpc("test_total_qty", {"min_qty": 30}).execute()
    with psycopg.connect(database_url) as conn:
        (expected,) = conn.execute(
            "select sum(qty) from public.test_items where qty >= 30"
        ).fetchone()
    assert a.data == b.data == expected


def test_insert_update_upsert_delete(pair, user) -> None:
    """Writes through the proxy behave like direct writes, RLS included."""
    via, _direct = pair
    uid, _token = user
    name = f"w-{uid[:8]}"
    created = via.table("test_items").insert({"name": name, "qty": 3}).execute()
    assert created.data[0]["owner"] == uid
    row_id = created.data[0]["id"]
    updated = via.table("test_items").update({"qty": 4}).eq("id", row_id).execute()
    assert updated.data[0]["qty"] == 4
    upserted = (
        via.table("test_items").upsert({"name": name, "qty": 9}, on_conflict="name").execute()
    )
    assert (upserted.data[0]["id"], upserted.data[0]["qty"]) == (row_id, 9)
    gone = via.table("test_items").delete().eq("id", row_id).execute()
    assert [r["id"] for r in gone.data] == [row_id]
    # RLS: another owner's row (seeded rows have no owner) cannot be updated through the proxy.
    untouched = via.table("test_items").update({"qty": 0}).eq("name", "item-001").execute()
    assert untouched.data == []


def test_csv(proxy_url, postgrest, token_for, new_user) -> None:
    """Accept: text/csv gives the same bytes and content type as PostgREST."""
    headers = {"Authorization": f"Bearer {token_for(new_user())}", "Accept": "text/csv"}
    path = "/test_items?select=id,name,qty&order=id&limit=5"
    a = httpx.get(proxy_url + "/rest/v1" + path, headers=headers)
    b = httpx.get(postgrest.url + path, headers=headers)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.content.startswith(b"id,name,qty\n")


def test_repeated_query_keys_forwarded(proxy_url, postgrest, token_for, new_user) -> None:
    """Repeated query keys (two filters on one column) reach PostgREST intact."""
    headers = {"Authorization": f"Bearer {token_for(new_user())}"}
    path = "/test_items?select=qty&qty=gte.10&qty=lt.13&order=qty"
    a = httpx.get(proxy_url + "/rest/v1" + path, headers=headers)
    b = httpx.get(postgrest.url + path, headers=headers)
    assert a.json() == b.json() == [{"qty": 10}, {"qty": 11}, {"qty": 12}]


def test_head_count(proxy_url, postgrest, token_for, new_user) -> None:
    """HEAD with Prefer: count=exact returns Content-Range like PostgREST, no body."""
    headers = {"Authorization": f"Bearer {token_for(new_user())}", "Prefer": "count=exact"}
    a = httpx.head(proxy_url + "/rest/v1/test_items?limit=1", headers=headers)
    b = httpx.head(postgrest.url + "/test_items?limit=1", headers=headers)
    assert a.status_code == b.status_code
    assert a.headers["content-range"] == b.headers["content-range"]
    assert a.content == b""


def test_postgrest_error_passes_through(proxy_url, postgrest, token_for, new_user) -> None:
    """PostgREST's own errors (bad JSON, unknown column) come back untouched."""
    headers = {
        "Authorization": f"Bearer {token_for(new_user())}",
        "Content-Type": "application/json",
    }
    for method, path, body in [
        ("POST", "/test_items", b'{"name": '),
        ("GET", "/test_items?select=nope", None),
    ]:
        a = httpx.request(method, proxy_url + "/rest/v1" + path, headers=headers, content=body)
        b = httpx.request(method, postgrest.url + path, headers=headers, content=body)
        assert a.status_code == b.status_code
        assert 400 <= a.status_code < 500
        assert a.json() == b.json()
        assert set(a.json()) == {"code", "message", "details", "hint"}


def test_large_response_streams_intact(proxy_url, postgrest, token_for, new_user) -> None:
    """A body larger than the in-memory threshold (256 KiB) is streamed through unchanged."""
    headers = {"Authorization": f"Bearer {token_for(new_user())}"}
    path = "/rpc/test_padding?size=400000"
    a = httpx.get(proxy_url + "/rest/v1" + path, headers=headers)
    b = httpx.get(postgrest.url + path, headers=headers)
    assert a.status_code == b.status_code == 200
    assert len(a.content) > 400_000
    assert a.content == b.content
