"""public.custom_access_token_hook: the Supabase Auth hook named in supabase/config.toml."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import SQL_DIR

HOOK = SQL_DIR / "functions" / "hooks" / "custom_access_token_hook.sql"


def _user(conn: psycopg.Connection, *orgs: str) -> str:
    uid = str(uuid.uuid4())
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, f"{uid}@hook.test"))
    for org in orgs:
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role)"
            " values (%s, %s, 'staff')",
            (uid, org),
        )
    return uid


def _org(conn: psycopg.Connection) -> str:
    slug = f"hook-{uuid.uuid4().hex[:12]}"
    return str(
        conn.execute(
            "insert into public.organizations (name, slug) values (%s, %s) returning id",
            (slug, slug),
        ).fetchone()[0]
    )


def _hook(conn: psycopg.Connection, uid: str, **claims) -> dict:
    event = {
        "user_id": uid,
        "authentication_method": "password",
        "claims": {"sub": uid, "role": "authenticated", "aud": "authenticated", **claims},
    }
    return conn.execute("select public.custom_access_token_hook(%s)", (Jsonb(event),)).fetchone()[0]


def test_only_membership_becomes_the_claim(conn) -> None:
    """A user in one organization gets it as organization_id; the rest of the event is kept."""
    org = _org(conn)
    uid = _user(conn, org)
    out = _hook(conn, uid, email="x@hook.test")
    assert out["claims"]["organization_id"] == org
    assert out["claims"]["email"] == "x@hook.test"
    assert out["claims"]["sub"] == uid
    assert out["authentication_method"] == "password"


def test_app_metadata_choice_wins_while_a_member(conn) -> None:
    """With several memberships the one chosen in app_metadata is used, if still a member."""
    a, b, other = _org(conn), _org(conn), _org(conn)
    uid = _user(conn, a, b)
    chosen = _hook(conn, uid, app_metadata={"organization_id": b})
    assert chosen["claims"]["organization_id"] == b
    stale = _hook(conn, uid, app_metadata={"organization_id": other}, organization_id=other)
    assert "organization_id" not in stale["claims"]
    assert "organization_id" not in _hook(conn, uid)["claims"]


def test_no_membership_no_claim(conn) -> None:
    """A user in no organization gets no organization_id (a forged one is removed)."""
    uid = _user(conn)
    assert "organization_id" not in _hook(conn, uid, organization_id=str(uuid.uuid4()))["claims"]


def test_only_supabase_auth_admin_may_run_it(conn) -> None:
    """anon and authenticated cannot call it; supabase_auth_admin can once the file is applied
    where that role exists (hosted Supabase)."""
    for role in ("anon", "authenticated"):
        assert not conn.execute(
            "select has_function_privilege(%s, 'public.custom_access_token_hook(jsonb)',"
            " 'execute')",
            (role,),
        ).fetchone()[0]
    if not conn.execute("select 1 from pg_roles where rolname = 'supabase_auth_admin'").fetchone():
        conn.execute("create role supabase_auth_admin nologin noinherit")  # rolled back after
    conn.execute(HOOK.read_text())
    org = _org(conn)
    uid = _user(conn, org)
    conn.execute("set local role supabase_auth_admin")
    assert _hook(conn, uid)["claims"]["organization_id"] == org
    conn.execute("reset role")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("set local role authenticated")
        _hook(conn, uid)
