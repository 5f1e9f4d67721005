"""`nimbus doctor`: one line per check (configuration, PostgreSQL, migrations, PostgREST, Redis,
JWT keys), OK or FAIL with exactly what to fix. Connection strings are shown without passwords."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from pydantic import ValidationError

from proxy.config import Settings
from proxy.local.doctor_services import Check, check_jwt, check_postgrest, check_redis
from proxy.local.migrate import SQL_DIR, checksum, recorded
from proxy.local.rows import one

TIMEOUT_S = 3
CLI_VERSIONS = "select version from supabase_migrations.schema_migrations"
MIN_POSTGRES = 150000  # PostgreSQL 15


def where(url: str) -> str:
    """host:port/dbname of a PostgreSQL URL, never its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable NIMBUS_DATABASE_URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def check_settings() -> tuple[Check, Settings | None]:
    """Settings load from NIMBUS_* and .env."""
    try:
        settings = Settings()
    except ValidationError as exc:
        bad = ", ".join("NIMBUS_" + "_".join(map(str, e["loc"])).upper() for e in exc.errors())
        first = exc.errors()[0]["msg"]
        return Check("config", False, f"invalid {bad}: {first}", f"correct {bad}"), None
    return Check("config", True, "settings load (NIMBUS_* and .env)"), settings


def check_database(settings: Settings, sql_dir: Path) -> Iterator[Check]:
    """PostgreSQL reachable and recent enough; migrations applied, unchanged, none pending."""
    target = where(settings.database_url)
    try:
        conn = psycopg.connect(settings.database_url, connect_timeout=TIMEOUT_S, autocommit=True)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        fix = (
            "run `nimbus migrate --create` to create it, or set NIMBUS_DATABASE_URL"
            if "does not exist" in reason
            else "start PostgreSQL (`nimbus up` runs a local one) or set NIMBUS_DATABASE_URL"
        )
        yield Check("postgresql", False, f"cannot connect to {target}: {reason}", fix)
        yield Check("migrations", False, "not checked (no database)", "fix postgresql first")
        return
    with conn:
        number = int(one(conn.execute("show server_version_num").fetchone())[0])
        version = one(conn.execute("show server_version").fetchone())[0].split()[0]
        yield Check(
            "postgresql",
            number >= MIN_POSTGRES,
            f"PostgreSQL {version} at {target}",
            "NIMBUS needs PostgreSQL 15 or later",
        )
        ledger = one(conn.execute("select to_regclass('nimbus_migrations.applied')").fetchone())[0]
        done = (
            recorded(dict(conn.execute("select filename, checksum from nimbus_migrations.applied")))
            if ledger
            else {}
        )
        pushed = one(
            conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone()
        )[0]
        cli_versions = (
            {
                v
                for (v,) in conn.execute(
                    "select version from supabase_migrations.schema_migrations"
                )
            }
            if pushed and not ledger
            else None
        )
    files = sorted((sql_dir / "migrations").glob("*.sql"))
    if cli_versions is not None and files:
        yield cli_check(files, cli_versions, sql_dir.parent / "supabase" / "migrations")
        return
    pending = [p.name for p in files if p.name not in done]
    changed = [p.name for p in files if p.name in done and done[p.name] != checksum(p)]
    if not files:
        yield Check(
            "migrations",
            False,
            f"no migrations found under {sql_dir / 'migrations'}",
            "install a nimbus-proxy wheel (it ships sql/), or pass --sql-dir <checkout>/sql",
        )
    elif changed:
        yield Check(
            "migrations",
            False,
            f"changed after being applied: {', '.join(changed)}",
            "restore those files and add a new migration for the change",
        )
    elif pending:
        shown = ", ".join(pending[:3]) + (" ..." if len(pending) > 3 else "")
        yield Check(
            "migrations",
            False,
            f"{len(pending)} of {len(files)} pending: {shown}",
            "run `nimbus migrate` (on Supabase: with the direct connection string)",
        )
    else:
        yield Check("migrations", True, f"all {len(files)} applied")


def cli_check(files: list[Path], versions: set[str], generated: Path) -> Check:
    """Migrations of a database deployed with `supabase db push`: every migration's version, and
    (from a checkout) every generated file's version, the repeatables included, is recorded in
    the CLI's history. Checksums are not kept there, so edited files cannot be told apart."""
    wanted = [p.name for p in files]
    if generated.is_dir():
        wanted += [p.name for p in sorted(generated.glob("*.sql")) if p.name not in wanted]
    pending = [name for name in wanted if name.split("_", 1)[0] not in versions]
    if pending:
        shown = ", ".join(pending[:3]) + (" ..." if len(pending) > 3 else "")
        return Check(
            "migrations",
            False,
            f"{len(pending)} of {len(wanted)} not pushed by the Supabase CLI: {shown}",
            "run `supabase db push` (this database's history is the CLI's, not nimbus migrate's)",
        )
    return Check("migrations", True, f"all {len(wanted)} applied (by the Supabase CLI)")


def run(sql_dir: Path = SQL_DIR, echo: Callable[[str], None] = print) -> int:
    """Run every check, print one line each; 0 when all are OK, 1 otherwise."""
    first, settings = check_settings()
    checks = [first]
    echo(first.line())
    if settings is not None:
        steps: list[Callable[[], Iterator[Check]]] = [
            lambda: check_database(settings, sql_dir),
            lambda: iter([check_postgrest(settings)]),
            lambda: iter([check_redis(settings.redis_url, "redis")]),
            lambda: iter([check_jwt(settings)]),
        ]
        if settings.cache_redis_url:
            steps.insert(3, lambda: iter([check_redis(settings.cache_redis_url, "cache_redis")]))
        for step in steps:
            for check in step():
                checks.append(check)
                echo(check.line())
    failed = [c.name for c in checks if not c.ok]
    echo(
        f"{len(checks) - len(failed)} OK, {len(failed)} failed"
        + (": " + ", ".join(failed) if failed else "")
    )
    return 1 if failed else 0
