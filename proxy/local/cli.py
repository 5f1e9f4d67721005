"""The `nimbus` command: serve, up, migrate, token, seed, refresh, user, import, export."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import click

from proxy.config import Overrides, load_settings
from proxy.local.csvcli import export
from proxy.local.datacli import refresh, seed
from proxy.local.importcli import import_
from proxy.local.usercli import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nimbus-proxy", prog_name="nimbus")
def main() -> None:
    """NIMBUS: a Supabase-native proxy with the inventory logic in PostgreSQL."""


@main.command()
@click.option("--host", help="Listen address (default: NIMBUS_HOST).")
@click.option("--port", type=int, help="Listen port (default: NIMBUS_PORT).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes sharing the port (default: NIMBUS_WORKERS, 1).",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the proxy against whatever NIMBUS_* points at."""
    overrides: Overrides = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings(**overrides)
    count = workers or settings.workers
    if count > 1:
        from proxy.edge.workers import supervise

        args = [
            arg
            for opt, val in (("--host", host), ("--port", port))
            if val
            for arg in (opt, str(val))
        ]
        sys.exit(supervise(count, args))
    from proxy.edge.server import serve as run

    run(settings)


@main.command()
def up() -> None:
    """Run the local stack: database, migrations, demo data, PostgREST and the proxy."""
    from proxy.local.datacli import seed_demo
    from proxy.local.localrun import up as run

    run(load_settings(), seed_demo=seed_demo)


@main.command()
@click.option("--database-url", help="PostgreSQL URL (default: NIMBUS_DATABASE_URL).")
@click.option("--create/--no-create", default=False, help="Create the database if missing.")
@click.option(
    "--sql-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Apply the sql/ tree at this path (default: the package's own).",
)
def migrate(database_url: str | None, create: bool, sql_dir: Path | None) -> None:
    """Apply sql/local (plain PostgreSQL only), new migrations, functions and policies."""
    from proxy.local.migrate import SQL_DIR, MigrationError, ensure_database
    from proxy.local.migrate import migrate as run

    url = database_url or load_settings().database_url
    try:
        if create and ensure_database(url):
            click.echo("created database")
        run(url, sql_dir=sql_dir or SQL_DIR, echo=click.echo)
    except MigrationError as exc:
        click.echo(f"nimbus migrate: {exc}", err=True)
        sys.exit(1)


@main.command()
@click.option("--sub", type=click.UUID, help="User id (a UUID; default: a new random user).")
@click.option(
    "--role",
    type=click.Choice(["anon", "authenticated", "service_role"]),
    default="authenticated",
    show_default=True,
)
@click.option("--org", help="Active organization id to put in the claims.")
@click.option("--ttl", type=click.IntRange(1, 10 * 365 * 86400), default=3600, show_default=True)
@click.option("--email", help="Email claim.")
def token(sub: uuid.UUID | None, role: str, org: str | None, ttl: int, email: str | None) -> None:
    """Mint a token signed with the configured secret (local use and tests)."""
    from proxy.gate.tokens import mint

    click.echo(
        mint(
            load_settings().secret,
            sub=str(sub) if sub else None,
            role=role,
            org=org,
            ttl=ttl,
            email=email,
        )
    )


@main.command()
@click.option("--session", "session_id", required=True, help="session_id (or jti) to revoke.")
@click.option(
    "--ttl",
    type=click.IntRange(1, 30 * 86400),
    default=3600,
    show_default=True,
    help="Seconds to keep it revoked (at least the token lifetime).",
)
def revoke(session_id: str, ttl: int) -> None:
    """Revoke a session on every proxy process at once (a leaked or stolen token)."""
    import asyncio

    from proxy.local.revoke import revoke_session

    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException("NIMBUS_REDIS_URL is empty: revocations need Redis")
    receivers = asyncio.run(revoke_session(settings, session_id, ttl))
    click.echo(f"revoked {session_id} for {ttl}s; {receivers} process(es) notified")


@main.command()
@click.option(
    "--sql-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Compare against the sql/ tree at this path (default: the package's own).",
)
def doctor(sql_dir: Path | None) -> None:
    """Check configuration, connectivity and versions; say exactly what to fix (exit 1 if any)."""
    from proxy.local.doctor import run
    from proxy.local.migrate import SQL_DIR

    sys.exit(run(sql_dir or SQL_DIR, echo=click.echo))


@main.command("supabase-migrations")
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if the directory is out of date."
)
@click.option(
    "--sql-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Generate from the sql/ tree at this path (default: the package's own).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (default: supabase/migrations next to the sql/ tree).",
)
def supabase_migrations(check: bool, sql_dir: Path | None, out: Path | None) -> None:
    """Write supabase/migrations (what `supabase db push` applies) from sql/."""
    from proxy.local.migrate import SQL_DIR
    from proxy.local.supabase_migrations import GenerationError, generate

    source = sql_dir or SQL_DIR
    try:
        current = generate(
            source, out or source.parent / "supabase" / "migrations", check=check, echo=click.echo
        )
    except GenerationError as exc:
        click.echo(f"nimbus supabase-migrations: {exc}", err=True)
        sys.exit(1)
    if check and not current:
        click.echo("run `nimbus supabase-migrations` and commit the result", err=True)
        sys.exit(1)


main.add_command(seed)
main.add_command(refresh)
main.add_command(user)
main.add_command(export)
main.add_command(import_)


if __name__ == "__main__":
    main()
