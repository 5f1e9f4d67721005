"""/api/v1/members: list with e-mails, invite by e-mail, change role, remove; the owner rules;
a removed member loses access at once; `nimbus user add`."""

from __future__ import annotations

import base64
import json
import uuid

import psycopg
from click.testing import CliRunner

from proxy.local.cli import main
from tests.api.conftest import error_code


def new_team(api, new_user) -> tuple[str, dict[str, object]]:
    """A fresh organization created through the API: (its id, {'owner': client})."""
    owner = new_user()
    client = api.client(api.token(owner))
    slug = "team-" + uuid.uuid4().hex[:10]
    r = client.post("/organizations", json={"name": "Team", "slug": slug})
    assert r.status_code == 201, r.text
    org = r.json()["data"]["id"]
    return org, {"owner": client, "owner_id": owner, "slug": slug}


def invite(client, org: str, email: str, role: str):
    """POST /members in org."""
    return client.post(
        "/members", json={"email": email, "role": role}, headers={"X-Organization-Id": org}
    )


def test_members_lifecycle(api, new_user) -> None:
    """Invite (creating the local user), list with e-mails, change role, remove."""
    org, team = new_team(api, new_user)
    owner = team["owner"]
    email = f"crew-{uuid.uuid4().hex[:8]}@example.test"
    r = invite(owner, org, email, "staff")
    assert r.status_code == 201, r.text
    member = r.json()["data"]
    assert (member["email"], member["role"], member["user_created"]) == (email, "staff", True)
    assert error_code(invite(owner, org, email, "viewer")) == "already_member"

    headers = {"X-Organization-Id": org}
    r = owner.get("/members", headers=headers)
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    assert {(m["email"], m["role"]) for m in rows} >= {(email, "staff")}
    assert {m["role"] for m in rows} == {"owner", "staff"}

    uid = member["user_id"]
    r = owner.patch(f"/members/{uid}", json={"role": "admin"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["role"] == "admin"
    assert {m["role"] for m in owner.get("/members", headers=headers).json()["data"]} == {
        "owner",
        "admin",
    }
    r = owner.patch(f"/members/{uid}", json={"role": "boss"}, headers=headers)
    assert r.status_code == 422

    r = owner.delete(f"/members/{uid}", headers=headers)
    assert r.status_code == 200, r.text
    assert [m["role"] for m in owner.get("/members", headers=headers).json()["data"]] == ["owner"]
    r = owner.delete(f"/members/{uid}", headers=headers)
    assert (r.status_code, error_code(r)) == (404, "member_not_found")


def test_owner_rules_through_the_api(api, new_user) -> None:
    """Admins may not make owners nor touch the owner; the last owner cannot leave (409)."""
    org, team = new_team(api, new_user)
    owner, owner_id = team["owner"], team["owner_id"]
    headers = {"X-Organization-Id": org}
    admin_id = invite(owner, org, f"adm-{uuid.uuid4().hex[:8]}@example.test", "admin").json()[
        "data"
    ]["user_id"]
    admin = api.client(api.token(admin_id))
    r = invite(admin, org, f"own-{uuid.uuid4().hex[:8]}@example.test", "owner")
    assert (r.status_code, error_code(r)) == (403, "owner_required")
    r = admin.patch(f"/members/{owner_id}", json={"role": "viewer"}, headers=headers)
    assert (r.status_code, error_code(r)) == (403, "owner_required")
    r = owner.delete(f"/members/{owner_id}", headers=headers)
    assert (r.status_code, error_code(r)) == (409, "last_owner")
    r = owner.patch(f"/members/{owner_id}", json={"role": "admin"}, headers=headers)
    assert (r.status_code, error_code(r)) == (409, "last_owner")
    # A second owner, then the first may step down.
    r = owner.patch(f"/members/{admin_id}", json={"role": "owner"}, headers=headers)
    assert r.status_code == 200, r.text
    r = owner.patch(f"/members/{owner_id}", json={"role": "admin"}, headers=headers)
    assert r.status_code == 200, r.text


def test_a_removed_member_loses_access_at_once(api, new_user) -> None:
    """A member's cached read is refused right after their removal; a member may leave."""
    org, team = new_team(api, new_user)
    owner = team["owner"]
    headers = {"X-Organization-Id": org}
    ids = [
        invite(owner, org, f"gone-{i}-{uuid.uuid4().hex[:8]}@example.test", "staff").json()["data"][
            "user_id"
        ]
        for i in range(2)
    ]
    removed, leaver = (api.client(api.token(uid)) for uid in ids)
    for client in (removed, leaver):
        assert client.get("/members", headers=headers).status_code == 200
        assert client.get("/members", headers=headers).status_code == 200  # cached
    assert owner.delete(f"/members/{ids[0]}", headers=headers).status_code == 200
    assert removed.get("/members", headers=headers).status_code in (403, 404)
    r = leaver.delete(f"/members/{ids[1]}", headers=headers)
    assert r.status_code == 200, r.text
    assert leaver.get("/members", headers=headers).status_code in (403, 404)
    assert [m["role"] for m in owner.get("/members", headers=headers).json()["data"]] == ["owner"]


def test_staff_cannot_manage_members(api, new_user) -> None:
    """Below admin: listing is allowed, inviting, changing and removing others are 403."""
    org, team = new_team(api, new_user)
    owner = team["owner"]
    headers = {"X-Organization-Id": org}
    staff_id = invite(owner, org, f"st-{uuid.uuid4().hex[:8]}@example.test", "staff").json()[
        "data"
    ]["user_id"]
    staff = api.client(api.token(staff_id))
    assert staff.get("/members", headers=headers).status_code == 200
    r = invite(staff, org, f"x-{uuid.uuid4().hex[:8]}@example.test", "viewer")
    assert (r.status_code, error_code(r)) == (403, "forbidden")
    r = staff.patch(f"/members/{team['owner_id']}", json={"role": "viewer"}, headers=headers)
    assert r.status_code == 403


def test_nimbus_user_add_prints_a_working_token(api, new_user, database_url, monkeypatch) -> None:
    """`nimbus user add EMAIL --org SLUG --role ROLE` creates the user and prints its token."""
    org, team = new_team(api, new_user)
    monkeypatch.setenv("NIMBUS_JWT_SECRET", api.secret)
    email = f"cli-{uuid.uuid4().hex[:8]}@example.test"
    args = ["user", "add", email, "--org", team["slug"], "--role", "manager"]
    result = CliRunner().invoke(main, [*args, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    with psycopg.connect(database_url) as conn:
        (role,) = conn.execute(
            "select role from public.memberships where user_id = %s and organization_id = %s",
            (claims["sub"], org),
        ).fetchone()
    assert role == "manager"
    r = api.client(token).get("/members", headers={"X-Organization-Id": org})
    assert r.status_code == 200, r.text
    assert email in {m["email"] for m in r.json()["data"]}
