"""Which organization a request acts on (header, claim, the only membership, or a clear 400),
and how fresh organization-wide analytics answers stay."""

from __future__ import annotations

import psycopg

from tests.api.conftest import error_code


def test_several_memberships_need_a_choice(api, world, database_url) -> None:
    """A member of two organizations with no header and no claim gets 400
    organization_required; naming one (header or claim) answers for that one."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        uid = conn.execute(
            "insert into auth.users (email) values ('two-orgs@example.test') returning id::text"
        ).fetchone()[0]
        for org in (world.a.id, world.b.id):
            conn.execute(
                "insert into public.memberships (user_id, organization_id, role)"
                " values (%s, %s, 'viewer')",
                (uid, org),
            )
    bare = api.client(api.token(uid)).get("/analytics/dashboard")
    assert bare.status_code == 400
    assert error_code(bare) == "organization_required"
    by_header = api.client(api.token(uid), **{"X-Organization-Id": world.b.id})
    assert by_header.get("/analytics/dashboard").json()["data"]["organization_id"] == world.b.id
    by_claim = api.client(api.token(uid, org=world.a.id)).get("/analytics/dashboard")
    assert by_claim.json()["data"]["organization_id"] == world.a.id


def test_no_membership_is_a_clear_400(api, world) -> None:
    """A user of no organization gets 400 no_organization from an organization-scoped call."""
    resp = api.client(api.token(world.outsider)).get("/analytics/dashboard")
    assert resp.status_code == 400
    assert error_code(resp) == "no_organization"


def test_refreshing_the_views_invalidates_cached_analytics(api, database_url) -> None:
    """A refresh of the materialized views (nimbus refresh, pg_cron) ends cached analytics
    answers: they depend on the views, which no table write announces."""
    from tests.support.wait import wait_until

    client = api.as_("owner")
    assert client.get("/analytics/dashboard").status_code == 200
    assert client.get("/analytics/dashboard").headers["x-cache"] == "HIT"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("select private.refresh_analytics_views(false)")
    wait_until(
        lambda: client.get("/analytics/dashboard").headers["x-cache"] != "HIT",
        timeout=1,
        what="the cached dashboard to be dropped",
    )
