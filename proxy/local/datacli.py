"""`nimbus seed` and `nimbus refresh`: data-set generation and analytics refresh."""

from __future__ import annotations

import time

import click

from proxy.config import load_settings
from proxy.local.rows import one

DATABASE_URL_HELP = "PostgreSQL URL (default: NIMBUS_DATABASE_URL)."


@click.command()
@click.option("--scale", type=click.Choice(["demo", "large"]), default="demo", show_default=True)
@click.option(
    "--seed", "seed_value", type=int, default=1, show_default=True, help="Same seed, same data."
)
@click.option("--database-url", help=DATABASE_URL_HELP)
def seed(scale: str, seed_value: int, database_url: str | None) -> None:
    """Load a deterministic data set: several organizations with two years of history (large)."""
    from proxy.local.seed_sql import STEPS
    from proxy.local.seeding import SCALES, seed_scale

    url = database_url or load_settings().database_url
    total = len(SCALES[scale]) * len(STEPS) + 1
    started = time.perf_counter()
    with click.progressbar(length=total, label=f"seeding {scale}", show_pos=True) as bar:
        loaded = seed_scale(url, scale, seed=seed_value, step=lambda _name: bar.update(1))
    skipped = len(SCALES[scale]) - len(loaded)
    click.echo(
        f"loaded {len(loaded)} organization(s), skipped {skipped} already present,"
        f" in {time.perf_counter() - started:.1f}s"
    )


@click.command()
@click.option("--database-url", help=DATABASE_URL_HELP)
@click.option(
    "--concurrent/--blocking",
    default=True,
    show_default=True,
    help="Refresh concurrently (readers never wait) or faster with a lock.",
)
def refresh(database_url: str | None, concurrent: bool) -> None:
    """Refresh the analytics materialized views."""
    import psycopg

    url = database_url or load_settings().database_url
    with psycopg.connect(url, autocommit=True) as conn:
        (views,) = one(
            conn.execute("select private.refresh_analytics_views(%s)", (concurrent,)).fetchone()
        )
    for view in views:
        click.echo(f"{view['view']}: {view['duration_ms']} ms")


def seed_demo(database_url: str) -> dict[str, str]:
    """Make sure the demo user, its organization (as owner) and the demo data exist."""
    from proxy.local.seeding import seed_demo_org

    return seed_demo_org(database_url)
