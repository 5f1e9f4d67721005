"""Which tables a cached response depends on, and which tables a write may change.

A cached entry is valid only while the generations of the tables it read are unchanged. Reads
of a table depend on that table plus the tables embedded through `select`; RPC reads and writes
depend on the tables the function reads or writes, declared here (a test checks that every
function PostgREST exposes is declared). Everything depends on its caller's memberships, which
every RLS policy reads (TENANCY, one generation per user): a member removed from an
organization loses its cached view of it at once, and nobody else's moves.

Stock is scoped by product, so that a stock adjustment does not drop every cached stock read.
A write known to touch only some products' rows of a SCOPED table T (adjust_stock and
transfer_stock through the proxy; any statement, as private.notify_stock_change reports it)
moves `T@<bucket>` for each product and `T@any`, never `T` itself; every other write moves `T`
as before. What a reader sees (Generations.vector) for `T` is T + T@any, so a read of many
products still moves with every write; a read filtered to one product (`product_id=eq.<uuid>`)
depends on `T@<bucket>` instead, seen as T + T@<bucket>: it moves with writes of that product
(or its bucket) and with every write whose products are not known — unless its select embeds a
SCOPED table at any depth (junctions included), which reads other products' rows.

One level finer, a read filtered to one product at one location (`product_id=eq.<uuid>&
location_id=eq.<uuid>`: stock at a place) depends on `T@l<bucket of the pair>` instead, which
moves with writes of that pair (or its bucket), never with the same product's writes at other
locations. A write that knows its products names its pairs too (`places`: the proxy reads them
from adjust_stock's and transfer_stock's arguments, the trigger from the changed rows); one that
knows its products but not their locations moves what a write of unknown products moves.

Tables with organization_id are also scoped by organization (`T#<org>`, ORG_TABLES; which
organizations a read or a write has: proxy/tenants.py). changed_names says what a write moves
for what it knows; Generations.vector what each kind of reader adds up.

`select` here is the value PostgREST reads (proxy/cache/readquery.py): every table an embed reaches,
at any depth, through hints and many-to-many junctions (REFS), is a dependency."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterable
from typing import TypeVar, cast

import orjson

from proxy.cache import readquery
from proxy.ops.ids import UUID

ALL = "*"  # bumped with every change: depending on it means "any write invalidates me"
# Part of every generation vector (proxy/cache/generations.py): moving it invalidates every
# entry. A write that may have changed anything (its targets ALL) moves it.
EPOCH = "~epoch"

TABLES = frozenset(
    {
        "organizations",
        "memberships",
        "locations",
        "categories",
        "suppliers",
        "products",
        "stock_levels",
        "lots",
        "stock_movements",
        "orders",
        "order_items",
        "idempotency_keys",
        "settings",
        "notifications",
        "notification_reads",
        "audit_log",
        "stock_counts",
        "stock_count_lines",
        "supplier_products",
        "reorder_rules",
    }
)
# Every read depends on the caller's own memberships, which every RLS policy reads: TENANCY
# stands for them in a read's dependencies, and becomes `memberships~<user>` for a known user
# (tenants.read_names), the whole table otherwise. A write of memberships moves the users whose
# rows it changed (changed_names), so a member removed from an organization loses its cached
# view at once, and nobody else's moves.
USER = "~"
TENANCY = "memberships" + USER
JOINED = "+"  # memberships~+<user>: the user's joins (joined_name)
# Tables whose every row belongs to one user (user_id; every select policy `user_id =
# auth.uid()`): a user's reads depend on `T~<user>`, which the writes of that user's rows move.
USER_TABLES = frozenset({"notification_reads"})
ALWAYS = frozenset({TENANCY})
# Tables that triggers write on every write of another table.
SIDE_EFFECTS = frozenset({"audit_log", "notifications"})
STOCK = frozenset({"stock_levels", "lots", "stock_movements"})
ORDERS = frozenset({"orders", "order_items", "idempotency_keys"})
CATALOG = frozenset({"products", "categories", "suppliers", "locations", "settings"})
REPLENISHMENT = frozenset({"supplier_products", "reorder_rules"})
COUNTS = frozenset({"stock_counts", "stock_count_lines"})
# Not a table: the materialized views analytics read; refreshing them notifies this name.
VIEWS = frozenset({"analytics_views"})

# RPC name -> tables it reads (for GET caching) or writes (for invalidation on POST).
RPC: dict[str, frozenset[str]] = {
    "create_order": ORDERS | STOCK | SIDE_EFFECTS,
    "update_order_status": ORDERS | STOCK | SIDE_EFFECTS,
    "update_draft_order": ORDERS | SIDE_EFFECTS,
    "fulfil_order": ORDERS | STOCK | SIDE_EFFECTS,
    "receive_order": ORDERS | STOCK | SIDE_EFFECTS,
    "close_order": ORDERS | STOCK | SIDE_EFFECTS,
    "return_order": ORDERS | STOCK | SIDE_EFFECTS,
    "write_off_stock": STOCK | SIDE_EFFECTS,
    "write_off_expired": STOCK | SIDE_EFFECTS,
    "adjust_stock": STOCK | SIDE_EFFECTS,
    "transfer_stock": STOCK | SIDE_EFFECTS,
    "bulk_upsert_products": frozenset({"products"}) | SIDE_EFFECTS,
    "lookup_product": frozenset({"products"}),
    "low_stock_products": STOCK | CATALOG,
    "expiring_soon": STOCK | CATALOG,
    "create_organization": frozenset({"organizations", "memberships", "settings"}) | SIDE_EFFECTS,
    "dashboard": STOCK | ORDERS | CATALOG | VIEWS,
    "sales_analytics": ORDERS | STOCK | CATALOG | VIEWS,
    "inventory_turnover": ORDERS | STOCK | CATALOG | VIEWS,
    "demand_forecast": ORDERS | STOCK | CATALOG | VIEWS,
    "reorder_suggestions": ORDERS | STOCK | CATALOG | REPLENISHMENT | VIEWS,
    "create_replenishment_orders": ORDERS | SIDE_EFFECTS,
    "stock_valuation": STOCK | CATALOG | VIEWS,
    "set_lot_status": STOCK | SIDE_EFFECTS,
    # Its expiry scan writes lots of any organization (expired, announced: notifications,
    # audit log); the views it refreshes, its answer says (proxy/cache/answers.py).
    "refresh_analytics": frozenset({"lots"}) | SIDE_EFFECTS,
    "open_stock_count": COUNTS | SIDE_EFFECTS,
    "record_stock_count": COUNTS | SIDE_EFFECTS,
    "post_stock_count": COUNTS | STOCK | SIDE_EFFECTS,
    "cancel_stock_count": COUNTS | SIDE_EFFECTS,
    "members": frozenset({"memberships"}),
    "invite_member": frozenset({"memberships"}) | SIDE_EFFECTS,
    "change_member_role": frozenset({"memberships"}) | SIDE_EFFECTS,
    "remove_member": frozenset({"memberships"}) | SIDE_EFFECTS,
}
# The STABLE functions among them (and the other STABLE ones exposed): PostgREST runs even a
# POST to one in a READ ONLY transaction, so such a call changes nothing and moves nothing
# (supabase-js calls rpc() with POST). A test compares this with the functions' volatility.
READ_ONLY_RPC = frozenset(
    {
        "custom_access_token_hook",
        "dashboard",
        "demand_forecast",
        "expiring_soon",
        "import_job",
        "inventory_turnover",
        "lookup_product",
        "low_stock_products",
        "members",
        "reorder_suggestions",
        "sales_analytics",
        "stock_valuation",
    }
)

# Tables whose rows each belong to one product at one location (columns product_id and
# location_id).
SCOPED = frozenset({"stock_levels", "lots", "stock_movements"})
# The RPCs whose stock writes touch only their product_id argument's rows, at the locations
# their location arguments name (the places).
LOCATION_ARGUMENTS = {
    "adjust_stock": ("location_id",),
    "transfer_stock": ("from_location_id", "to_location_id"),
}
SCOPED_RPC = frozenset(LOCATION_ARGUMENTS)
BUCKETS = 4096  # product ids hash into this many names per table: bounded, collisions are safe
PLACE_BUCKETS = 8192  # (product, location) pairs hash into this many names per table
PLACE = "l"  # T@l<n>: the rows of the pairs hashing to n
ANY = "@any"  # suffix: moved by every scoped write of the table

# The member functions whose changed memberships belong to one user: the user_id argument's,
# or (None) the caller's. invite_member names its user by e-mail: the proxy learns whom from
# its answer (ANSWER_NAMES_USER).
USER_ARGUMENT: dict[str, str | None] = {
    "change_member_role": "user_id",
    "remove_member": "user_id",
    "create_organization": None,
}
ANSWER_NAMES_USER = frozenset({"invite_member"})
# The functions that write only the rows of an organization they create: rows nobody but
# their caller (whose memberships move) and whole-table readers can have read.
NEW_ORGANIZATION = frozenset({"create_organization"})


def acting_orgs(resource: str, orgs: Iterable[str] | None) -> Iterable[str] | None:
    """The organizations whose rows a write to /resource by a caller in orgs may change: none
    of them for a function creating an organization (those a function changes in other
    organizations, its answer says: proxy/cache/answers.py)."""
    function = resource[4:] if resource.startswith("rpc/") else None
    if function in NEW_ORGANIZATION:
        return ()  # of its new organization only: none whose readers need telling
    return orgs


# Writes to these may cascade into many tables (foreign keys with on delete cascade).
CASCADES = frozenset({"organizations", "orders", "notifications"})
# The public tables each table's foreign keys point at (a test compares it with the schema).
# PostgREST embeds many-to-many through a junction: a table with foreign keys to both sides,
# read without being named in the select (products?select=locations(name) reads stock_levels).
REFS: dict[str, frozenset[str]] = {
    "memberships": frozenset({"organizations"}),
    "locations": frozenset({"organizations"}),
    "categories": frozenset({"categories", "organizations"}),
    "suppliers": frozenset({"organizations"}),
    "products": frozenset({"categories", "organizations", "suppliers"}),
    "stock_levels": frozenset({"locations", "organizations", "products"}),
    "lots": frozenset({"locations", "organizations", "products"}),
    "orders": frozenset({"locations", "organizations", "suppliers"}),
    "order_items": frozenset({"orders", "organizations", "products"}),
    "stock_movements": frozenset({"locations", "lots", "orders", "organizations", "products"}),
    "idempotency_keys": frozenset({"orders", "organizations"}),
    "settings": frozenset({"organizations"}),
    "notifications": frozenset({"organizations"}),
    "notification_reads": frozenset({"notifications"}),
    "stock_counts": frozenset({"locations", "organizations"}),
    "stock_count_lines": frozenset({"lots", "organizations", "products", "stock_counts"}),
    "supplier_products": frozenset({"organizations", "products", "suppliers"}),
    "reorder_rules": frozenset({"locations", "organizations", "products"}),
}


MEMO_SELECT = 512  # selects up to this long are memoised (4,096 of 16 KiB would pin 64 MiB)


F = TypeVar("F", bound=Callable[..., object])


def memo_short(fn: F) -> F:
    """functools.lru_cache(4096) for calls whose select (second argument) is short."""
    memo = functools.lru_cache(maxsize=4096)(fn)

    @functools.wraps(fn)
    def call(resource: str, select: str | None, *rest: str | None) -> object:
        if select is not None and len(select) > MEMO_SELECT:
            return fn(resource, select, *rest)
        return memo(resource, select, *rest)

    return cast(F, call)  # the same signature as fn's


@functools.lru_cache(maxsize=1024)
def junctions(parent: str | None, child: str) -> frozenset[str]:
    """Tables an embed of child from parent may pass through (every table with foreign keys
    to both; to child and anything when the parent is not known, as under an RPC)."""
    return frozenset(
        j for j, refs in REFS.items() if child in refs and (parent is None or parent in refs)
    )


def _tree(parent: str | None, select: str, found: set[str]) -> bool:
    embeds = readquery.embeds(select)
    if embeds is None:
        return False
    for name, hints, inner in embeds:
        if name not in TABLES:
            return False  # a view, an aggregate, an FK-column embed: not known
        found.add(name)
        found.update(h for h in hints if h in TABLES)  # a hint may name the junction
        found.update(junctions(parent, name))
        if not _tree(name, inner, found):
            return False
    return True


@memo_short
def embedded_tables(resource: str, select: str | None) -> frozenset[str] | None:
    """Every table the embeds of select read, at any depth, junctions and hinted tables
    included; None when the select is not read with certainty."""
    found: set[str] = set()
    parent = None if resource.startswith("rpc/") else resource
    if select and not _tree(parent, select, found):
        return None
    return frozenset(found)


@memo_short
def read_dependencies(resource: str, select: str | None) -> frozenset[str]:
    """Tables a GET of /resource?select=... depends on; ALL when something is not known."""
    embeds = embedded_tables(resource, select)
    if embeds is None:
        return frozenset({ALL})
    if resource.startswith("rpc/"):
        declared = RPC.get(resource[4:])
        if not declared:
            return frozenset({ALL})
        # A function returning table rows may embed related tables too.
        return declared | embeds | ALWAYS
    if resource not in TABLES:
        return frozenset({ALL})  # a view: depend on every change
    return frozenset({resource}) | embeds | ALWAYS


def bucket(table: str, product: str) -> str:
    """The generation name of one product's rows of a SCOPED table."""
    return f"{table}@{zlib.crc32(product.encode()) % BUCKETS}"


def place_bucket(table: str, product: str, location: str) -> str:
    """The generation name of one product's rows at one location of a SCOPED table."""
    return f"{table}@{PLACE}{zlib.crc32(f'{product}/{location}'.encode()) % PLACE_BUCKETS}"


def is_bucket(rest: str) -> bool:
    """Whether the part of a SCOPED table's generation name after `@` names a product bucket or
    a place bucket (rather than ANY or NO_ORG)."""
    return rest.isdigit() or (rest.startswith(PLACE) and rest[1:].isdigit())


def one_id(values: list[str]) -> str | None:
    """The id a read is filtered to (product_id, location_id): the values of its query parameter
    must be exactly one `eq.<uuid>` (lower-cased, as the database reports ids); None otherwise."""
    if len(values) != 1 or not values[0].startswith("eq."):
        return None
    value = values[0][3:].lower()
    return value if UUID.match(value) else None


@memo_short
def read_order(
    resource: str, select: str | None, product: str | None = None, location: str | None = None
) -> tuple[str, ...]:
    """read_dependencies, sorted (the order an entry's generation vector lists them in). A read
    of a SCOPED table filtered to one product depends on that product's rows only (and to one
    product at one location, on that pair's), provided its select embeds no SCOPED table at
    any depth (junctions included): an embed such as locations(stock_levels(...)) reads other
    products' rows, which only the table moves."""
    names = read_dependencies(resource, select)
    if product is not None and resource in SCOPED and resource in names:
        embeds = embedded_tables(resource, select)
        if embeds is not None and not embeds & SCOPED:
            own = bucket(resource, product)
            if location is not None:
                own = place_bucket(resource, product, location)
            names = (names - {resource}) | {own}
    return tuple(sorted(names))


# Tables whose rows each belong to one organization (column organization_id, every select
# policy `organization_id = any(member organizations)`): their generations are per
# organization (proxy/tenants.py). Listed, not derived: a table added later stays global until
# someone checks that this holds. organizations is one too (its id is the organization, and a
# member reads only their own). memberships
# is one (a caller reads the memberships of its organizations); what every read depends on
# through RLS is the caller's own, per user (TENANCY).
ORG_TABLES = frozenset(
    {
        "organizations",
        "memberships",
        "locations",
        "categories",
        "suppliers",
        "products",
        "stock_levels",
        "lots",
        "stock_movements",
        "orders",
        "order_items",
        "idempotency_keys",
        "settings",
        "notifications",
        "audit_log",
        "stock_counts",
        "stock_count_lines",
        "supplier_products",
        "reorder_rules",
    }
)
ORG = "#"  # T#<organization id>: moved by writes of that organization's rows of T
# Moved by a write of a SCOPED table whose products are known but organizations not (readers
# of one organization add it), and by one whose organizations are known but products not
# (readers of one product add it; T#?<org> for one organization's such writes).
NO_ORG = "@?"
NO_PRODUCT = "#?"
KNOWN_ORGS = "+"  # suffix of a product bucket read by a caller whose organizations are known


def org_name(table: str, org: str) -> str:
    """The generation name of one organization's rows of an ORG_TABLES table."""
    return f"{table}{ORG}{org}"


Place = tuple[str, str]  # (product id, location id)


def user_name(user: str) -> str:
    """The generation name of one user's memberships (what that user's every read depends on)."""
    return TENANCY + user


def joined_name(user: str) -> str:
    """The generation name of one user's joins: moved by the writes of the user's memberships
    that may add one — an insert or update (the trigger's NOTIFY: proxy/cache/listener.py), an
    insert or PATCH through the proxy, a new organization, an invitation (joined_names,
    proxy/cache/answers.py) — and by those of the whole table, never by a removal or a role
    change through the proxy. proxy/cache/written.py watches it: a write whose caller joined an
    organization while it ran may have acted on that organization's rows."""
    return TENANCY + JOINED + user


# The member functions that may add a membership of the users they name.
JOINING_RPC = frozenset({"create_organization", "invite_member"})


def joined_names(resource: str, method: str | None, users: Iterable[str] | None) -> set[str]:
    """The join names a write to /resource moves: its users', when it is a write of memberships
    that may add one of theirs (an insert or PATCH of the table, a JOINING_RPC); none for any
    other write, and none when its users are not known (it moves the whole table, which moves
    every join name too)."""
    function = resource[4:] if resource.startswith("rpc/") else None
    if (
        users is None
        or method == "DELETE"
        or (function is not None and function not in JOINING_RPC)
    ):
        return set()
    if function is None and resource != "memberships":
        return set()
    return {joined_name(u) for u in users}


def changed_names(
    table: str,
    products: Iterable[str] | None,
    orgs: Iterable[str] | None = None,
    places: Iterable[Place] | None = None,
    users: Iterable[str] | None = None,
) -> set[str]:
    """The names a write of table moves. What it knows (its products, and the places of those
    products, SCOPED tables only; its organizations, ORG_TABLES only; the users whose rows of
    memberships or of a USER_TABLES table it changed) it names, plus the table's ANY (which
    every reader of the whole table adds); each dimension it does not know it reports to the
    readers scoped on that dimension (NO_ORG, NO_PRODUCT — the readers of a place too, when its
    products are known but not their places); knowing nothing, the table's own name, which
    every reader adds (Generations.vector) — users not known, the same: every user's reads
    move."""
    if table == ALL:
        return {EPOCH}  # it may have changed any table: every reader moves
    products = products if table in SCOPED else None
    orgs = orgs if table in ORG_TABLES else None
    if table in USER_TABLES:
        return {table} if users is None else {table + ANY, *(table + USER + u for u in users)}
    if table == "memberships" and orgs is not None:
        # users=(): none named, as no one joins an organization (a removal, a role change):
        # every user whose rows change is a member of orgs, and reads through memberships#o.
        if users is None:
            return {table}
        return {table + ANY, *(org_name(table, o) for o in orgs), *map(user_name, users)}
    if products is None and orgs is None:
        return {table}
    names = {table + ANY}
    if orgs is not None:
        names.update(org_name(table, o) for o in orgs)
    else:
        names.add(table + NO_ORG)
    if products is not None:
        names.update(bucket(table, p) for p in products)
        if places is not None:
            names.update(place_bucket(table, p, loc) for p, loc in places)
    if table in SCOPED and (products is None or places is None):
        names.add(table + NO_PRODUCT)
        if orgs is not None:  # for the readers of one product who know their organizations
            names.update(table + NO_PRODUCT + o for o in orgs)
        elif products is not None:
            # Products known, neither their places nor their organizations (rare: the trigger
            # and the proxy know organizations): a place's reader who knows its organizations
            # adds only theirs, so this moves every reader.
            names.add(table)
    return names


def write_names(
    resource: str,
    body: bytes | None,
    orgs: Iterable[str] | None = None,
    *,
    caller: str | None = None,
    users: Iterable[str] | None = None,
    method: str | None = None,
) -> set[str]:
    """The generation names a write to /resource with this body may move (write_targets, with
    stock scoped to the product an adjust_stock or transfer_stock names and to its locations,
    every table to orgs when the caller's organizations are known, and memberships to the users
    whose rows change: users for a table write, for a member function its user_id argument or
    its caller's)."""
    function = resource[4:] if resource.startswith("rpc/") else None
    args = None
    if function in ARGUMENT_RPC and body:
        args = _plain_arguments(body)
    products, places = stock_scope(resource, args)
    if function is not None:
        users = function_users(function, args, caller)
    targets = write_targets(resource, method)
    orgs = acting_orgs(resource, orgs)
    if resource in CASCADES and method in (None, "DELETE"):
        # Rows of the caller's organizations go (RLS), their memberships with them: their users
        # were members, whose reads depend on memberships#<org> (tenants.read_names). So are
        # the users whose per-user rows go (notification_reads of these organizations'
        # notifications), but for former members, whose rows reach their readers through the
        # trigger's NOTIFY, as another user's write does: none named (users=()), the
        # members' reads move through memberships#<org> (every user's with orgs unknown).
        # In none of its organizations: nothing.
        if orgs is not None and not orgs:
            return set()
        return target_names(targets - {"memberships"}, None, orgs, users=()) | changed_names(
            "memberships", None, orgs, None, ()
        )
    return target_names(targets, products, orgs, places, users) | joined_names(
        resource, method, users
    )


def function_users(function: str, args: object, caller: str | None) -> tuple[str, ...] | None:
    """The users whose memberships a call of function changes, when known for certain: its
    user_id argument's or its caller's (USER_ARGUMENT); none yet for one whose answer names
    them (ANSWER_NAMES_USER: bumped once read, proxy/cache/answers.py); None otherwise."""
    if function in ANSWER_NAMES_USER:
        return ()
    if function not in USER_ARGUMENT:
        return None
    key = USER_ARGUMENT[function]
    if key is None:
        user = _uuid(caller)
    else:
        user = _uuid(args.get(key)) if isinstance(args, dict) else None
    return None if user is None else (user,)


ARGUMENT_RPC = SCOPED_RPC | {name for name, key in USER_ARGUMENT.items() if key is not None}
ARGUMENT_KEYS = (
    b'"product_id"',
    b'"user_id"',
    *{f'"{name}"'.encode() for names in LOCATION_ARGUMENTS.values() for name in names},
)


def stock_scope(
    resource: str, args: object
) -> tuple[tuple[str, ...] | None, tuple[Place, ...] | None]:
    """(products, places) a call of a SCOPED_RPC with these arguments writes, each None when
    not known for certain: one product_id, and a location id for each of its location
    arguments (lower-cased uuids)."""
    if not resource.startswith("rpc/") or not isinstance(args, dict):
        return None, None
    locations = LOCATION_ARGUMENTS.get(resource[4:])
    product = _uuid(args.get("product_id"))
    if locations is None or product is None:
        return None, None
    places = tuple((product, loc) for loc in (_uuid(args.get(name)) for name in locations) if loc)
    return (product,), (places if len(places) == len(locations) else None)


def _uuid(value: object) -> str | None:
    if not isinstance(value, str) or not UUID.match(value.lower()):
        return None
    return value.lower()


def target_names(
    tables: Iterable[str],
    products: Iterable[str] | None,
    orgs: Iterable[str] | None,
    places: Iterable[Place] | None = None,
    users: Iterable[str] | None = None,
) -> set[str]:
    """changed_names of each table."""
    names: set[str] = set()
    for table in tables:
        names |= changed_names(table, products, orgs, places, users)
    return names


def _plain_arguments(body: bytes) -> dict[str, object] | None:
    # Each argument key at most once and no escapes (which could spell a key a second time), so
    # that no JSON parser can read another product, location or user than these.
    if b"\\" in body:
        return None
    if any(body.count(key) > 1 for key in ARGUMENT_KEYS):
        return None
    try:
        args = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return args if isinstance(args, dict) else None


def write_targets(resource: str, method: str | None = None) -> frozenset[str]:
    """Tables a write to /resource may change (over-approximated: that is safe); none for a
    read-only function. method: the write's (None: any, as a DELETE)."""
    if resource.startswith("rpc/"):
        if resource[4:] in READ_ONLY_RPC:
            return frozenset()
        return RPC.get(resource[4:], frozenset({ALL}))
    if resource in CASCADES and method in (None, "DELETE"):
        return TABLES  # deleting an organization or an order cascades (proxy: write_names)
    if resource in TABLES:
        return frozenset({resource}) | SIDE_EFFECTS
    return frozenset({ALL})
