"""`nimbus migrate`: applies once, records checksums, refuses edited migrations."""

from __future__ import annotations

import shutil
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from proxy.local.migrate import MigrationError, migrate
from tests.conftest import ADMIN_URL, SQL_DIR


def test_second_run_applies_nothing(database_url: str) -> None:
    """Running migrate again on a migrated database applies no migration."""
    lines: list[str] = []
    report = migrate(database_url, sql_dir=SQL_DIR, echo=lines.append)
    assert report.applied == []
    assert report.local == []
    assert report.skipped == len(list((SQL_DIR / "migrations").glob("*.sql")))
    assert lines[-1].startswith("done: 0 migration(s) applied")


def test_local_shim_present(database_url: str) -> None:
    """The Supabase stand-ins exist: API roles and auth.uid() reading the JWT claims."""
    with psycopg.connect(database_url) as conn:
        roles = {r for (r,) in conn.execute("select rolname from pg_roles").fetchall()}
        assert {"anon", "authenticated", "service_role", "authenticator"} <= roles
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            ('{"sub": "6a1f4c1e-5c61-4a0b-9f0e-7d7f3f0b2a11", "role": "authenticated"}',),
        )
        uid, role = conn.execute("select auth.uid()::text, auth.role()").fetchone()
    assert uid == "6a1f4c1e-5c61-4a0b-9f0e-7d7f3f0b2a11"
    assert role == "authenticated"


def test_edited_migration_is_refused(database_url: str, tmp_path) -> None:
    """Changing the text of an applied migration is an error naming the file."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    extra = sql_dir / "migrations" / "29990101000000_probe.sql"
    extra.write_text("create table if not exists nimbus_migrations.probe (id int);\n")
    migrate(database_url, sql_dir=sql_dir, echo=lambda _l: None)
    extra.write_text("create table if not exists nimbus_migrations.probe (id bigint);\n")
    with pytest.raises(MigrationError, match=r"29990101000000_probe\.sql was changed"):
        migrate(database_url, sql_dir=sql_dir, echo=lambda _l: None)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("drop table nimbus_migrations.probe")
        conn.execute("delete from nimbus_migrations.applied where filename = %s", (extra.name,))


def test_failing_migration_names_file_and_rolls_back(database_url: str, tmp_path) -> None:
    """A migration that fails leaves nothing behind and the error names it."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    bad = sql_dir / "migrations" / "29990101000001_broken.sql"
    bad.write_text("create table nimbus_migrations.half (id int);\nselect * from no_such_table;\n")
    with pytest.raises(MigrationError, match=r"29990101000001_broken\.sql"):
        migrate(database_url, sql_dir=sql_dir, echo=lambda _l: None)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select to_regclass('nimbus_migrations.half')").fetchone()[0] is None
        assert not conn.execute(
            "select 1 from nimbus_migrations.applied where filename = %s", (bad.name,)
        ).fetchone()


def test_renamed_migration_is_not_applied_twice(tmp_path) -> None:
    """A database migrated when a file had its former name (RENAMED) is not migrated again:
    its ledger row takes the new name, and `nimbus doctor`'s reading of the ledger agrees."""
    from proxy.local.migrate import RENAMED, recorded

    old_tree = tmp_path / "sql"
    shutil.copytree(SQL_DIR, old_tree)
    for current, former in RENAMED.items():
        (old_tree / "migrations" / current).rename(old_tree / "migrations" / former)
    name = f"nimbus_renamed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    try:
        first = migrate(url, sql_dir=old_tree, echo=lambda _l: None)
        assert set(RENAMED.values()) <= set(first.applied)
        with psycopg.connect(url) as conn:
            ledger = dict(conn.execute("select filename, checksum from nimbus_migrations.applied"))
        assert set(recorded(ledger)) == {p.name for p in (SQL_DIR / "migrations").glob("*.sql")}
        again = migrate(url, sql_dir=SQL_DIR, echo=lambda _l: None)
        assert again.applied == []
        with psycopg.connect(url) as conn:
            names = {n for (n,) in conn.execute("select filename from nimbus_migrations.applied")}
        assert set(RENAMED) <= names and not set(RENAMED.values()) & names
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def test_no_sql_at_all_is_an_error(database_url: str, tmp_path) -> None:
    """A tree without migrations fails migrate and doctor, never "0 applied" as success."""
    from proxy.config import Settings
    from proxy.local.doctor import check_database

    (tmp_path / "migrations").mkdir()
    with pytest.raises(MigrationError, match="no migrations found"):
        migrate(database_url, sql_dir=tmp_path, echo=lambda _l: None)
    checks = {c.name: c for c in check_database(Settings(database_url=database_url), tmp_path)}
    assert not checks["migrations"].ok
    assert "no migrations found" in checks["migrations"].detail


def test_a_deadlock_with_a_reader_runs_the_repeatables_again(database_url: str) -> None:
    """A reader holding one table while it asks for another that migrate's policies have locked
    (as an analytics refresh does): PostgreSQL aborts migrate's transaction, which runs again and
    succeeds once the reader is done."""
    lines: list[str] = []
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            migrate(database_url, sql_dir=SQL_DIR, echo=lines.append)
            outcome.append(None)
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)

    with psycopg.connect(database_url) as reader, psycopg.connect(database_url) as probe:
        probe.autocommit = True
        # policies/categories.sql runs before policies/suppliers.sql in the same transaction.
        reader.execute("select 1 from public.suppliers limit 1")
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 30
        while not probe.execute(
            "select 1 from pg_locks where relation = 'public.suppliers'::regclass and not granted"
        ).fetchone():
            assert time.monotonic() < deadline, "migrate never waited for the reader"
            time.sleep(0.05)
        reader.execute("select 1 from public.categories limit 1")  # waits: a deadlock
        reader.commit()
        worker.join(60)
    assert outcome == [None]
    assert any("deadlock" in line for line in lines), lines
    assert lines[-1].startswith("done: 0 migration(s) applied")
