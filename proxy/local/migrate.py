"""`nimbus migrate`: apply sql/local (plain PostgreSQL only), migrations once, then functions,
triggers and policies (re-applied every run), then ask PostgREST to reload its schema cache."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.errors import DeadlockDetected

from proxy.local.rows import one


def _sql_dir() -> Path:
    """The sql/ tree: inside the installed package (the build puts it there, see setup.py), or
    the checkout's sql/ next to the package (a checkout, an editable install)."""
    packaged = resources.files("proxy") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "sql"


SQL_DIR = _sql_dir()
LOCK_KEY = 0x4E494D42  # "NIMB": one migrate at a time per database
DEADLOCK_ATTEMPTS = 5
REPEATABLE = ("functions", "triggers", "policies")
# Migrations renamed after databases had applied them: current name -> the name recorded then.
# The ledger row is renamed on the next run, so the file is not applied twice. Version
# 20261126000400 was used twice; the Supabase CLI keys its history by version.
RENAMED = {"20261126000450_lot_expiry_notices.sql": "20261126000400_lot_expiry_notices.sql"}


class MigrationError(Exception):
    """A migration cannot be applied; the message names the file."""


@dataclass
class Report:
    """What one run applied, for printing and for tests."""

    local: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    skipped: int = 0
    repeatable: dict[str, int] = field(default_factory=dict)


def checksum(path: Path) -> str:
    """SHA-256 of a file's bytes: an applied migration must never change."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.sql"), key=lambda p: p.relative_to(directory).as_posix())


def _needs_local(conn: psycopg.Connection) -> bool:
    """True on plain PostgreSQL: Supabase already has auth.uid() and the API roles."""
    row = conn.execute(
        "select to_regprocedure('auth.uid()') is not null"
        " and (select count(*) from pg_roles where rolname in"
        " ('anon', 'authenticated', 'service_role', 'authenticator')) = 4"
    ).fetchone()
    return not one(row)[0]


def _ensure_ledger(conn: psycopg.Connection) -> dict[str, str]:
    conn.execute("create schema if not exists nimbus_migrations")
    conn.execute(
        "create table if not exists nimbus_migrations.applied ("
        " filename text primary key, checksum text not null,"
        " applied_at timestamptz not null default now())"
    )
    conn.execute(
        "comment on table nimbus_migrations.applied is"
        " 'Migrations applied by nimbus migrate, with the checksum of each file.'"
    )
    for current, former in RENAMED.items():
        conn.execute(
            "update nimbus_migrations.applied set filename = %s where filename = %s and not exists"
            " (select from nimbus_migrations.applied where filename = %s)",
            (current, former, current),
        )
    rows = conn.execute("select filename, checksum from nimbus_migrations.applied").fetchall()
    return dict(rows)


def recorded(done: dict[str, str]) -> dict[str, str]:
    """The ledger's rows keyed by current file names (a ledger not yet renamed: `nimbus doctor`)."""
    rows = dict(done)
    for current, former in RENAMED.items():
        if former in rows and current not in rows:
            rows[current] = rows.pop(former)
    return rows


def _run_file(conn: psycopg.Connection, path: Path) -> None:
    try:
        conn.execute(path.read_text())
    except psycopg.Error as exc:
        raise MigrationError(f"{path.relative_to(path.parents[1])}: {exc}".strip()) from exc


def _repeatables(
    conn: psycopg.Connection, sql_dir: Path, report: Report, echo: Callable[[str], None]
) -> None:
    """Functions, triggers and policies, re-applied in one transaction. It takes a lock on every
    table with a trigger or policy, one after another, so a reader of two of them that runs
    meanwhile (an analytics refresh, a report) can deadlock with it; PostgreSQL then aborts one
    side, here usually this one, and the whole transaction is simply run again."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute("set local check_function_bodies = off")
                for kind in REPEATABLE:
                    files = _files(sql_dir / kind)
                    for path in files:
                        _run_file(conn, path)
                    report.repeatable[kind] = len(files)
            return
        except MigrationError as exc:
            if attempt == DEADLOCK_ATTEMPTS or not isinstance(exc.__cause__, DeadlockDetected):
                raise
            echo(f"deadlock with another session ({exc}); running the repeatables again")
            time.sleep(0.2 * attempt)


def migrate(
    database_url: str, sql_dir: Path = SQL_DIR, echo: Callable[[str], None] = print
) -> Report:
    """Bring the database at database_url up to date; idempotent."""
    if not _files(sql_dir / "migrations"):
        # An installed package without its SQL, or a wrong --sql-dir: doing nothing would look
        # like success ("0 applied") exactly where a schema was expected.
        raise MigrationError(f"no migrations found under {sql_dir / 'migrations'}")
    report = Report()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            if _needs_local(conn):
                for path in _files(sql_dir / "local"):
                    with conn.transaction():
                        _run_file(conn, path)
                    report.local.append(path.name)
                    echo(f"local    {path.name}")
            with conn.transaction():
                done = _ensure_ledger(conn)
            for path in _files(sql_dir / "migrations"):
                digest = checksum(path)
                if path.name in done:
                    if done[path.name] != digest:
                        raise MigrationError(
                            f"migrations/{path.name} was changed after it was applied;"
                            " add a new migration instead"
                        )
                    report.skipped += 1
                    continue
                with conn.transaction():
                    _run_file(conn, path)
                    conn.execute(
                        "insert into nimbus_migrations.applied (filename, checksum)"
                        " values (%s, %s)",
                        (path.name, digest),
                    )
                report.applied.append(path.name)
                echo(f"migrate  {path.name}")
            _repeatables(conn, sql_dir, report, echo)
            conn.execute(sql.SQL("notify pgrst, 'reload schema'"))
            # Role settings (statement_timeout of anon and authenticated) are part of PostgREST's
            # configuration, re-read on this notification.
            conn.execute(sql.SQL("notify pgrst, 'reload config'"))
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
    summary = ", ".join(f"{n} {k}" for k, n in report.repeatable.items())
    echo(
        f"done: {len(report.applied)} migration(s) applied, {report.skipped} already applied;"
        f" re-applied {summary}"
    )
    return report


def ensure_database(database_url: str) -> bool:
    """Create the database named in database_url if it is missing; True when created."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    name = str(info.get("dbname") or "postgres")
    admin = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return True
