"""Differential coherence: every read through the caching proxy equals the same read sent
straight to PostgREST right after it, while writes land through /rest/v1, /api/v1, RPCs and
plain SQL (issue 13, point 2). A seeded generator of reads over the real schema — filters,
orders, embeds at depth (to-one, to-many, many-to-many through junctions, nested, spread),
`;`-separated and percent-encoded parameters, counts, ranges, RPC reads — alternating between
two proxy processes that share Redis. Any difference in status or body is a stale answer.

`NIMBUS_DIFFERENTIAL_OPS` sets the number of operations (3,000 in CI, about a minute; `make
soak` runs 10,000), `NIMBUS_DIFFERENTIAL_SEED` replays a run; both are printed."""

from __future__ import annotations

import os
import random
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
import redis

from proxy.cache.dependencies import org_name
from proxy.gate.tokens import mint
from tests.support.cached import coherent_proxies
from tests.support.domain import Org, World, call
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
OPS = int(os.environ.get("NIMBUS_DIFFERENTIAL_OPS", "3000"))
SEED = int(os.environ.get("NIMBUS_DIFFERENTIAL_SEED") or secrets.randbelow(2**31))
PROCESSES = 2
POOL = 80  # distinct reads (path, reader, headers) per run
# Catalog tables written in plain SQL (as from the dashboard): table -> column renamed.
SQL_WRITES = {
    "products": "description",
    "categories": "description",
    "suppliers": "notes",
    "locations": "address",
}


@pytest.fixture(scope="module")
def differential_prefix():
    """A Redis key prefix of this module's own."""
    with own_prefix("differential") as value:
        yield value


@pytest.fixture(scope="module")
def proxies(postgrest, database_url, jwt_secret, differential_prefix, tmp_path_factory):
    """Two `nimbus serve` processes with the cache on, sharing Redis, straight to PostgREST."""
    yield from coherent_proxies(
        tmp_path_factory,
        "differential",
        differential_prefix,
        PROCESSES,
        NIMBUS_POSTGREST_URL=postgrest.url,
        NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_CACHE_MIN_USES="2",  # the product's default: a key kept from its second request
    )


@dataclass
class Tally:
    """What the run did, printed at the end."""

    reads: Counter = field(default_factory=Counter)  # by X-Cache
    writes: Counter = field(default_factory=Counter)  # by path and status class
    stale: list = field(default_factory=list)


def reads_of(org: Org, rng: random.Random) -> str:
    """One generated read (path and query under /rest/v1) over one organization's rows."""
    p = rng.choice([*org.products.values(), org.spare["products"]])
    wh, st = org.locations["WH1"], org.locations["ST1"]
    loc = rng.choice([wh, st])
    amp = rng.choice(["&", ";"])  # PostgREST splits on both
    sel = rng.choice(["select", "sel%65ct", "%73elect"])
    templates = [
        f"products?{sel}=id,sku,name,description&order=sku&limit={rng.randint(1, 5)}"
        f"&offset={rng.randint(0, 3)}",
        f"products?{sel}=id,sku,categories(name,description),suppliers(name,notes)&order=id",
        f"products?id=eq.{p}{amp}{sel}=id,stock_levels(location_id,on_hand)"
        f"{amp}stock_levels.order=location_id",
        f"products?{sel}=id,sku,locations!stock_levels(name,address)&id=eq.{p}"
        "&locations.order=name",
        f"products?{sel}=id,...categories(category:name)&order=sku",
        f"stock_levels?product_id=eq.{p}{amp}{sel}=product_id,location_id,on_hand,reserved"
        "&order=location_id",
        f"stock_levels?product_id=eq.{p}{amp}location_id=eq.{loc}{amp}{sel}=product_id,on_hand,"
        "locations(name,stock_levels(product_id,on_hand))&locations.stock_levels.order=product_id",
        f"stock_levels?product_id=eq.{p}&{sel}=on_hand,products(sku,description,"
        "categories(name))&order=location_id",
        f"stock_levels?{sel}=product_id,location_id,on_hand&on_hand=gte.{rng.randint(90, 110)}"
        "&order=product_id,location_id",
        f"stock_levels?product_id=eq.{p}&{sel}=on_hand,lots(lot_number,quantity)"
        "&order=location_id&lots.order=id",
        f"lots?{sel}=id,lot_number,quantity,product_id&product_id=eq.{p}&order=id",
        # One product at one place: scoped to the pair (spelled in either case, either order).
        f"stock_levels?product_id=eq.{p}{amp}location_id=eq.{loc}{amp}{sel}=on_hand,reserved",
        f"stock_levels?location_id=eq.{loc.upper()}&product_id=eq.{p}&{sel}=on_hand",
        f"lots?product_id=eq.{p}&location_id=eq.{loc}&{sel}=lot_number,quantity&order=id",
        f"stock_movements?location_id=eq.{loc}&product_id=eq.{p}&{sel}=quantity,kind"
        "&order=id.desc&limit=4",
        f"stock_movements?{sel}=id,quantity,kind,product_id&order=id.desc&limit=5",
        f"stock_movements?product_id=eq.{p}&{sel}=id,quantity,orders(status)&order=id.desc&limit=3",
        f"orders?{sel}=id,status,order_items(quantity,products(sku))&order=created_at.desc,id"
        "&limit=4&order_items.order=id",
        f"locations?{sel}=id,name,address,stock_levels(on_hand,products(sku))&order=name"
        "&stock_levels.order=product_id",
        f"locations?{sel}=id,name,products(sku)&order=name&products.order=sku&id=eq.{loc}",
        f"categories?{sel}=id,name,description,products(sku,stock_levels(on_hand))&order=name"
        "&products.order=sku&products.stock_levels.order=location_id",
        f"suppliers?{sel}=id,name,notes,products(sku)&order=name&products.order=sku",
        f"order_items?{sel}=id,quantity,products!inner(sku,stock_levels(on_hand))"
        f"&products.id=eq.{p}&order=id&products.stock_levels.order=location_id",
        f"rpc/low_stock_products?location_id={loc}&order=product_id,location_id",
        f"rpc/expiring_soon?days={rng.choice([30, 3650, 36500])}&order=lot_id",
        f"rpc/lookup_product?code={org.slug[0]}-P1&{sel}=id,sku,stock_levels(on_hand)"
        "&stock_levels.order=location_id",
        # Filtered to one organization: its own table per organization, embeds per caller.
        f"products?organization_id=eq.{org.id}{amp}{sel}=id,sku,description,"
        "stock_levels(on_hand)&order=sku&stock_levels.order=location_id",
        f"stock_levels?organization_id=eq.{org.id}&{sel}=product_id,on_hand,products(sku)"
        "&order=product_id,location_id",
        f"orders?organization_id=eq.{org.id}&{sel}=id,status&order=created_at.desc,id&limit=3",
        # Memberships: the member lists of the caller's organizations, one user's, embedded.
        f"memberships?{sel}=user_id,organization_id,role&order=organization_id,user_id",
        f"memberships?organization_id=eq.{org.id}&{sel}=user_id,role&order=user_id",
        f"organizations?{sel}=id,slug,memberships(role)&order=slug&memberships.order=user_id",
        f"rpc/members?organization_id={org.id}&order=user_id",
    ]
    return rng.choice(templates)


def test_cached_reads_equal_postgrest_under_writes(
    proxies, postgrest, world: World, jwt_secret, database_url, differential_prefix
) -> None:
    """OPS operations (80% reads, 17% writes through the proxy, 3% plain SQL): 0 stale."""
    rng = random.Random(SEED)
    print(f"\ndifferential coherence: seed={SEED} ops={OPS} organizations=2")
    orgs = [world.a, world.b]
    tokens = [
        {role: mint(jwt_secret, sub=uid, ttl=3600) for role, uid in org.users.items()}
        for org in orgs
    ]
    # A member of both organizations: its reads depend on both organizations' generations.
    both = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email) values (%s, %s)", (both, f"{both}@example.test")
        )
        for org in orgs:
            conn.execute(
                "insert into public.memberships (user_id, organization_id, role)"
                " values (%s, %s, 'viewer')",
                (both, org.id),
            )
    readers = [
        tokens[0]["staff"],
        tokens[0]["viewer"],
        tokens[1]["staff"],
        tokens[1]["viewer"],
        mint(jwt_secret, sub=both, ttl=3600),
    ]
    tally = Tally()
    gens = redis.Redis.from_url(REDIS_URL)
    sql = psycopg.connect(database_url, autocommit=True)
    clients = [httpx.Client(base_url=url, timeout=30) for url in proxies]
    direct = httpx.Client(base_url=postgrest.url, timeout=30)

    # The member of both organizations leaves and rejoins them (an owner's removals and
    # invitations through /rest/v1 and /api/v1) and changes role: its reads, and the member lists,
    # must follow at once.
    member_of = [True, True]

    def membership(which: int, org: Org, token: dict[str, str], api: bool) -> tuple:
        """(method, path, body, headers, whether it adds or removes the member)."""
        owner = {"Authorization": f"Bearer {token['owner']}", "X-Organization-Id": org.id}
        if member_of[which] and rng.random() < 0.5:
            role = rng.choice(["viewer", "staff"])
            if api:
                return "PATCH", f"/api/v1/members/{both}", {"role": role}, owner, False
            args = {"user_id": both, "role": role, "organization_id": org.id}
            return "POST", "/rest/v1/rpc/change_member_role", args, owner, False
        if member_of[which]:
            if api:
                return "DELETE", f"/api/v1/members/{both}", None, owner, True
            args = {"user_id": both, "organization_id": org.id}
            return "POST", "/rest/v1/rpc/remove_member", args, owner, True
        invite = {"email": f"{both}@example.test", "role": "viewer"}
        if api:
            return "POST", "/api/v1/members", invite, owner, True
        invite["organization_id"] = org.id
        return "POST", "/rest/v1/rpc/invite_member", invite, owner, True

    def write(i: int) -> None:
        which = rng.randrange(2)
        org, token = orgs[which], tokens[which]
        if rng.random() < 0.1:
            method, path, body, h, toggles = membership(which, org, token, rng.random() < 0.5)
            response = clients[i % PROCESSES].request(method, path, json=body, headers=h)
            assert response.status_code < 300, (path, response.text)
            member_of[which] ^= toggles
            tally.writes[f"{method} {path.replace(both, '<user>')} 2xx"] += 1
            return
        products = [*org.products.values(), org.spare["products"]]
        wh, st = org.locations["WH1"], org.locations["ST1"]
        staff = {"Authorization": f"Bearer {token['staff']}"}
        admin = {"Authorization": f"Bearer {token['admin']}"}
        p = rng.choice(products)
        a, b = rng.sample([wh, st], 2)
        kind = rng.randrange(9)
        if kind == 0:
            path, body, h = f"/rest/v1/products?id=eq.{p}", {"description": f"d{i}"}, admin
            path += f"&organization_id=eq.{org.id}" if i % 2 else ""  # names its organization
        elif kind == 1:
            path, body, h = f"/rest/v1/products?id=eq.{uuid.uuid4()}", {"name": "x"}, admin
            h = {**h, "Prefer": "count=exact"}  # matches no row: moves nothing
        elif kind == 2:
            body = {"product_id": p, "location_id": a, "quantity_delta": rng.choice([-3, 1, 2])}
            path, body, h = "/rest/v1/rpc/adjust_stock", {**body, "reason": "count"}, staff
        elif kind == 3:
            body = {"product_id": p, "from_location_id": a, "to_location_id": b, "quantity": 1}
            path, h = "/rest/v1/rpc/transfer_stock", staff
        elif kind == 4:
            items = [{"product_id": p, "quantity": 1}]
            path, h = "/rest/v1/rpc/create_order", staff
            body = {"kind": "sales", "location_id": a, "items": items}
        elif kind == 5:
            path, body, h = "/rest/v1/rpc/create_order", {}, staff  # 404: moves nothing
        elif kind == 6:
            body = {"product_id": p, "location_id": a, "quantity_delta": 1, "reason": "api"}
            path, h = "/api/v1/stock/adjustments", staff
        elif kind == 7:
            body = {"product_id": p, "from_location_id": a, "to_location_id": b, "quantity": 1}
            path, h = "/api/v1/stock/transfers", staff
        else:
            path, body, h = f"/rest/v1/stock_levels?product_id=eq.{p}", {"reserved": 0}, staff
            path += "&on_hand=lt.0"  # matches no row
        method = "PATCH" if "?" in path else "POST"
        response = clients[i % PROCESSES].request(method, path, json=body, headers=h)
        assert response.status_code < 500, (path, response.text)
        tally.writes[f"{path.split('?')[0]} {response.status_code // 100}xx"] += 1

    def sql_write(i: int) -> None:
        org = rng.choice(orgs)
        if rng.random() < 0.4:  # stock from SQL: the trigger names its products and places
            p = rng.choice([*org.products.values(), org.spare["products"]])
            loc = rng.choice([org.locations["WH1"], org.locations["ST1"]])
            name = org_name("stock_levels", org.id)
            before = int(gens.hget(differential_prefix + ":gen", name) or 0)
            call(sql, org.users["staff"], "select public.adjust_stock(%s, %s, 1, 'sql')", (p, loc))
            wait_until(
                lambda: (
                    int(gens.hget(differential_prefix + ":gen", name) or 0) >= before + PROCESSES
                ),
                timeout=5,
                what="the NOTIFY of stock_levels",
            )
            tally.writes["sql adjust_stock"] += 1
            return
        table, column = rng.choice(sorted(SQL_WRITES.items()))
        row = {
            "products": rng.choice([*org.products.values(), org.spare["products"]]),
            "categories": org.spare["categories"],
            "suppliers": org.spare["suppliers"],
            "locations": rng.choice([org.locations["WH1"], org.locations["ST1"]]),
        }[table]
        # The NOTIFY names the organization: the generation of its rows of the table moves.
        name = org_name(table, org.id)
        before = int(gens.hget(differential_prefix + ":gen", name) or 0)
        sql.execute(f"update public.{table} set {column} = %s where id = %s", (f"sql{i}", row))
        # Each process's listener bumps it once for this statement's NOTIFY: once the shared
        # counter shows all of them, every process has applied it (an event, no sleep).
        wait_until(
            lambda: int(gens.hget(differential_prefix + ":gen", name) or 0) >= before + PROCESSES,
            timeout=5,
            what=f"the NOTIFY of {table}",
        )
        tally.writes[f"sql {table}"] += 1

    # A pool of reads, each with its reader and headers: a read repeats often enough to be
    # cached, and so to go stale if invalidation missed it.
    pool = []
    for _ in range(POOL):
        path = "/" + reads_of(rng.choice(orgs), rng)
        h = {"Authorization": f"Bearer {rng.choice(readers)}"}
        extra = rng.randrange(6)
        if extra == 0:
            h["Prefer"] = "count=exact"
        elif extra == 1 and "rpc/" not in path:
            h["Range"] = f"0-{rng.randint(0, 2)}"
        pool.append((path, h))

    recent: list[tuple[str, dict]] = []

    def read(i: int) -> None:
        # Half the reads repeat one of the last few: read, write, read again is the pattern a
        # missed invalidation shows in.
        if recent and rng.random() < 0.5:
            path, h = rng.choice(recent)
        else:
            path, h = rng.choice(pool)
            recent.append((path, h))
            del recent[:-4]
        via = clients[rng.randrange(PROCESSES)].get("/rest/v1" + path, headers=h)
        same = direct.get(path, headers=h)
        tally.reads[via.headers.get("x-cache", "none")] += 1
        if (via.status_code, via.content, via.headers.get("content-range")) != (
            same.status_code,
            same.content,
            same.headers.get("content-range"),
        ):
            tally.stale.append((i, path, via.status_code, same.status_code, via.text[:200]))

    try:
        for i in range(OPS):
            roll = rng.random()
            if roll < 0.80:
                read(i)
            elif roll < 0.97:
                write(i)
            else:
                sql_write(i)
    finally:
        for c in (*clients, direct):
            c.close()
        sql.execute("delete from public.memberships where user_id = %s", (both,))
        sql.close()
        gens.close()
    print(f"  reads by X-Cache: {dict(tally.reads)}")
    print(f"  writes: {dict(sorted(tally.writes.items()))}")
    print(f"  stale answers: {len(tally.stale)}")
    assert not tally.stale, tally.stale[:5]
    assert tally.reads["HIT"] > OPS // 20  # the cache was in play
    assert sum(tally.reads.values()) > OPS // 2


def test_junctions_and_tables_match_the_schema(database_url) -> None:
    """proxy/cache/dependencies.py knows every public table and every foreign key between them (a
    many-to-many embed reads the junction without naming it), and no function sets
    `response.status` (a 4xx from PostgREST then always means the transaction rolled back)."""
    from proxy.cache.dependencies import REFS, TABLES

    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'public'"
                " and table_name not like 'test\\_%'"
            )
        }
        refs: dict[str, set[str]] = {}
        for src, dst in conn.execute(
            "select c.conrelid::regclass::text, c.confrelid::regclass::text from pg_constraint c"
            " join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace"
            " join pg_class t on t.oid = c.confrelid join pg_namespace m"
            " on m.oid = t.relnamespace where c.contype = 'f' and n.nspname = 'public'"
            " and m.nspname = 'public' and r.relname not like 'test\\_%'"
        ):
            refs.setdefault(src, set()).add(dst)
        setters = conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('public', 'private') and p.prosrc ilike '%response.status%'"
        ).fetchall()
    assert tables == set(TABLES)
    assert refs == {t: set(r) for t, r in REFS.items()}
    assert setters == []


def test_read_only_functions_are_the_stable_ones(database_url) -> None:
    """A POST to a function in READ_ONLY_RPC moves nothing: sound only because PostgREST runs a
    STABLE or IMMUTABLE function in a READ ONLY transaction. The list is exactly the exposed
    functions that are not VOLATILE (one turned volatile must leave it, or its writes would
    never be invalidated)."""
    from proxy.cache.dependencies import READ_ONLY_RPC

    with psycopg.connect(database_url) as conn:
        stable = {
            r[0]
            for r in conn.execute(
                "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.provolatile <> 'v' and p.prokind = 'f'"
                " and p.proname not like 'test\\_%'"
            )
        }
    assert stable == set(READ_ONLY_RPC)
