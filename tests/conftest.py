"""Session fixtures: a fresh migrated database, PostgREST on a free port, Redis prefixes."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from proxy.local.localstack import start_postgrest
from proxy.local.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("NIMBUS_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Another tree's sql/ may be named (e.g. a snapshot of HEAD while sql/ is being edited).
SQL_DIR = Path(os.environ.get("NIMBUS_TEST_SQL_DIR", ROOT / "sql"))
TEST_SECRET = "test-secret-" + secrets.token_hex(24)


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh database for this test session, migrated, dropped at the end.

    Its teardown asserts the full inventory invariant (tests.support.invariant) over everything
    the session did, before dropping the database: a session-scoped check that runs only when a
    test created the database. (An autouse fixture cannot do it: it would either create a
    database for sessions that need none, or be torn down after this one has dropped it.)
    """
    name = f"nimbus_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    try:
        migrate(url, sql_dir=SQL_DIR, echo=lambda _line: None)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((ROOT / "tests" / "fixtures" / "passthrough.sql").read_text())
        yield url
        from tests.support.invariant import inventory_violations

        assert inventory_violations(url) == [], "inventory invariant broken after the session"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture
def db(database_url: str):
    """A superuser connection to the test database (autocommit off; rolled back after)."""
    with psycopg.connect(database_url) as conn:
        yield conn
        conn.rollback()


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    """The HS256 secret shared by the test PostgREST and the test proxy."""
    return TEST_SECRET


@pytest.fixture(scope="session")
def postgrest(database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory):
    """PostgREST 12 from .local/, on a free port, stopped by PID at the end of the session."""
    state = tmp_path_factory.mktemp("postgrest")
    (state / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
    pgrst = start_postgrest(database_url=database_url, secret=jwt_secret, state_dir=state)
    yield pgrst
    pgrst.stop()


@pytest.fixture
def new_user(database_url: str):
    """A factory that inserts a row into auth.users and returns its id."""

    def make(email: str | None = None) -> str:
        uid = str(uuid.uuid4())
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "insert into auth.users (id, email) values (%s, %s)",
                (uid, email or f"{uid}@example.test"),
            )
        return uid

    return make


@pytest.fixture(scope="session")
def relay(postgrest):
    """A counting TCP relay in front of PostgREST: `relay.requests` is what reached upstream."""
    from tests.support.relay import CountingRelay

    port = int(postgrest.url.rsplit(":", 1)[1])
    counter = CountingRelay("127.0.0.1", port).start()
    yield counter
    counter.stop()


@pytest.fixture(scope="session")
def upstream_env(relay, postgrest, database_url: str, jwt_secret: str) -> dict[str, str]:
    """The settings a test proxy needs for this session's stack: PostgREST through the counting
    relay (its admin port directly), the database, the JWT secret."""
    return {
        "NIMBUS_POSTGREST_URL": f"http://127.0.0.1:{relay.port}",
        "NIMBUS_POSTGREST_ADMIN_URL": postgrest.admin_url,
        "NIMBUS_DATABASE_URL": database_url,
        "NIMBUS_JWT_SECRET": jwt_secret,
        # The analytics refresher has its own tests (test_refresher.py); elsewhere a refresh
        # running between two reads would move the analytics generation under a cache test.
        "NIMBUS_ANALYTICS_REFRESH_S": "0",
    }


@pytest.fixture(scope="session")
def proxy_url(upstream_env, tmp_path_factory):
    """`nimbus serve` as a real process on a free port, upstream through the counting relay."""
    from tests.support.process import start_proxy

    proc, url = start_proxy(
        tmp_path_factory.mktemp("proxy"), **upstream_env, NIMBUS_MAX_BODY_BYTES="65536"
    )
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def anon_key(jwt_secret: str) -> str:
    """An anon key like Supabase's (role anon, no sub, no aud)."""
    from proxy.gate.tokens import mint

    return mint(jwt_secret, role="anon", ttl=86400)


@pytest.fixture
def token_for(jwt_secret: str):
    """Mint a user token: token_for(sub, **claims)."""
    from proxy.gate.tokens import mint

    def make(sub: str, **kw) -> str:
        return mint(jwt_secret, sub=sub, **kw)

    return make


@pytest.fixture
def auth(new_user, token_for) -> dict[str, str]:
    """A fresh user's Authorization header."""
    return {"Authorization": f"Bearer {token_for(new_user())}"}
