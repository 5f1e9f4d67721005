"""Team management in SQL: members(), invite_member, change_member_role, remove_member and the
owner rules (owners alone make or demote owners, the last owner stays, admins manage the rest,
anyone may leave)."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.support.db import as_role
from tests.support.domain import World, claims, error_of, new_user


def run(conn: psycopg.Connection, uid: str, query: str, params=()):
    """The rows of query run as uid (authenticated) in a savepoint, or (SQLSTATE, hint)."""
    try:
        with conn.transaction():
            conn.execute(
                "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims(uid)),)
            )
            conn.execute("set local role authenticated")
            return conn.execute(query, params).fetchall()
    except psycopg.Error as exc:
        return error_of(exc)


def role_of(conn: psycopg.Connection, org: str, uid: str) -> str | None:
    """The role of uid in org, read as the superuser."""
    row = conn.execute(
        "select role from public.memberships where organization_id = %s and user_id = %s",
        (org, uid),
    ).fetchone()
    return row[0] if row else None


@pytest.fixture
def team(conn: psycopg.Connection, world: World) -> dict[str, str]:
    """A fresh organization (rolled back with the test) with one user per role."""
    org = str(
        conn.execute(
            "insert into public.organizations (name, slug) values ('Team', 'team-sql') returning id"
        ).fetchone()[0]
    )
    users = {"org": org}
    for role in ("owner", "admin", "manager", "staff", "viewer"):
        uid = new_user(conn)
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role) values (%s, %s, %s)",
            (uid, org, role),
        )
        users[role] = uid
    return users


def test_members_lists_the_organization_with_emails(conn, team) -> None:
    """Any member lists every member with the e-mail from auth.users, highest role first."""
    rows = run(
        conn,
        team["viewer"],
        "select user_id::text, email, role from public.members(%s)",
        (team["org"],),
    )
    assert [r[2] for r in rows] == ["owner", "admin", "manager", "staff", "viewer"]
    assert all(r[1] == f"{r[0]}@example.test" for r in rows)


def test_members_of_another_organization_is_forbidden(conn, team, world: World) -> None:
    """A non-member asking for an organization's members gets PT403."""
    got = run(conn, world.a.users["owner"], "select * from public.members(%s)", (team["org"],))
    assert got == ("PT403", "forbidden")


def test_admin_manages_lower_roles_but_not_owners(conn, team) -> None:
    """An admin changes a viewer to manager, may not make or demote an owner."""
    org, admin = team["org"], team["admin"]
    change = "select public.change_member_role(%s, %s, %s)"
    assert run(conn, admin, change, (team["viewer"], "manager", org))[0][0]["role"] == "manager"
    assert run(conn, admin, change, (team["staff"], "owner", org)) == ("PT403", "owner_required")
    assert run(conn, admin, change, (team["owner"], "viewer", org)) == ("PT403", "owner_required")
    assert run(conn, team["manager"], change, (team["staff"], "viewer", org)) == (
        "PT403",
        "forbidden",
    )


def test_owner_makes_owners_and_the_last_owner_stays(conn, team) -> None:
    """The only owner cannot demote or remove themself (PT409); after making a second owner, it
    can."""
    org, owner = team["org"], team["owner"]
    change = "select public.change_member_role(%s, %s, %s)"
    remove = "select public.remove_member(%s, %s)"
    assert run(conn, owner, change, (owner, "admin", org)) == ("PT409", "last_owner")
    assert run(conn, owner, remove, (owner, org)) == ("PT409", "last_owner")
    assert run(conn, owner, change, (team["admin"], "owner", org))[0][0]["role"] == "owner"
    assert run(conn, owner, change, (owner, "admin", org))[0][0]["role"] == "admin"
    assert role_of(conn, org, owner) == "admin"


def test_removal_rules(conn, team) -> None:
    """Admins remove lower roles, not owners; anyone removes themself; strangers get 404."""
    org = team["org"]
    remove = "select public.remove_member(%s, %s)"
    assert run(conn, team["admin"], remove, (team["owner"], org)) == ("PT403", "owner_required")
    assert run(conn, team["staff"], remove, (team["viewer"], org)) == ("PT403", "forbidden")
    assert run(conn, team["staff"], remove, (team["staff"], org))[0][0]["removed"] is True
    assert role_of(conn, org, team["staff"]) is None
    assert run(conn, team["admin"], remove, (team["viewer"], org))[0][0]["role"] == "viewer"
    assert run(conn, team["admin"], remove, (team["viewer"], org)) == (
        "PT404",
        "member_not_found",
    )


def test_invite_creates_the_local_user_once(conn, team) -> None:
    """Inviting an unknown address creates it in the auth stand-in; again is PT409."""
    org, admin = team["org"], team["admin"]
    invite = "select public.invite_member(%s, %s, %s)"
    (got,) = run(conn, admin, invite, ("New.Person@Example.test", "staff", org))[0]
    assert got["email"] == "new.person@example.test"
    assert got["user_created"] is True
    assert role_of(conn, org, got["user_id"]) == "staff"
    assert run(conn, admin, invite, ("new.person@example.test", "viewer", org)) == (
        "PT409",
        "already_member",
    )


def test_invite_rules(conn, team, world: World) -> None:
    """Only admins invite, only owners invite owners, roles and addresses are checked; an
    existing user is added without being created."""
    org = team["org"]
    invite = "select public.invite_member(%s, %s, %s)"
    assert run(conn, team["manager"], invite, ("x@example.test", "staff", org)) == (
        "PT403",
        "forbidden",
    )
    assert run(conn, team["admin"], invite, ("x@example.test", "owner", org)) == (
        "PT403",
        "owner_required",
    )
    assert run(conn, team["admin"], invite, ("x@example.test", "boss", org)) == (
        "PT400",
        "invalid_role",
    )
    assert run(conn, team["admin"], invite, ("not-an-address", "staff", org)) == (
        "PT400",
        "invalid_email",
    )
    outsider = world.outsider
    email = f"{outsider}@example.test"
    conn.execute(
        "update auth.users set email = %s where id = %s and email is null", (email, outsider)
    )
    (address,) = conn.execute("select email from auth.users where id = %s", (outsider,)).fetchone()
    (got,) = run(conn, team["owner"], invite, (address, "owner", org))[0]
    assert (got["user_id"], got["user_created"], got["role"]) == (outsider, False, "owner")


def test_invite_with_supabase_auth_is_not_done_yet(conn, team) -> None:
    """Where auth.users is Supabase Auth's (it has encrypted_password), an unknown address is
    PT501 invite_unavailable and nothing is created; a known one is still added."""
    conn.execute("alter table auth.users add column encrypted_password text")
    invite = "select public.invite_member(%s, %s, %s)"
    got = run(conn, team["admin"], invite, ("hosted@example.test", "staff", team["org"]))
    assert got == ("PT501", "invite_unavailable")
    assert conn.execute(
        "select count(*) from auth.users where email = 'hosted@example.test'"
    ).fetchone() == (0,)


def test_role_is_validated(conn, team) -> None:
    """An unknown role is PT400 invalid_role."""
    got = run(
        conn,
        team["owner"],
        "select public.change_member_role(%s, %s, %s)",
        (team["staff"], "boss", team["org"]),
    )
    assert got == ("PT400", "invalid_role")


def test_as_role_helper_agrees(conn, team) -> None:
    """The same call through tests.support.db.as_role (as PostgREST sets claims) works."""
    with as_role(conn, "authenticated", claims(team["viewer"])):
        rows = conn.execute("select count(*) from public.members(%s)", (team["org"],)).fetchone()
    assert rows == (5,)


@pytest.mark.parametrize(
    "statement",
    [
        "delete from public.memberships where user_id = %(me)s and organization_id = %(org)s"
        " returning role",
        "update public.memberships set role = 'admin'"
        " where user_id = %(me)s and organization_id = %(org)s returning role",
    ],
)
def test_last_owner_stays_even_through_direct_writes(conn, team, statement: str) -> None:
    """What /rest/v1/memberships (RLS allowing it) would do: the only owner leaving or
    demoting itself is PT409 last_owner, the row unchanged."""
    args = {"me": team["owner"], "org": team["org"]}
    assert run(conn, team["owner"], statement, args) == ("PT409", "last_owner")
    assert role_of(conn, team["org"], team["owner"]) == "owner"


def test_an_owner_may_leave_while_another_stays(conn, team) -> None:
    """With a second owner, the first deletes its own membership directly; deleting the whole
    organization (its memberships cascade) is never refused."""
    conn.execute(
        "update public.memberships set role = 'owner' where user_id = %s and organization_id = %s",
        (team["admin"], team["org"]),
    )
    args = {"me": team["owner"], "org": team["org"]}
    delete = (
        "delete from public.memberships where user_id = %(me)s and organization_id = %(org)s"
        " returning role"
    )
    assert run(conn, team["owner"], delete, args) == [("owner",)]
    assert role_of(conn, team["org"], team["owner"]) is None
    gone = run(
        conn,
        team["admin"],
        "delete from public.organizations where id = %s returning slug",
        (team["org"],),
    )
    assert gone == [("team-sql",)]
