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
