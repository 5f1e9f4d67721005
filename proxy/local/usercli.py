"""`nimbus user add`: a local user in an organization, and a token to act as them."""

from __future__ import annotations

import click

from proxy.config import load_settings
from proxy.local.rows import one

ROLES = ("owner", "admin", "manager", "staff", "viewer")
# Supabase Auth's users table has encrypted_password; the local stand-in (sql/local) does not.
HOSTED_AUTH = (
    "select exists (select from pg_attribute where attrelid = 'auth.users'::regclass"
    " and attname = 'encrypted_password' and not attisdropped)"
)


def add_user(database_url: str, email: str, slug: str, role: str) -> tuple[str, str, bool]:
    """Put the user with `email` (created in the auth stand-in if missing) in the organization
    `slug` with `role`: (user id, organization id, whether the user was created)."""
    import psycopg

    address = email.strip().lower()
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "select id::text from public.organizations where slug = %s", (slug,)
        ).fetchone()
        if found is None:
            raise click.ClickException(f"no organization with slug {slug!r}")
        (org,) = found
        row = conn.execute(
            "select id::text from auth.users where lower(email) = %s", (address,)
        ).fetchone()
        created = row is None
        if created:
            (hosted,) = one(conn.execute(HOSTED_AUTH).fetchone())
            if hosted:
                raise click.ClickException(
                    "auth.users is Supabase Auth's: invite the user there (not done by nimbus)"
                )
            row = conn.execute(
                "insert into auth.users (email) values (%s) returning id::text", (address,)
            ).fetchone()
        (uid,) = one(row)
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role) values (%s, %s, %s)"
            " on conflict (user_id, organization_id) do update set role = excluded.role",
            (uid, org, role),
        )
    return uid, org, created


@click.group()
def user() -> None:
    """Local users (plain PostgreSQL with the auth stand-in)."""


@user.command("add")
@click.argument("email")
@click.option("--org", "slug", required=True, help="Organization slug.")
@click.option("--role", type=click.Choice(ROLES), default="staff", show_default=True)
@click.option("--ttl", type=click.IntRange(1, 10 * 365 * 86400), default=3600, show_default=True)
@click.option("--database-url", help="PostgreSQL URL (default: NIMBUS_DATABASE_URL).")
def add(email: str, slug: str, role: str, ttl: int, database_url: str | None) -> None:
    """Add EMAIL to the organization with ROLE (creating the user if needed); print a token."""
    from proxy.gate.tokens import mint

    settings = load_settings()
    uid, org, created = add_user(database_url or settings.database_url, email, slug, role)
    click.echo(f"{'created' if created else 'found'} user {uid}; {role} of {slug}", err=True)
    click.echo(mint(settings.secret, sub=uid, org=org, ttl=ttl, email=email.strip().lower()))
