"""Invalidation per organization (issue 13, point 3): one organization's writes, through
/rest/v1, /api/v1, RPCs or plain SQL, never turn another organization's cached reads into
misses, while they do drop the writer's own; a write refused with a 4xx moves nothing, on
/api/v1 too."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import orjson
import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb

from proxy.cache.answers import invited
from proxy.cache.dependencies import (
    ORG_TABLES,
    TENANCY,
    bucket,
    changed_names,
    org_name,
    place_bucket,
    write_names,
)
from proxy.cache.generations import Generations
from proxy.cache.listener import names_of
from proxy.cache.tenants import joins_of, read_names
from tests.support.cached import behind_lossy_relay, coherent_proxies
from tests.support.domain import build_world, call, make_product, stock
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


A, B = "0a" * 4 + "-0000-4000-8000-" + "0a" * 6, "0b" * 4 + "-0000-4000-8000-" + "0b" * 6
ORG_OF = {"p1": A, "p2": B}  # each product belongs to one organization


async def test_no_reader_misses_a_write_of_rows_it_can_see() -> None:
    """Every kind of stock reader (whole table, one organization, one product with its
    caller's organizations known or not) moves with every write that knows any combination of
    its products and organizations and changed rows the reader can see; a reader of b does not
    move with a write of a's rows it knows are a's (proxy/dependencies.changed_names)."""
    table = "stock_levels"
    readers = {
        "whole": ((table,), None, None),
        "org a": ((org_name(table, A),), A, None),
        "org b": ((org_name(table, B),), B, None),
        "p1": ((bucket(table, "p1"),), None, "p1"),
        "p2 of b's member": (read_names((bucket(table, "p2"),), frozenset({B})), B, "p2"),
        "p1 of a's member": (read_names((bucket(table, "p1"),), frozenset({A})), A, "p1"),
    }
    generations = Generations(None, "unit")
    for products in (None, ["p1"], ["p2"], ["p1", "p2"]):
        for orgs in (None, [A], [B], [A, B]):
            if products and orgs and not {ORG_OF[p] for p in products} <= set(orgs):
                continue  # a write's organizations include those of every row it changed
            for name, (deps, org, product) in readers.items():
                before = generations.vector(deps)
                await generations.bump(changed_names(table, products, orgs))
                moved = generations.vector(deps) != before
                sees = (orgs is None or org is None or org in orgs) and (
                    products is None or product is None or product in products
                )
                assert moved or not sees, (name, products, orgs)
                if orgs is not None and org is not None and org not in orgs:
                    assert not moved, (name, products, orgs)


async def test_no_reader_of_a_place_misses_a_write_it_can_see() -> None:
    """Readers of one product at one location (stock at a place, their organizations known or
    not) move with every write that may have changed that place's rows — its pair named, its
    products named without their places, nothing known — and a write naming only other places
    of the same product leaves them alone, while the product's readers still move."""
    table = "stock_levels"
    here, there = place_bucket(table, "p1", "l1"), place_bucket(table, "p1", "l2")
    assert here != there
    readers = {
        "p1 at l1": ((here,), None, ("p1", "l1")),
        "p1 at l2": ((there,), None, ("p1", "l2")),
        "p1 at l1 of a's member": (read_names((here,), frozenset({A})), A, ("p1", "l1")),
        "p1": ((bucket(table, "p1"),), None, ("p1", None)),
    }
    generations = Generations(None, "unit")
    writes = [
        (None, None),
        (["p1"], None),  # the products known, not their places
        (["p1"], [("p1", "l1")]),
        (["p1"], [("p1", "l2")]),
        (["p1", "p2"], [("p1", "l1"), ("p2", "l1")]),
        (["p2"], [("p2", "l1")]),
    ]
    for products, places in writes:
        for orgs in (None, [A], [A, B]):
            for name, (deps, _org, (product, location)) in readers.items():
                before = generations.vector(deps)
                await generations.bump(changed_names(table, products, orgs, places))
                moved = generations.vector(deps) != before
                sees = products is None or (
                    product in products
                    and (places is None or location is None or (product, location) in places)
                )
                assert moved == sees, (name, products, places, orgs)


async def test_no_reader_misses_a_membership_write_it_can_see() -> None:
    """Every reader of memberships — a user's own (what every read of theirs depends on), one
    organization's member list, the whole table — moves with every membership write that may
    have changed rows it depends on, whatever the write knows of its organizations and users
    (users=(): none named, its users members of its organizations, a removal or a role
    change); a write naming its users and organizations moves no other user's and no other
    organization's readers."""
    u, v = "0c" * 4 + "-0000-4000-8000-" + "0c" * 6, "0d" * 4 + "-0000-4000-8000-" + "0d" * 6
    a, b = frozenset({A}), frozenset({B})
    readers = {  # name: (generation names, whose memberships, of which organizations)
        "u in a": (read_names((TENANCY,), a, None, u), {u}, a),
        "v in b": (read_names((TENANCY,), b, None, v), {v}, b),
        "u in none": (read_names((TENANCY,), frozenset(), None, u), {u}, frozenset()),
        "anon": (read_names((TENANCY,), None), None, None),
        "a's members": (read_names(("memberships", TENANCY), a, None, u), {u}, a),
        "b's members": (read_names(("memberships", TENANCY), b, None, v), {v}, b),
        "whole": (("memberships",), None, None),
    }
    generations = Generations(None, "unit")
    for users in (None, [], [u], [v], [u, v]):
        for orgs in (None, [], [A], [B], [A, B]):
            for name, (deps, own, theirs) in readers.items():
                before = generations.vector(deps)
                await generations.bump(changed_names("memberships", None, orgs, None, users))
                moved = generations.vector(deps) != before
                sees = (
                    users is None
                    or orgs is None
                    or own is None
                    or bool(own & set(users))
                    or bool(theirs & set(orgs))
                )
                assert moved == sees, (name, users, orgs)


async def test_no_reader_misses_a_write_of_its_own_notification_reads() -> None:
    """A user's reads of notification_reads (their own rows only) move with every write of
    their rows or of unknown users' rows, never with another user's; a whole-table reader
    (anon, service_role) with every write."""
    u, v = "0c" * 4 + "-0000-4000-8000-" + "0c" * 6, "0d" * 4 + "-0000-4000-8000-" + "0d" * 6
    table = "notification_reads"
    readers = {
        "u": (read_names((table,), frozenset({A}), None, u), {u}),
        "v": (read_names((table,), None, None, v), {v}),
        "whole": (read_names((table,), None), None),
    }
    assert readers["u"][0] != readers["whole"][0] != readers["v"][0]
    generations = Generations(None, "unit")
    for users in (None, [], [u], [v], [u, v]):
        for name, (deps, own) in readers.items():
            before = generations.vector(deps)
            await generations.bump(changed_names(table, None, None, None, users))
            moved = generations.vector(deps) != before
            sees = users is None or own is None or bool(own & set(users))
            assert moved == sees, (name, users)


async def test_a_write_moves_every_organization_if_its_caller_joined_one_meanwhile() -> None:
    """A write's names are decided by the caller's organizations as looked up before it ran; if
    the caller's memberships move before PostgREST answers (the caller joined an organization,
    and the write may have acted on its rows), it moves what it would move for a caller whose
    organizations are not known. Found by a cold review (a cascading delete racing the
    deleter becoming owner)."""
    from proxy.cache.written import Written

    u = "0c" * 4 + "-0000-4000-8000-" + "0c" * 6
    b_reader = (org_name("products", B),)
    change = '{"table": "memberships", "op": "%s", "organizations": ["%s"], "users": ["%s"]}'
    member = orjson.dumps({"organization_id": B, "user_id": u, "role": "viewer"})
    by_id = orjson.dumps({"organization_id": A, "user_id": u})
    someone = "0d" * 4 + "-0000-4000-8000-" + "0d" * 6
    meanwhile = {
        "nothing": set(),
        "a join: an insert through the proxy": write_names(
            "memberships", member, [B], caller=someone, users=(u,), method="POST"
        ),
        "a join: a new organization": write_names(
            "rpc/create_organization", b'{"name": "n", "slug": "n"}', [], caller=u
        ),
        "a join: an invitation's answer": invited({"user_id": u}),
        "a join in SQL": names_of(change % ("insert", B, u)),
        "a join in SQL (a move)": names_of(change % ("update", B, u)),
        "a join of anyone (every membership)": changed_names("memberships", None),
        # Not joins: the caller's own organization deleted (often by this very write, whose
        # trigger's NOTIFY may arrive before its answer), the caller removed or re-roled:
        # widening would cool every tenant.
        "a removal in SQL": names_of(change % ("delete", A, u)),
        "a removal through the proxy": write_names(
            "rpc/remove_member", by_id, [A], caller=someone, method="POST"
        ),
        "a role change through the proxy": write_names(
            "rpc/change_member_role", by_id, [A], caller=someone, method="POST"
        ),
        "a DELETE through the proxy": write_names(
            "memberships", None, [A], caller=someone, users=(u,), method="DELETE"
        ),
    }
    widened = {}
    for what, names in meanwhile.items():
        generations = Generations(None, "unit")
        written = Written(
            generations,
            changed_names("products", None, [A]),
            wider=lambda: changed_names("products", None, None),
            watch=(joins_of(u),),
        )
        if names:
            await generations.bump(names)
        before = generations.vector(b_reader)
        await written.answered(204)
        widened[what] = generations.vector(b_reader) != before
    assert widened == {what: what.startswith("a join") for what in meanwhile}


def test_only_declared_functions_read_other_users_memberships() -> None:
    """A cached read depends on its caller's own memberships only (memberships~<user>), plus the
    member lists it declares: so every SQL function that reads public.memberships either
    answers only about auth.uid() (private helpers), or is exposed with memberships declared
    (proxy/cache/dependencies.RPC), or is not a cached read at all (a trigger, the token hook,
    which no cached read depends on: undeclared, it depends on every change)."""
    from pathlib import Path

    from proxy.cache.dependencies import RPC

    root = Path(__file__).resolve().parents[1] / "sql" / "functions"
    for path in sorted(root.rglob("*.sql")):
        text = path.read_text()
        if "public.memberships" not in text:
            continue
        name = path.stem
        if path.parent.name == "private":
            assert "auth.uid()" in text, path
        elif "returns trigger" in text or name not in RPC:
            assert name in ("keep_an_owner", "guard_member_change", "custom_access_token_hook"), (
                path
            )
        else:
            assert "memberships" in RPC[name], path


def test_organization_tables_show_only_their_members_rows(database_url) -> None:
    """Every table whose generations are per organization has organization_id, and each of its
    select policies (any role) limits rows to the caller's organizations: a read then depends
    only on those organizations' generations, a write changes only theirs."""
    member = "organization_id = ANY (ARRAY( SELECT private."
    with psycopg.connect(database_url) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.columns where table_schema = 'public'"
                " and column_name = 'organization_id'"
            )
        }
        policies = conn.execute(
            "select tablename, qual, permissive from pg_policies where schemaname = 'public'"
            " and cmd in ('SELECT', 'ALL') and tablename = any(%s)",
            (sorted(ORG_TABLES),),
        ).fetchall()
    assert ORG_TABLES - {"organizations"} <= columns  # an organization's own id is its id
    assert {t for t, _, _ in policies} == ORG_TABLES
    # A caller's own membership is a row of one of its organizations (member_organizations()
    # reads exactly those rows): that policy shows nothing the member policy does not.
    own = ("memberships", "(user_id = ( SELECT auth.uid() AS uid))")
    for table, qual, permissive in policies:
        if table == "organizations":
            qual = qual.replace("(id = ANY", "(organization_id = ANY")
        assert permissive == "RESTRICTIVE" or member in qual or (table, qual) == own, (table, qual)


@pytest.fixture(scope="module")
def prefix():
    """A Redis key prefix of this module's own; its keys are deleted afterwards."""
    with own_prefix("tenants") as value:
        yield value


def two_proxies(tmp_path_factory, name: str, prefix: str, **env: str):
    """Two proxy processes sharing one Redis prefix (tests.support.cached.coherent_proxies).
    Entries live an hour: what turns a hit into a miss here is a write, never a TTL running
    out in a slow run (an RPC's is a minute)."""
    yield from coherent_proxies(
        tmp_path_factory,
        name,
        prefix,
        **env,
        NIMBUS_CACHE_TTL_S="3600",
        NIMBUS_CACHE_RPC_TTL_S="3600",
    )


@pytest.fixture(scope="module")
def proxies(upstream_env, prefix, tmp_path_factory):
    """Two proxy processes sharing one Redis prefix."""
    yield from two_proxies(tmp_path_factory, "tenants-proxy", prefix, **upstream_env)


@pytest.fixture(scope="module")
def world(database_url):
    """Organizations a and b (tests/support/domain.py)."""
    return build_world(database_url)


def generation(prefix: str, name: str) -> int:
    """The shared counter of one generation name in Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.hget(prefix + ":gen", name) or 0)
    finally:
        client.close()


def settled(prefix: str, database_url: str) -> None:
    """Every NOTIFY sent so far has been applied by both processes: a marker statement's
    (delivered in commit order, after them) has moved its generation twice."""
    marker = generation(prefix, "test_items")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.test_items set qty = qty where name = 'item-001'")
    wait_until(lambda: generation(prefix, "test_items") >= marker + 2, what="the marker")


def auth(token_for, uid: str) -> dict[str, str]:
    """The Authorization header of a user."""
    return {"Authorization": f"Bearer {token_for(uid)}"}


def reads_of(org) -> list[str]:
    """Reads of one organization's data: whole tables (every organization of the caller), one
    organization's rows, one product's stock, embeds, an RPC and /api/v1 routes."""
    p1, wh = org.products["P1"], org.locations["WH1"]
    return [
        "/rest/v1/products?select=id,sku,description&order=sku",
        "/rest/v1/stock_levels?select=product_id,location_id,on_hand&order=product_id,location_id",
        f"/rest/v1/products?organization_id=eq.{org.id}&select=sku,stock_levels(on_hand)&order=sku",
        f"/rest/v1/stock_levels?product_id=eq.{p1}&location_id=eq.{wh}&select=on_hand",
        "/rest/v1/orders?select=id,status,order_items(quantity)&order=id",
        "/rest/v1/stock_movements?select=id,quantity&order=id.desc&limit=5",
        f"/rest/v1/rpc/low_stock_products?location_id={wh}&order=product_id",
        "/api/v1/products?page=1&limit=10",
        "/api/v1/stock/movements?page=1&limit=10",
    ]


def states(proxies, headers, paths) -> dict[tuple[int, str], str]:
    """X-Cache of each read on each process."""
    found = {}
    for i, base in enumerate(proxies):
        for path in paths:
            response = httpx.get(base + path, headers=headers)
            assert response.status_code == 200, (path, response.text)
            found[i, path] = response.headers["x-cache"]
    return found


def primed(proxies, headers, paths) -> None:
    """Every read cached on both processes (a hit the second time)."""
    states(proxies, headers, paths)
    seen = states(proxies, headers, paths)
    assert set(seen.values()) == {"HIT"}, seen


def test_one_organizations_writes_keep_the_others_hits(
    proxies, prefix, world, token_for, database_url
) -> None:
    """Writes of organization a through /rest/v1 (table, RPC), /api/v1 and plain SQL drop a's
    cached reads and none of b's; b's own write then drops b's."""
    a, b = world.a, world.b
    a_staff, a_admin = auth(token_for, a.users["staff"]), auth(token_for, a.users["admin"])
    b_viewer = auth(token_for, b.users["viewer"])
    a_reads, b_reads = reads_of(a), reads_of(b)
    p1, p2, wh, st = a.products["P1"], a.products["P2"], a.locations["WH1"], a.locations["ST1"]
    adjust = {"product_id": p1, "location_id": wh, "quantity_delta": 1, "reason": "count"}
    transfer = {"product_id": p1, "from_location_id": wh, "to_location_id": st, "quantity": 1}
    order = {"kind": "sales", "location_id": wh, "items": [{"product_id": p2, "quantity": 1}]}
    writes = [
        ("PATCH", f"/rest/v1/products?id=eq.{p1}", {"description": "rest"}, a_admin),
        ("POST", "/rest/v1/rpc/adjust_stock", adjust, a_staff),
        ("POST", "/rest/v1/rpc/create_order", order, a_staff),
        ("POST", "/rest/v1/rpc/transfer_stock", transfer, a_staff),
        ("POST", "/api/v1/stock/adjustments", {**adjust, "reason": "api"}, a_staff),
        ("PATCH", f"/api/v1/products/{p2}", {"description": "api"}, a_admin),
    ]
    for method, path, body, headers in writes:
        primed(proxies, b_viewer, b_reads)
        primed(proxies, a_staff, a_reads[:3])
        response = httpx.request(method, proxies[1] + path, json=body, headers=headers)
        assert response.status_code < 300, (path, response.text)
        settled(prefix, database_url)  # the triggers' NOTIFYs too
        missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
        assert not missed, (path, missed)
        assert "MISS" in states(proxies, a_staff, a_reads[:3]).values(), path

    # Plain SQL: the NOTIFY names organization a; once both listeners applied it, b still hits.
    for table, statement, params in (
        ("products", "update public.products set description = 'sql' where id = %s", (p1,)),
        ("stock_levels", "select public.adjust_stock(%s, %s, 1, 'count')", (p2, wh)),
    ):
        primed(proxies, b_viewer, b_reads)
        before = generation(prefix, org_name(table, a.id))
        with psycopg.connect(database_url) as conn:
            call(conn, a.users["owner"], statement, params)
        wait_until(
            lambda t=table, n=before: generation(prefix, org_name(t, a.id)) >= n + 2,
            what=f"the NOTIFY of {table}",
        )
        settled(prefix, database_url)
        missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
        assert not missed, (table, missed)

    # b's own write drops b's reads of that table.
    primed(proxies, b_viewer, b_reads)
    b_admin = auth(token_for, b.users["admin"])
    response = httpx.patch(
        proxies[0] + f"/rest/v1/products?id=eq.{b.products['P1']}",
        json={"description": "b"},
        headers=b_admin,
    )
    assert response.status_code == 204, response.text
    after = states(proxies, b_viewer, b_reads)
    assert after[0, b_reads[0]] == after[0, b_reads[2]] == "MISS"  # process 1 may then hit L2


SEEN = "/rest/v1/products?select=id&order=id"  # what a user's organizations hold


def sees(proxies, headers, org, member: bool) -> None:
    """The user reads org's products on every process if member, none otherwise."""
    for base in proxies:
        response = httpx.get(base + SEEN, headers=headers)
        assert response.status_code == 200, response.text
        got = {row["id"] for row in response.json()}
        assert (set(org.products.values()) <= got) if member else not got, (base, got)


def membership_writes(org, user: str) -> list[tuple[str, str, dict | None, bool]]:
    """An owner's membership writes of user in org, through /rest/v1 and /api/v1, in an order
    that works from a user who is not a member: (method, path, body, member after it)."""
    email = f"{user}@example.test"
    return [
        (
            "POST",
            "/rest/v1/rpc/invite_member",
            {"email": email, "role": "viewer", "organization_id": org.id},
            True,
        ),
        ("PATCH", f"/api/v1/members/{user}", {"role": "staff"}, True),
        ("POST", "/rest/v1/rpc/remove_member", {"user_id": user, "organization_id": org.id}, False),
        ("POST", "/api/v1/members", {"email": email, "role": "viewer"}, True),
        (
            "POST",
            "/rest/v1/rpc/change_member_role",
            {"user_id": user, "role": "staff", "organization_id": org.id},
            True,
        ),
        ("DELETE", f"/api/v1/members/{user}", None, False),
    ]


@pytest.fixture(scope="module")
def deaf_proxies(upstream_env, tmp_path_factory):
    """Two proxy processes that do not LISTEN: no trigger's NOTIFY reaches them, so only the
    proxy's own bumps move their generations."""
    with own_prefix("tenants-deaf") as deaf_prefix:
        yield from two_proxies(
            tmp_path_factory,
            "tenants-deaf",
            deaf_prefix,
            **upstream_env,
            NIMBUS_LISTEN_ENABLED="false",
        )


def test_a_membership_write_moves_its_users_reads_before_answering(
    deaf_proxies, world, token_for, database_url
) -> None:
    """The proxy's own bump of a membership write moves the reads of the user whose access it
    changed, on every process, before the writer hears the answer: the invitee's (named by the
    invitation's answer), the changed or removed member's (named by the arguments). Tried where
    no NOTIFY arrives, which would otherwise hide a bump that misses them."""
    a = world.a
    owner = {**auth(token_for, a.users["owner"]), "X-Organization-Id": a.id}
    user = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (user, f"{user}@example.test")
        )
    mine = auth(token_for, user)
    try:
        for method, path, body, member in membership_writes(a, user):
            primed(deaf_proxies, mine, [SEEN])
            response = httpx.request(method, deaf_proxies[1] + path, json=body, headers=owner)
            assert response.status_code < 300, (path, response.text)
            sees(deaf_proxies, mine, a, member)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from public.memberships where user_id = %s", (user,))


def new_organization(base: str, token_for, database_url: str) -> tuple[dict[str, str], str]:
    """A new user's organization, created through the proxy at base: (its owner's
    Authorization, its id)."""
    user = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (user, f"{user}@example.test")
        )
    owner = auth(token_for, user)
    created = httpx.post(
        base + "/rest/v1/rpc/create_organization",
        json={"name": "Short-lived", "slug": f"s-{user[:8]}"},
        headers=owner,
    )
    assert created.status_code == 200, created.text
    return owner, created.json()["id"]


def test_deleting_an_organization_moves_what_it_cascades_to_before_answering(
    deaf_proxies, token_for, database_url
) -> None:
    """A write that may change any table (deleting an organization cascades to every one of its
    rows, its memberships included) moves every cached read before it is answered: its owner's
    list of organizations and of products no longer shows it on either process. Found by a
    cold review: such writes moved only the name of the reads that depend on everything, so
    an organization's reads outlived it until the database's NOTIFY arrived."""
    mine, org = new_organization(deaf_proxies[0], token_for, database_url)
    reads = ["/rest/v1/organizations?select=id", "/rest/v1/settings?select=organization_id"]
    primed(deaf_proxies, mine, reads)
    gone = httpx.delete(deaf_proxies[1] + f"/rest/v1/organizations?id=eq.{org}", headers=mine)
    assert gone.status_code == 204, gone.text
    for base in deaf_proxies:
        for path in reads:
            assert httpx.get(base + path, headers=mine).json() == [], (base, path)


def test_deleting_an_organization_keeps_the_other_users_notification_lists(
    proxies, prefix, world, token_for, database_url
) -> None:
    """Deleting an organization removes the notification_reads of its notifications, which only
    its members (and former members) can have written: another organization's users' cached
    notification lists stay hits (after the NOTIFYs too), while the deleted organization's owner
    sees its notifications gone on every process at once. Was: the cascade moved the whole
    notification_reads, so any signed-in user could make every user's lists miss, again and
    again, by creating and deleting organizations."""
    mine, org = new_organization(proxies[0], token_for, database_url)
    others = auth(token_for, world.b.users["viewer"])
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _ in range(2):
            conn.execute(
                "insert into public.notifications (organization_id, kind, payload)"
                " values (%s, 'order_status', '{}')",
                (org,),
            )
    marked = httpx.post(proxies[1] + "/api/v1/notifications/read", json={"all": True}, headers=mine)
    assert marked.status_code == 200 and marked.json()["data"]["marked"] == 2, marked.text
    lists = ["/api/v1/notifications?limit=5", "/api/v1/notifications?unread=true&limit=5"]
    settled(prefix, database_url)
    primed(proxies, others, lists)
    primed(proxies, mine, lists[:1])
    assert len(httpx.get(proxies[0] + lists[0], headers=mine).json()["data"]) == 2
    gone = httpx.delete(proxies[1] + f"/rest/v1/organizations?id=eq.{org}", headers=mine)
    assert gone.status_code == 204, gone.text
    for base in proxies:
        assert httpx.get(base + lists[0], headers=mine).json()["data"] == [], base
    settled(prefix, database_url)
    missed = [k for k, v in states(proxies, others, lists).items() if v != "HIT"]
    assert not missed, missed


def test_renaming_an_organization_keeps_the_others_hits(
    proxies, deaf_proxies, prefix, world, token_for, database_url
) -> None:
    """An admin renaming their organization moves that organization's reads only: b's cached
    reads (its own organization's row included) stay hits, while a's admin sees the new name on
    the next read on every process, where no NOTIFY arrives too. Reported by a cold review:
    any write of organizations counted as a cascade, moving every cached read of every
    organization."""
    a, b = world.a, world.b
    b_viewer = auth(token_for, b.users["viewer"])
    own = "/rest/v1/organizations?select=id,name"
    b_reads = [*reads_of(b), own]
    admin = auth(token_for, a.users["admin"])
    original = httpx.get(proxies[0] + own, headers=admin).json()[0]["name"]
    try:
        for i, group in enumerate((proxies, deaf_proxies)):
            settled(prefix, database_url)
            primed(proxies, b_viewer, b_reads)
            primed(group, admin, [own])
            name = f"{original} ({i})"
            renamed = httpx.patch(
                group[1] + f"/rest/v1/organizations?id=eq.{a.id}",
                json={"name": name},
                headers=admin,
            )
            assert renamed.status_code == 204, renamed.text
            for base in group:
                assert httpx.get(base + own, headers=admin).json()[0]["name"] == name, base
            settled(prefix, database_url)
            missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
            assert not missed, missed
    finally:
        httpx.patch(
            proxies[0] + f"/rest/v1/organizations?id=eq.{a.id}",
            json={"name": original},
            headers=admin,
        )


def test_a_form_encoded_membership_write_moves_the_user_it_names(
    deaf_proxies, world, token_for, database_url
) -> None:
    """PostgREST decodes a form-encoded body's keys (`user%5Fid`): a PATCH filtered to one
    user's membership whose body gives it to another names neither user in any byte the proxy
    would search, so the proxy reads only JSON bodies and names nothing from any other (every
    user's reads move). Found by a cold review: the other user kept a cached view without the
    organization until the NOTIFY arrived."""
    a = world.a
    admin = auth(token_for, a.users["admin"])
    giver, taker = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        for user in (giver, taker):
            conn.execute(
                "insert into auth.users (id, email) values (%s, %s)", (user, f"{user}@example.test")
            )
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role)"
            " values (%s, %s, 'viewer')",
            (giver, a.id),
        )
    mine = auth(token_for, taker)
    try:
        primed(deaf_proxies, mine, [SEEN])
        moved = httpx.patch(
            deaf_proxies[1] + f"/rest/v1/memberships?user_id=eq.{giver}&organization_id=eq.{a.id}",
            content=f"user%5Fid={taker}",
            headers={**admin, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert moved.status_code == 204, moved.text
        sees(deaf_proxies, mine, a, True)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from public.memberships where user_id in (%s, %s)", (giver, taker))


def test_a_failed_lookup_of_organizations_is_not_remembered(
    postgrest, database_url, jwt_secret, world, token_for, tmp_path
) -> None:
    """A lookup of the caller's organizations that PostgREST did not answer leaves the request
    on whole-table generations, and the next request looks again (it used to be remembered
    until the user's memberships moved, which may be never: every read of that user then
    moved with every organization's writes). Counted at a relay in front of PostgREST."""
    user = world.a.users["viewer"]
    lookup = f"GET /memberships?select=organization_id&user_id=eq.{user}".encode()
    with behind_lossy_relay(tmp_path, postgrest, database_url, jwt_secret, lookup) as (url, relay):
        headers = auth(token_for, user)
        first = httpx.get(url + "/rest/v1/products?select=id&limit=1", headers=headers)
        assert first.status_code == 200 and relay.dropped >= 1, (first.text, relay.dropped)
        relay.drop_answer_to = None
        before = relay.requests
        second = httpx.get(url + "/rest/v1/products?select=id&limit=2", headers=headers)
        assert second.status_code == 200, second.text
        assert relay.requests == before + 2  # the lookup again, then the read


def test_membership_writes_keep_the_other_organizations_hits(
    proxies, prefix, world, token_for, database_url
) -> None:
    """Membership writes of organization a — an invitation, a role change and a removal through
    /rest/v1 and /api/v1, a membership added and removed in plain SQL, a new organization —
    never turn b's cached reads into misses, while the user whose access changed sees it on
    their very next read on either process (reported open: every membership write moved one
    generation every cached read depended on, so each dropped every organization's hits)."""
    a, b = world.a, world.b
    b_viewer = auth(token_for, b.users["viewer"])
    b_reads = reads_of(b)
    owner = {**auth(token_for, a.users["owner"]), "X-Organization-Id": a.id}
    newcomer = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)",
            (newcomer, f"{newcomer}@example.test"),
        )
    mine = auth(token_for, newcomer)
    try:
        for method, path, body, member in membership_writes(a, newcomer):
            settled(prefix, database_url)
            primed(proxies, b_viewer, b_reads)
            primed(proxies, mine, [SEEN])
            response = httpx.request(method, proxies[1] + path, json=body, headers=owner)
            assert response.status_code < 300, (path, response.text)
            sees(proxies, mine, a, member)
            settled(prefix, database_url)
            missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
            assert not missed, (path, missed)

        # Plain SQL (as from the dashboard): the trigger's NOTIFY names the user.
        for statement, member in (
            (
                "insert into public.memberships (user_id, organization_id, role)"
                " values (%s, %s, 'viewer')",
                True,
            ),
            ("delete from public.memberships where user_id = %s and organization_id = %s", False),
        ):
            settled(prefix, database_url)
            primed(proxies, b_viewer, b_reads)
            primed(proxies, mine, [SEEN])
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(statement, (newcomer, a.id))
            settled(prefix, database_url)
            sees(proxies, mine, a, member)
            missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
            assert not missed, (statement, missed)

        # A new organization: its creator's reads move, no one else's.
        settled(prefix, database_url)
        primed(proxies, b_viewer, b_reads)
        own = "/rest/v1/organizations?select=id"
        primed(proxies, mine, [own])
        created = httpx.post(
            proxies[0] + "/rest/v1/rpc/create_organization",
            json={"name": "Newcomer's", "slug": f"n-{newcomer[:8]}"},
            headers=mine,
        )
        assert created.status_code == 200, created.text
        for base in proxies:
            listed = httpx.get(base + own, headers=mine).json()
            assert [row["id"] for row in listed] == [created.json()["id"]], (base, listed)
        settled(prefix, database_url)
        missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
        assert not missed, missed
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "delete from public.organizations where id in (select organization_id from"
                " public.memberships where user_id = %s and role = 'owner')",
                (newcomer,),
            )
            conn.execute("delete from public.memberships where user_id = %s", (newcomer,))


def test_marking_notifications_read_moves_only_the_readers_lists(
    proxies, deaf_proxies, prefix, world, token_for, database_url
) -> None:
    """A user marking notifications read changes their own rows of notification_reads only
    (RLS): other users' cached notification lists, in their organization or another, stay hits,
    while the user's own unread list is empty on every process before the answer arrives (tried
    where no NOTIFY arrives too). Reported open: notification_reads had one generation for
    everyone, so any user's mark-read cooled every organization's lists."""
    a, b = world.a, world.b
    with psycopg.connect(database_url, autocommit=True) as conn:
        for org in (a, b):
            conn.execute(
                "insert into public.notifications (organization_id, kind, payload)"
                " values (%s, 'order_status', '{}')",
                (org.id,),
            )
    others = [auth(token_for, b.users["viewer"]), auth(token_for, a.users["viewer"])]
    lists = ["/api/v1/notifications?limit=5", "/api/v1/notifications?unread=true&limit=5"]
    unread = "/api/v1/notifications?unread=true&limit=5"

    for staff in ("staff", "manager"):
        settled(prefix, database_url)
        for headers in others:
            primed(proxies, headers, lists)
        mine = auth(token_for, a.users[staff])
        primed(proxies, mine, [unread])
        assert httpx.get(proxies[0] + unread, headers=mine).json()["data"], staff
        marked = httpx.post(
            proxies[1] + "/api/v1/notifications/read", json={"all": True}, headers=mine
        )
        assert marked.status_code == 200 and marked.json()["data"]["marked"] > 0, marked.text
        for base in proxies:
            assert httpx.get(base + unread, headers=mine).json()["data"] == [], base
        settled(prefix, database_url)
        for headers in others:
            missed = [k for k, v in states(proxies, headers, lists).items() if v != "HIT"]
            assert not missed, (staff, missed)
    # Where no NOTIFY arrives: the proxy's own bump moved the reader's list.
    deaf_reader = auth(token_for, a.users["admin"])
    primed(deaf_proxies, deaf_reader, [unread])
    marked = httpx.post(
        deaf_proxies[1] + "/api/v1/notifications/read", json={"all": True}, headers=deaf_reader
    )
    assert marked.status_code == 200 and marked.json()["data"]["marked"] > 0, marked.text
    for base in deaf_proxies:
        assert httpx.get(base + unread, headers=deaf_reader).json()["data"] == [], base


def test_writes_that_change_no_row_move_nothing_without_a_count(
    proxies, prefix, world, token_for, database_url
) -> None:
    """A PATCH or DELETE that matches no row the caller may change moves nothing, whether or not
    the client asked for a count: the proxy asks PostgREST for one (and answers as if it had
    not). Reported open: any signed-in user's `DELETE /rest/v1/organizations?id=eq.<another
    organization>` (RLS: 0 rows, 204) moved every generation, and so turned every organization's
    hits into misses; a PATCH matching nothing moved the caller's organizations."""
    a, b = world.a, world.b
    b_viewer = auth(token_for, b.users["viewer"])
    b_reads = reads_of(b)
    stranger = auth(token_for, "00000000-0000-4000-8000-00000000f00d")  # no organization
    a_viewer = auth(token_for, a.users["viewer"])
    nobody = "00000000-0000-4000-8000-000000000000"
    planned = {**a_viewer, "Prefer": "count=planned"}
    represented = {**stranger, "Prefer": "return=representation"}
    attempts = [
        ("DELETE", f"/rest/v1/organizations?id=eq.{b.id}", None, a_viewer),
        # A count the proxy cannot read as exact, a representation (filtered again): neither
        # says what a DELETE removed, but RLS does: nothing of an organization not the caller's.
        ("DELETE", f"/rest/v1/organizations?id=eq.{b.id}", None, planned),
        ("DELETE", f"/rest/v1/organizations?id=eq.{b.id}", None, represented),
        ("PATCH", f"/rest/v1/organizations?id=eq.{b.id}", {"name": "mine"}, stranger),
        ("DELETE", f"/rest/v1/products?id=eq.{nobody}", None, stranger),
        ("PATCH", f"/rest/v1/products?id=eq.{nobody}", {"name": "x"}, a_viewer),
        ("DELETE", f"/rest/v1/memberships?organization_id=eq.{b.id}", None, a_viewer),
    ]
    settled(prefix, database_url)
    primed(proxies, b_viewer, b_reads)
    before = generation(prefix, "*")
    for method, path, body, headers in attempts:
        for base in proxies:
            response = httpx.request(method, base + path, json=body, headers=headers)
            assert response.status_code in (200, 204), (path, response.status_code, response.text)
            # Answered as PostgREST answers a client that asked for no count.
            assert response.headers.get("content-range", "*/*").endswith("/*"), response.headers
            applied = response.headers.get("preference-applied", "")
            assert "count=exact" not in applied, response.headers
    settled(prefix, database_url)
    assert generation(prefix, "*") == before + 2  # the marker's, nothing else
    missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
    assert not missed, missed


def test_a_write_whose_representation_is_empty_still_moves(deaf_proxies, world, token_for) -> None:
    """PostgREST filters a write's representation again on the rows' new values (an `or=` on
    the column it sets): an update answers `[]` with Content-Range `*/*`, or `*/0` with a
    count, though it changed the row. Such answers prove nothing: the cached read moves (found
    by a cold review; with `count=exact` the proxy trusted them before too)."""
    a = world.a
    admin = auth(token_for, a.users["admin"])
    read = f"/rest/v1/products?id=eq.{a.products['P2']}&select=description"
    for i, prefer in enumerate(("return=representation", "count=exact,return=representation")):
        primed(deaf_proxies, admin, [read])
        current = httpx.get(deaf_proxies[0] + read, headers=admin).json()[0]["description"]
        changed = httpx.patch(
            deaf_proxies[1] + f"/rest/v1/products?id=eq.{a.products['P2']}"
            f"&or=(description.eq.{current},description.is.null)",
            json={"description": f"represented {i}"},
            headers={**admin, "Prefer": prefer},
        )
        assert changed.status_code == 200 and changed.json() == [], changed.text
        for base in deaf_proxies:
            got = httpx.get(base + read, headers=admin).json()[0]["description"]
            assert got == f"represented {i}", (base, prefer, got)


def test_refused_api_writes_move_nothing(proxies, prefix, world, token_for, database_url) -> None:
    """A write /api/v1 answers with a 4xx (invalid, forbidden, not found) moves no generation:
    hits of the same organization stay hits."""
    a = world.a
    staff, viewer = auth(token_for, a.users["staff"]), auth(token_for, a.users["viewer"])
    reads = reads_of(a)
    wh = a.locations["WH1"]
    nobody = "00000000-0000-4000-8000-000000000000"
    attempts = [
        ("POST", "/api/v1/stock/adjustments", {"product_id": a.products["P1"]}, staff),  # 422
        (
            "POST",
            "/api/v1/stock/adjustments",
            {"product_id": nobody, "location_id": wh, "quantity_delta": 1, "reason": "x"},
            staff,
        ),
        ("PATCH", f"/api/v1/products/{nobody}", {"description": "x"}, staff),  # 404
        ("PATCH", f"/api/v1/products/{a.products['P1']}", {"description": "x"}, viewer),  # 403
    ]
    settled(prefix, database_url)  # what earlier tests wrote has been heard by both processes
    primed(proxies, staff, reads)
    before = generation(prefix, "*")
    for method, path, body, headers in attempts:
        response = httpx.request(method, proxies[0] + path, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    settled(prefix, database_url)
    assert generation(prefix, "*") == before + 2  # the marker's, nothing else
    assert set(states(proxies, staff, reads).values()) == {"HIT"}


def test_read_only_rpc_posts_move_nothing(proxies, prefix, world, token_for, database_url) -> None:
    """A POST to a STABLE function (supabase-js calls rpc() with POST) runs in a read-only
    transaction (PostgREST's access mode): it changes nothing, so it moves no generation —
    neither the caller's organization's, nor the tables' of a caller with no organization,
    nor the global memberships every read depends on. Reported by a hostile probe: org a's
    `rpc/members` turned b's hits into misses."""
    a, b = world.a, world.b
    b_viewer = auth(token_for, b.users["viewer"])
    b_reads = reads_of(b)
    owner = auth(token_for, a.users["owner"])
    stranger = auth(token_for, "00000000-0000-4000-8000-00000000beef")  # no organization
    calls = [
        ("/rest/v1/rpc/members", {}, owner),
        ("/rest/v1/rpc/lookup_product", {"code": "zzz"}, owner),
        ("/rest/v1/rpc/lookup_product", {"code": "zzz"}, stranger),
        ("/rest/v1/rpc/dashboard", {}, owner),
    ]
    settled(prefix, database_url)
    primed(proxies, b_viewer, b_reads)
    before = generation(prefix, "*")
    for path, body, headers in calls:
        for base in proxies:  # the first request of a token takes the full path, then the relay
            for _ in range(2):
                response = httpx.post(base + path, json=body, headers=headers)
                assert response.status_code == 200, (path, response.text)
    settled(prefix, database_url)
    assert generation(prefix, "*") == before + 2  # the marker's, nothing else
    missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
    assert not missed, missed


def test_writes_refused_before_reaching_postgrest_move_nothing(
    proxies, prefix, world, token_for, database_url
) -> None:
    """A write the proxy itself refuses before sending it (a forwarded header that is not
    UTF-8, a dot segment in the path) changed nothing, so it moves nothing: the full path had
    begun its write bookkeeping and bumped them as outcomes never learnt (found by a cold
    review), by a caller with no organization the whole tables and `*`."""
    a = world.a
    stranger = "00000000-0000-4000-8000-00000000cafe"  # no organization
    adjust = {
        "product_id": a.products["P1"],
        "location_id": a.locations["WH1"],
        "quantity_delta": 1,
        "reason": "count",
    }
    reads = reads_of(a)
    staff = auth(token_for, a.users["staff"])
    settled(prefix, database_url)
    primed(proxies, staff, reads)
    before = generation(prefix, "*")
    for headers in (auth(token_for, stranger), staff):
        for base in proxies:
            bad_header = httpx.post(
                base + "/rest/v1/rpc/adjust_stock",
                json=adjust,
                headers={**headers, "Accept": b"application/json\xff"},
            )
            assert bad_header.status_code == 400, bad_header.text
            dotted = httpx.post(
                base + "/rest/v1/rpc/%2e%2e/rpc/adjust_stock", json=adjust, headers=headers
            )
            assert dotted.status_code == 400, dotted.text
    settled(prefix, database_url)
    assert generation(prefix, "*") == before + 2  # the marker's, nothing else
    assert set(states(proxies, staff, reads).values()) == {"HIT"}


def test_refreshing_analytics_moves_only_what_its_answer_says(
    proxies, deaf_proxies, prefix, world, token_for, database_url
) -> None:
    """An admin's refresh_analytics moves every organization's analytics only when its answer
    says it refreshed them (before answering: processes that do not LISTEN see it); called again
    within the minute, b's cached reads stay hits; a call whose expiry scan announced the
    caller's own lots shows them to the caller at once and leaves b's reads hits. Found: every
    call moved every organization's lots, notifications and analytics, so any owner (of an
    organization they had just created) could keep every tenant's cache cold; and, by a cold
    review, with the lots moved by the answer, any admin could make their own lots due
    (`expiry_warning_days`) to move every organization's lots at will."""
    a, b = world.a, world.b
    a_admin, b_viewer = auth(token_for, a.users["admin"]), auth(token_for, b.users["viewer"])
    views = "/rest/v1/rpc/dashboard"
    notices = "/rest/v1/notifications?select=kind,payload&order=created_at"
    b_reads = [*reads_of(b), views, notices, "/rest/v1/lots?select=id,lot_number&order=id"]

    def refresh(base: str) -> dict:
        response = httpx.post(base + "/rest/v1/rpc/refresh_analytics", json={}, headers=a_admin)
        assert response.status_code == 200, response.text
        return response.json()

    refresh(proxies[0])  # refreshed now, or less than a minute ago
    settled(prefix, database_url)
    primed(proxies, b_viewer, b_reads)
    again = refresh(proxies[1])
    assert (again["refreshed"], again["expiring_lots_announced"]) == (False, 0)
    settled(prefix, database_url)
    missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
    assert not missed, missed

    # A refresh that refreshed: every organization's analytics move before it answers.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "update private.analytics_refreshes set refreshed_at = now() - interval '2 minutes'"
        )
    # (One Accept per process: each reads an entry of its own, not one the other stored anew.)
    each = [{**b_viewer, "Accept": accept} for accept in ("application/json", "*/*")]
    for base, headers in zip(deaf_proxies, each, strict=True):
        primed([base], headers, [views])
    assert refresh(deaf_proxies[1])["refreshed"] is True
    for base, headers in zip(deaf_proxies, each, strict=True):
        assert states([base], headers, [views]) == {(0, views): "MISS"}, base

    # One whose scan announced a's own lot: a sees it at once on every process; b still hits.
    a_notices = [*reads_of(a)[:1], notices]
    with psycopg.connect(database_url, autocommit=True) as conn:
        lot = f"EX-{uuid.uuid4().hex[:8]}"
        product = make_product(conn, a.id, lot)
        expiry = (dt.date.today() + dt.timedelta(days=45)).isoformat()
        stock(
            conn,
            a.users["staff"],
            product,
            a.locations["WH1"],
            5,
            lot_number=lot,
            expiry_date=expiry,
        )
        settings = "update public.settings set value = %s where organization_id = %s"
        (before,) = conn.execute(
            "select value from public.settings where organization_id = %s", (a.id,)
        ).fetchone()
        conn.execute(settings, (Jsonb({**before, "expiry_warning_days": 50}), a.id))
        try:
            settled(prefix, database_url)
            primed(proxies, b_viewer, b_reads)
            primed(deaf_proxies, a_admin, a_notices)
            out = refresh(deaf_proxies[0])
            assert (out["refreshed"], out["expiring_lots_announced"] >= 1) == (False, True)
            for base in deaf_proxies:
                shown = httpx.get(base + notices, headers=a_admin).json()
                assert ["lot_expiring"] == [
                    n["kind"] for n in shown if n["payload"].get("lot_number") == lot
                ], base
            settled(prefix, database_url)
            missed = [k for k, v in states(proxies, b_viewer, b_reads).items() if v != "HIT"]
            assert not missed, missed
        finally:
            conn.execute(settings, (Jsonb(before), a.id))
