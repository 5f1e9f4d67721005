"""`nimbus seed` and `nimbus refresh`: data-set generation and analytics refresh."""

from __future__ import annotations

import click


@click.command()
def seed() -> None:
    """Load a deterministic demo data set (not written yet)."""
    raise click.ClickException("seed is not implemented yet")


@click.command()
def refresh() -> None:
    """Refresh the analytics materialized views (not written yet)."""
    raise click.ClickException("refresh is not implemented yet")


def seed_demo(database_url: str) -> dict:
    """Make sure the demo user exists; returns its id and email (demo data comes with seed)."""
    import psycopg

    email = "demo@nimbus.local"
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into auth.users (email) values (%s) on conflict (email)"
            " do update set email = excluded.email returning id::text",
            (email,),
        ).fetchone()
    return {"user_id": row[0], "email": email}
