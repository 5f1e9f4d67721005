"""Realtime postgres_changes end to end, with the official clients: supabase-py's async realtime
client and @supabase/realtime-js (Node). A real `nimbus serve`, PostgREST and PostgreSQL; writes
through /rest/v1, /api/v1 and plain SQL; every event awaited for at most about a second.

Pins: the payload the clients parse (type, table, schema, commit_timestamp, record, old_record
with the primary key only, columns, errors); filters; two organizations; oversized rows; removal
from an organization ordered with the changes; token refresh, expiry and revocation; broadcast
within an organization; bad input as 4xx JSON or a Phoenix error reply."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import psycopg
import pytest

from proxy.gate.tokens import mint
from tests.realtime.clients import node_subscribe, py_subscribe, raw_connect
from tests.support.domain import call

pytestmark = pytest.mark.asyncio(loop_scope="session")


def bearer(token: str, anon_key: str) -> dict[str, str]:
    """Headers of a write as token, the way supabase-js sends them."""
    return {
        "Authorization": "Bearer " + token,
        "apikey": anon_key,
        "Prefer": "return=representation",
    }


def rename_product(database_url: str, product: str, name: str) -> None:
    """A plain SQL write (as the superuser, as the dashboard would), committed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.products set name = %s where id = %s", (name, product))


async def test_rest_writes_reach_supabase_py_as_it_parses_them(
    rt_proxy, world, jwt_secret, anon_key, session
):
    """INSERT, UPDATE and DELETE through /rest/v1 each arrive within a second, with the record,
    the old record (primary key only: replica identity default), columns and timestamp."""
    _, url = rt_proxy
    manager = mint(jwt_secret, sub=world.a.users["manager"])
    viewer = mint(jwt_secret, sub=world.a.users["viewer"])
    ch = await py_subscribe(
        url,
        anon_key,
        viewer,
        "categories",
        [{"event": "*", "table": "categories", "filter": f"organization_id=eq.{world.a.id}"}],
    )
    try:
        headers = bearer(manager, anon_key)
        r = await session.post(
            url + "/rest/v1/categories",
            headers=headers,
            json={"organization_id": world.a.id, "name": "rt-1"},
        )
        assert r.status == 201, await r.text()
        created = (await r.json())[0]
        data = await ch.change()
        assert (data["type"], data["schema"], data["table"]) == ("INSERT", "public", "categories")
        assert data["record"]["id"] == created["id"] and data["record"]["name"] == "rt-1"
        assert {"name": "id", "type": "uuid"} in data["columns"]
        assert {"name": "created_at", "type": "timestamptz"} in data["columns"]
        assert data["commit_timestamp"] and data["errors"] is None
        r = await session.patch(
            url + f"/rest/v1/categories?id=eq.{created['id']}",
            headers=headers,
            json={"name": "rt-2"},
        )
        assert r.status == 200, await r.text()
        data = await ch.change()
        assert data["type"] == "UPDATE" and data["record"]["name"] == "rt-2"
        assert data["old_record"] == {"id": created["id"]}
        r = await session.delete(
            url + f"/rest/v1/categories?id=eq.{created['id']}", headers=headers
        )
        assert r.status == 200, await r.text()
        data = await ch.change()
        assert data["type"] == "DELETE" and data["old_record"] == {"id": created["id"]}
        assert "record" not in data
    finally:
        await ch.close()


async def test_realtime_js_gets_stock_from_api_and_sql_filtered_by_location(
    rt_proxy, world, jwt_secret, anon_key, session, database_url
):
    """The issue's snippet: stock_levels filtered by location_id. An /api/v1 adjustment at
    another location is filtered out; the ones at the location (API, then SQL) arrive in order,
    parsed by realtime-js into eventType/new/old."""
    _, url = rt_proxy
    a = world.a
    viewer = mint(jwt_secret, sub=a.users["viewer"])
    staff = mint(jwt_secret, sub=a.users["staff"])
    js = await node_subscribe(
        url,
        anon_key,
        viewer,
        "stock",
        [
            {
                "event": "*",
                "schema": "public",
                "table": "stock_levels",
                "filter": f"location_id=eq.{a.locations['WH1']}",
            }
        ],
    )
    try:
        for location, delta in (("ST1", 1), ("WH1", 2)):
            r = await session.post(
                url + "/api/v1/stock/adjustments",
                headers={"Authorization": "Bearer " + staff},
                json={
                    "product_id": a.products["P1"],
                    "location_id": a.locations[location],
                    "quantity_delta": delta,
                    "reason": "realtime test",
                },
            )
            assert r.status == 201, await r.text()
        change = await js.next("change")
        assert change["table"] == "stock_levels" and change["eventType"] == "UPDATE"
        assert change["new"]["location_id"] == a.locations["WH1"]
        assert change["old"] == {k: change["new"][k] for k in change["old"]}  # primary key
        first = float(change["new"]["on_hand"])
        with psycopg.connect(database_url) as conn:
            call(
                conn,
                a.users["staff"],
                "select public.adjust_stock(%s, %s, 3, 'realtime sql', null, null)",
                (a.products["P1"], a.locations["WH1"]),
            )
        change = await js.next("change")
        assert change["new"]["location_id"] == a.locations["WH1"]
        assert float(change["new"]["on_hand"]) == first + 3
    finally:
        await js.close()


async def test_each_organization_sees_only_its_rows(
    rt_proxy, world, jwt_secret, anon_key, database_url
):
    """Subscribers of a and b on the same unfiltered binding: a change in a reaches only a; the
    first thing b receives is b's own later change."""
    _, url = rt_proxy
    a = await py_subscribe(
        url,
        anon_key,
        mint(jwt_secret, sub=world.a.users["viewer"]),
        "products",
        [{"event": "UPDATE", "table": "products"}],
    )
    b = await py_subscribe(
        url,
        anon_key,
        mint(jwt_secret, sub=world.b.users["viewer"]),
        "products",
        [{"event": "UPDATE", "table": "products"}],
    )
    try:
        rename_product(database_url, world.a.products["P2"], "a only")
        rename_product(database_url, world.b.products["P2"], "b only")
        rename_product(database_url, world.a.products["P2"], "a again")
        assert [(await a.change())["record"]["name"] for _ in range(2)] == ["a only", "a again"]
        assert (await b.change())["record"]["name"] == "b only"
    finally:
        await a.close()
        await b.close()


async def test_oversized_row_is_fetched_not_dropped(rt_proxy, world, jwt_secret, anon_key, session):
    """An update whose change is over NOTIFY's 8000-byte payload limit still arrives whole."""
    _, url = rt_proxy
    ch = await py_subscribe(
        url,
        anon_key,
        mint(jwt_secret, sub=world.a.users["viewer"]),
        "big",
        [{"event": "UPDATE", "table": "products", "filter": f"id=eq.{world.a.products['P3']}"}],
    )
    try:
        text = "é" * 2000  # 4000 bytes, old and new: over the limit together
        for description in (text, text.upper()):
            r = await session.patch(
                url + f"/rest/v1/products?id=eq.{world.a.products['P3']}",
                headers=bearer(mint(jwt_secret, sub=world.a.users["manager"]), anon_key),
                json={"description": description},
            )
            assert r.status == 200, await r.text()
        assert (await ch.change())["record"]["description"] == text
        assert (await ch.change())["record"]["description"] == text.upper()
    finally:
        await ch.close()


async def test_removal_stops_delivery_in_commit_order(
    rt_proxy, world, jwt_secret, anon_key, database_url, new_user
):
    """A member removed, a change, the member added back, another change: the subscriber gets
    the second change and never the first (roles re-read in commit order)."""
    _, url = rt_proxy
    user = new_user()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role)"
            " values (%s, %s, 'viewer')",
            (user, world.a.id),
        )
    ch = await py_subscribe(
        url,
        anon_key,
        mint(jwt_secret, sub=user),
        "removal",
        [{"event": "UPDATE", "table": "products"}],
    )
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from public.memberships where user_id = %s", (user,))
            conn.execute(
                "update public.products set name = 'while removed' where id = %s",
                (world.a.products["P1"],),
            )
            conn.execute(
                "insert into public.memberships (user_id, organization_id, role)"
                " values (%s, %s, 'viewer')",
                (user, world.a.id),
            )
            conn.execute(
                "update public.products set name = 'member again' where id = %s",
                (world.a.products["P1"],),
            )
        assert (await ch.change())["record"]["name"] == "member again"
    finally:
        await ch.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from public.memberships where user_id = %s", (user,))


async def test_token_refresh_keeps_delivering_and_expiry_closes(
    rt_proxy, world, jwt_secret, anon_key, database_url
):
    """Two subscribers with 2-second tokens: realtime-js sends a fresh access_token and keeps
    receiving; supabase-py does not and is closed at expiry (system error, then phx_close)."""
    _, url = rt_proxy
    viewer = world.a.users["viewer"]
    js = await node_subscribe(
        url,
        anon_key,
        mint(jwt_secret, sub=viewer, ttl=2),
        "refresh",
        [{"event": "UPDATE", "schema": "public", "table": "products"}],
    )
    py = await py_subscribe(
        url,
        anon_key,
        mint(jwt_secret, sub=viewer, ttl=2),
        "expiry",
        [{"event": "UPDATE", "table": "products"}],
    )
    try:
        await js.command(auth=mint(jwt_secret, sub=viewer, ttl=3600))
        await js.next("authed")
        states = []
        async with asyncio.timeout(5):
            while "CLOSED" not in states:
                states.append((await py.states.get())[0])
        assert "CHANNEL_ERROR" in states  # the system error came first
        rename_product(database_url, world.a.products["P1"], "after expiry")
        change = await js.next("change")
        assert change["new"]["name"] == "after expiry"
        assert py.changes.empty()
    finally:
        await js.close()
        await py.close()


async def test_logout_revokes_the_channel_at_once(rt_proxy, world, jwt_secret, anon_key, session):
    """POST /api/v1/auth/logout with the channel's token closes the channel within a second."""
    _, url = rt_proxy
    token = mint(jwt_secret, sub=world.a.users["viewer"])
    ch = await py_subscribe(url, anon_key, token, "revoke", [{"event": "*", "table": "products"}])
    try:
        r = await session.post(
            url + "/api/v1/auth/logout", headers={"Authorization": "Bearer " + token}
        )
        assert r.status == 200, await r.text()
        states = []
        async with asyncio.timeout(1.5):
            while "CLOSED" not in states:
                states.append((await ch.states.get())[0])
    finally:
        await ch.close()


async def test_broadcast_reaches_the_organization_only(
    rt_proxy, world, jwt_secret, anon_key, session
):
    """A realtime-js broadcast on a topic reaches a member of the same organization (and the
    sender, with self), never a member of another organization on the same topic."""
    _, url = rt_proxy
    js = await node_subscribe(
        url, anon_key, mint(jwt_secret, sub=world.a.users["staff"]), "room", []
    )
    same = await raw_connect(session, url, anon_key)
    other = await raw_connect(session, url, anon_key)
    try:
        for raw, org in ((same, world.a), (other, world.b)):
            reply = await raw.join("realtime:room", mint(jwt_secret, sub=org.users["viewer"]), [])
            assert reply["status"] == "ok"
        await js.command(send={"event": "shout", "payload": {"n": 1}})
        assert (await js.next("broadcast"))["payload"] == {"n": 1}
        (message,) = await same.collect("broadcast")
        assert message["payload"]["event"] == "shout"
        assert await other.flush("broadcast") == []
    finally:
        await js.close()
        await same.ws.close()
        await other.ws.close()


async def test_bad_input_is_refused_clearly(rt_proxy, world, jwt_secret, anon_key, session):
    """No apikey or an unknown vsn: 4xx JSON before any upgrade. Unknown table, bad filter or
    token: an error reply. A bad access_token ends the channel. A malformed frame: close 1007."""
    _, url = rt_proxy
    for params, status in (({"vsn": "1.0.0"}, 401), ({"apikey": anon_key, "vsn": "9"}, 400)):
        r = await session.get(url + "/realtime/v1/websocket", params=params)
        assert r.status == status
        assert "error" in await r.json()
    raw = await raw_connect(session, url, anon_key)
    viewer = mint(jwt_secret, sub=world.a.users["viewer"])
    for binding, reason in (
        ({"event": "*", "schema": "public", "table": "audit_log"}, "not published"),
        ({"event": "*", "schema": "private", "table": "products"}, "public schema"),
        ({"event": "*", "schema": "public", "table": "products", "filter": "sku=like.x"}, "one of"),
        ({"event": "*", "schema": "public", "table": "products", "filter": "nope=eq.1"}, "column"),
        ({"event": "TRUNCATE", "schema": "public", "table": "products"}, "event"),
    ):
        reply = await raw.join("realtime:bad", viewer, [binding])
        assert reply["status"] == "error" and reason in reply["response"]["reason"], reply
    reply = await raw.join("realtime:bad", "not-a-token", [])
    assert reply["status"] == "error" and "Invalid token" in reply["response"]["reason"]
    await raw.ws.send_str("{not json")
    frame = await raw.ws.receive(timeout=2)
    assert frame.type == aiohttp.WSMsgType.CLOSE and frame.data == 1007


async def test_access_token_with_a_forged_token_closes_the_channel(
    rt_proxy, world, jwt_secret, anon_key, session
):
    """An access_token message the gate would refuse: system error, then phx_close."""
    _, url = rt_proxy
    raw = await raw_connect(session, url, anon_key)
    try:
        viewer = mint(jwt_secret, sub=world.a.users["viewer"])
        assert (await raw.join("realtime:t", viewer, []))["status"] == "ok"
        await raw.push("realtime:t", "access_token", {"access_token": "forged." + uuid.uuid4().hex})
        await raw.until_reply(await raw.push("phoenix", "heartbeat", {}))
        events = [(m["event"], m["payload"].get("status")) for m in raw.received]
        assert events[-2:] == [("system", "error"), ("phx_close", None)]
        reply = await raw.until_reply(await raw.push("realtime:t", "broadcast", {"event": "x"}))
        assert reply == {"status": "error", "response": {"reason": "unmatched topic"}}
    finally:
        await raw.ws.close()


async def test_a_table_rls_decides_is_asked_of_the_database_as_each_subscriber(
    rt_proxy, world, jwt_secret, anon_key, session, database_url
):
    """notification_reads is readable by its own user only (not by the organization): the
    reader's subscriber receives the INSERT, a colleague subscribed the same way does not."""
    _, url = rt_proxy
    reader, colleague = world.a.users["staff"], world.a.users["viewer"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        notification = conn.execute(
            "insert into public.notifications (organization_id, kind, payload)"
            " values (%s, 'low_stock', '{}') returning id",
            (world.a.id,),
        ).fetchone()[0]
    binding = [{"event": "*", "table": "notification_reads"}]
    mine = await py_subscribe(url, anon_key, mint(jwt_secret, sub=reader), "reads", binding)
    other = await raw_connect(session, url, anon_key)
    try:
        reply = await other.join(
            "realtime:reads",
            mint(jwt_secret, sub=colleague),
            [{"event": "*", "schema": "public", "table": "notification_reads"}],
        )
        assert reply["status"] == "ok"
        r = await session.post(
            url + "/rest/v1/notification_reads",
            headers=bearer(mint(jwt_secret, sub=reader), anon_key),
            json={"user_id": reader, "notification_id": notification},
        )
        assert r.status == 201, await r.text()
        data = await mine.change()
        assert data["type"] == "INSERT" and data["record"]["user_id"] == reader
        assert await other.flush() == []
    finally:
        await mine.close()
        await other.ws.close()
