"""Realtime section of the tenancy battery: no event of another organization, ever.

Subscribers of organization b (owner and viewer), a user of no organization and the anon key
join every way they can name organization a's rows — every published table at once, each table
filtered on a's id, the organizations row itself — while a's rows change across the published
tables (plain SQL as the superuser and the domain functions as a's users). A member of a sees
those changes (the positive control); the others see nothing of a. A heartbeat round trip on each
socket proves nothing was still queued for it. Broadcast does not cross organizations either."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import psycopg
import pytest

from proxy.gate.tokens import mint
from tests.realtime.clients import Raw, raw_connect
from tests.support.domain import call, items

pytestmark = pytest.mark.asyncio(loop_scope="session")


def organization_of(message: dict) -> str | None:
    """The organization a postgres_changes message is about."""
    data = message["payload"]["data"]
    row = data.get("record") or data.get("old_record") or {}
    if data["table"] == "organizations":
        return row.get("id")
    return row.get("organization_id")


def change_a(database_url: str, world) -> None:
    """Rows of a change on many published tables, by SQL and by a's users."""
    a = world.a
    staff = a.users["staff"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "update public.products set name = name || '.' where organization_id = %s", (a.id,)
        )
        conn.execute("update public.organizations set name = name where id = %s", (a.id,))
        conn.execute("update public.locations set name = name where organization_id = %s", (a.id,))
        category = conn.execute(
            "insert into public.categories (organization_id, name) values (%s, %s) returning id",
            (a.id, "rt-" + uuid.uuid4().hex[:6]),
        ).fetchone()[0]
        conn.execute("delete from public.categories where id = %s", (category,))
        user = conn.execute(
            "insert into auth.users (id, email) values (%s, %s) returning id",
            (str(uuid.uuid4()), f"{uuid.uuid4().hex}@example.test"),
        ).fetchone()[0]
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role)"
            " values (%s, %s, 'viewer')",
            (user, a.id),
        )
        conn.execute("delete from public.memberships where user_id = %s", (user,))
    with psycopg.connect(database_url) as conn:
        call(
            conn,
            staff,
            "select public.adjust_stock(%s, %s, 1, 'rt tenancy', null, null)",
            (a.products["P1"], a.locations["WH1"]),
        )
        order = call(
            conn,
            staff,
            "select public.create_order('sales', %s, %s)",
            (a.locations["WH1"], items((a.products["P1"], 1))),
        )[0][0]
        call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))


@pytest.fixture
async def sockets(stack) -> AsyncIterator[list[Raw]]:
    """Bare sockets on the battery's proxy, closed after the test."""
    opened: list[Raw] = []
    async with aiohttp.ClientSession() as session:

        async def connect() -> Raw:
            raw = await raw_connect(session, stack.url, mint(stack.secret, role="anon"))
            opened.append(raw)
            return raw

        yield connect
        for raw in opened:
            await raw.ws.close()


async def test_no_change_of_another_organization_reaches_a_subscriber(
    stack, world, database_url, sockets, new_user
):
    """b's owner and viewer, an outsider and the anon key, joined on everything that names a:
    a member of a receives a's changes; none of them receives one."""
    a_id = world.a.id
    every = [{"event": "*", "schema": "public"}]
    aimed = [
        {"event": "*", "schema": "public", "table": t, "filter": f"organization_id=eq.{a_id}"}
        for t in (
            "products",
            "stock_levels",
            "orders",
            "order_items",
            "stock_movements",
            "memberships",
            "categories",
            "locations",
            "notifications",
        )
    ] + [{"event": "*", "schema": "public", "table": "organizations", "filter": f"id=eq.{a_id}"}]
    control = await sockets()
    assert (
        await control.join("realtime:all", mint(stack.secret, sub=world.a.users["viewer"]), every)
    )["status"] == "ok"
    attackers: list[tuple[str, str, Raw]] = []
    for name, token in (
        ("b owner", mint(stack.secret, sub=world.b.users["owner"])),
        ("b viewer", mint(stack.secret, sub=world.b.users["viewer"], org=a_id)),
        ("outsider", mint(stack.secret, sub=new_user())),
        ("anon", None),
    ):
        for topic, bindings in (("realtime:all", every), ("realtime:aimed", aimed)):
            raw = await sockets()
            assert (await raw.join(topic, token, bindings))["status"] == "ok", name
            attackers.append((name, topic, raw))
    change_a(database_url, world)
    with psycopg.connect(database_url, autocommit=True) as conn:  # b's sentinel, last
        conn.execute(
            "update public.products set name = name where id = %s", (world.b.products["P1"],)
        )
    # The feed applies changes in commit order and hands each to every channel at once: once
    # b's owner has the sentinel, every earlier change has been queued wherever it was going.
    sentinel_socket = next(raw for name, topic, raw in attackers if topic == "realtime:all")
    (sentinel,) = await sentinel_socket.collect("postgres_changes", within_s=10)
    assert organization_of(sentinel) == world.b.id
    seen = await control.flush()
    tables = {m["payload"]["data"]["table"] for m in seen}
    assert {"products", "organizations", "stock_levels", "orders", "memberships"} <= tables
    assert {organization_of(m) for m in seen} <= {a_id, None}  # None: a delete (key only)
    for name, topic, raw in attackers:
        got = {organization_of(m) for m in await raw.flush()}
        if name.startswith("b ") and topic == "realtime:all":
            assert got == {world.b.id}, name  # b's sentinel, and nothing else
        else:
            assert got == set(), (name, topic)


async def test_broadcast_does_not_cross_organizations(stack, world, sockets):
    """b's member broadcasting on a topic a's member joined: a's member gets nothing; an
    anonymous socket's broadcast reaches nobody."""
    a_side, b_side, anon = await sockets(), await sockets(), await sockets()
    for raw, token in (
        (a_side, mint(stack.secret, sub=world.a.users["viewer"])),
        (b_side, mint(stack.secret, sub=world.b.users["viewer"])),
        (anon, None),
    ):
        assert (await raw.join("realtime:room", token, []))["status"] == "ok"
    await b_side.until_reply(
        await b_side.push(
            "realtime:room", "broadcast", {"type": "broadcast", "event": "b", "payload": {}}
        )
    )
    await anon.until_reply(
        await anon.push(
            "realtime:room", "broadcast", {"type": "broadcast", "event": "x", "payload": {}}
        )
    )
    assert await a_side.flush("broadcast") == []
    assert await b_side.flush("broadcast") == []  # self is off by default
