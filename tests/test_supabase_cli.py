"""The Supabase CLI deploys the schema: `supabase db push` and `nimbus migrate` give the same
database, and `supabase db lint` finds no error in it.

The CLI comes from npm into .local/ (`make install`, or this module installs it once). Without
npm or a reachable registry the module is skipped, and the skip reason says so (`-ra`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from proxy.local.doctor import CLI_VERSIONS, cli_check
from proxy.local.migrate import migrate
from proxy.local.supabase_migrations import generate, sections
from tests.conftest import ADMIN_URL, ROOT, SQL_DIR

pytestmark = pytest.mark.supabase

SUPABASE = ROOT / ".local" / "node_modules" / ".bin" / "supabase"
IGNORED_SCHEMAS = ("nimbus_migrations", "supabase_migrations")


def _npm_packages() -> list[str]:
    """The npm packages `make install` puts in .local/ (all in one command: `npm install
    --no-save` removes the packages it is not given)."""
    text = (ROOT / "Makefile").read_text()
    return re.findall(r"^\w+_PKG := (\S+)$", text, flags=re.M)


@pytest.fixture(scope="module")
def supabase_cli() -> Path:
    """The pinned Supabase CLI in .local/, installed from npm if missing."""
    wanted = next(p for p in _npm_packages() if p.startswith("supabase@")).split("@", 1)[1]

    def installed() -> bool:
        if not SUPABASE.exists():
            return False
        out = subprocess.run([SUPABASE, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() == wanted

    if installed():
        return SUPABASE
    if not shutil.which("npm"):
        pytest.skip("npm is not installed: the Supabase CLI could not be installed, NOT TESTED")
    cmd = ["npm", "install", "-E", "--no-save", "--no-audit", "--no-fund", "--loglevel=error"]
    done = subprocess.run(
        [*cmd, "--prefix", str(ROOT / ".local"), *_npm_packages()],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=120)
        if ping.returncode != 0:
            pytest.skip(
                "npm registry unreachable: the Supabase CLI could not be installed, NOT TESTED"
                f" ({ping.stderr.strip().splitlines()[-1:] or ping.stdout.strip()})"
            )
        pytest.fail(f"npm install failed:\n{done.stderr}")
    assert installed(), f"{SUPABASE} is not the CLI {wanted}"
    return SUPABASE


def _cli_url(url: str) -> str:
    """A URL for the CLI (it takes no libpq keyword strings; local PostgreSQL has no TLS)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    auth = info.get("user", "postgres") + (f":{info['password']}" if info.get("password") else "")
    host = info.get("host", "127.0.0.1")
    return f"postgresql://{auth}@{host}:{info.get('port', 5432)}/{info['dbname']}?sslmode=disable"


@pytest.fixture
def fresh_database() -> Iterator[Callable[[], str]]:
    """A factory of empty databases, dropped at the end of the test."""
    names: list[str] = []

    def make() -> str:
        name = f"nimbus_cli_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        names.append(name)
        return psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)

    yield make
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def _workdir(tmp_path: Path, sql_dir: Path = SQL_DIR, history: bool | None = None) -> Path:
    """A Supabase project directory: config.toml and migrations generated from sql_dir (on top
    of the checked-in history when sql_dir is this checkout's sql/, or history says so, so old
    repeatables run too)."""
    project = tmp_path / "project" / "supabase"
    project.mkdir(parents=True)
    shutil.copy(ROOT / "supabase" / "config.toml", project / "config.toml")
    if history or (history is None and sql_dir.resolve() == (ROOT / "sql").resolve()):
        shutil.copytree(ROOT / "supabase" / "migrations", project / "migrations")
    generate(sql_dir, project / "migrations", echo=lambda _l: None)
    return project.parent


def _push_and_migrate(
    cli: Path, fresh_database, project: Path, sql_dir: Path
) -> tuple[str, dict[str, set[tuple]], dict[str, set[tuple]]]:
    """One fresh database pushed with the real CLI (after sql/local, which hosted Supabase
    provides itself), another migrated with `nimbus migrate` from sql_dir: (the pushed one's
    URL, its catalog, the migrated one's)."""
    pushed, migrated = fresh_database(), fresh_database()
    with psycopg.connect(pushed, autocommit=True) as conn:
        for path in sorted((sql_dir / "local").glob("*.sql")):
            conn.execute(path.read_text())
    out = _run(cli, "db", "push", "--db-url", _cli_url(pushed), "--yes", cwd=project)
    assert "Finished supabase db push" in out.stdout + out.stderr
    migrate(migrated, sql_dir=sql_dir, echo=lambda _l: None)
    return pushed, _catalog(pushed), _catalog(migrated)


def _run(cli: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(cli), *args], cwd=cwd, capture_output=True, text=True, timeout=300, input="y\n"
    )
    assert done.returncode == 0, f"supabase {' '.join(args[:2])}:\n{done.stdout}\n{done.stderr}"
    return done


SKIP = "n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') " + " ".join(
    f"and n.nspname <> '{s}'" for s in IGNORED_SCHEMAS
)
CATALOG = {
    "schemas": f"""
        select n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text,
          obj_description(n.oid, 'pg_namespace')
        from pg_namespace as n where {SKIP} and n.nspname not like 'pg\\_temp%'
          and n.nspname not like 'pg\\_toast\\_temp%'""",
    "relations": f"""
        select n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
          c.relrowsecurity, c.relforcerowsecurity, c.reloptions::text, c.relpersistence,
          obj_description(c.oid, 'pg_class'),
          case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid) end
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where {SKIP} and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')""",
    "columns": f"""
        select n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
          a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
          a.attacl::text, a.attcollation::regcollation::text,
          col_description(c.oid, a.attnum)
        from pg_attribute as a join pg_class as c on c.oid = a.attrelid
        join pg_namespace as n on n.oid = c.relnamespace
        left join pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where {SKIP} and a.attnum > 0 and not a.attisdropped
          and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c')""",
    "constraints": f"""
        select n.nspname, coalesce(c.relname, t.typname), k.conname, k.contype,
          pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred
        from pg_constraint as k join pg_namespace as n on n.oid = k.connamespace
        left join pg_class as c on c.oid = k.conrelid left join pg_type as t on t.oid = k.contypid
        where {SKIP}""",
    "indexes": f"""
        select n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
        from pg_index as i join pg_class as c on c.oid = i.indexrelid
        join pg_namespace as n on n.oid = c.relnamespace where {SKIP}""",
    "functions": f"""
        select n.nspname, p.oid::regprocedure::text, p.prokind, pg_get_userbyid(p.proowner),
          p.proacl::text, obj_description(p.oid, 'pg_proc'),
          case when p.prokind <> 'a' then pg_get_functiondef(p.oid) end
        from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
        where {SKIP} and not exists (
          select from pg_depend as d where d.classid = 'pg_proc'::regclass and d.objid = p.oid
            and d.deptype = 'e')""",
    "policies": """
        select schemaname, tablename, policyname, permissive, roles::text, cmd, qual, with_check
        from pg_policies""",
    "triggers": f"""
        select n.nspname, c.relname, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid)
        from pg_trigger as t join pg_class as c on c.oid = t.tgrelid
        join pg_namespace as n on n.oid = c.relnamespace
        where {SKIP} and not t.tgisinternal""",
    "types": f"""
        select n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod),
          t.typnotnull, t.typdefault, t.typacl::text,
          (select array_agg(e.enumlabel order by e.enumsortorder) from pg_enum as e
           where e.enumtypid = t.oid)::text
        from pg_type as t join pg_namespace as n on n.oid = t.typnamespace
        where {SKIP} and t.typtype in ('d', 'e', 'r', 'm')""",
    "sequences": """
        select schemaname, sequencename, data_type::text, start_value, increment_by,
          max_value, cycle from pg_sequences
        where schemaname not in ('nimbus_migrations', 'supabase_migrations')""",
    "extensions": """
        select e.extname, e.extversion, n.nspname from pg_extension as e
        join pg_namespace as n on n.oid = e.extnamespace""",
    "default_privileges": """
        select pg_get_userbyid(d.defaclrole), d.defaclnamespace::regnamespace::text,
          d.defaclobjtype, d.defaclacl::text from pg_default_acl as d""",
    "event_triggers": """
        select evtname, evtevent, evtfoid::regproc::text, evtenabled, evttags::text
        from pg_event_trigger""",
    "rules": f"""
        select n.nspname, c.relname, r.rulename, pg_get_ruledef(r.oid)
        from pg_rewrite as r join pg_class as c on c.oid = r.ev_class
        join pg_namespace as n on n.oid = c.relnamespace
        where {SKIP} and r.rulename <> '_RETURN'""",
    "database_role_settings": """
        select setrole::regrole::text, setconfig::text from pg_db_role_setting
        where setdatabase = (select oid from pg_database where datname = current_database())""",
    "publications": "select pubname, puballtables, pubinsert, pubupdate, pubdelete"
    " from pg_publication",
}


def _catalog(url: str) -> dict[str, set[tuple]]:
    with psycopg.connect(url) as conn:
        return {name: set(conn.execute(query).fetchall()) for name, query in CATALOG.items()}


def _differences(a: dict[str, set[tuple]], b: dict[str, set[tuple]]) -> list[str]:
    lines = []
    for name in CATALOG:
        for row in sorted(a[name] - b[name], key=repr):
            lines.append(f"{name}: only after `supabase db push`: {row}")
        for row in sorted(b[name] - a[name], key=repr):
            lines.append(f"{name}: only after `nimbus migrate`: {row}")
    return lines


def test_db_push_and_nimbus_migrate_give_the_same_database(
    supabase_cli: Path, fresh_database, tmp_path: Path
) -> None:
    """Push with the real CLI to one fresh database (after sql/local, which hosted Supabase
    provides itself), migrate another with `nimbus migrate`: the catalogs are identical."""
    project = _workdir(tmp_path)
    pushed, a, b = _push_and_migrate(supabase_cli, fresh_database, project, SQL_DIR)
    assert all(a[k] for k in ("relations", "functions", "policies", "triggers", "indexes"))
    assert _differences(a, b) == []
    with psycopg.connect(pushed) as conn:
        applied = conn.execute("select count(*) from supabase_migrations.schema_migrations")
        assert applied.fetchone()[0] == len(list((project / "supabase" / "migrations").glob("*")))

    # A second push has nothing to do.
    again = _run(supabase_cli, "db", "push", "--db-url", _cli_url(pushed), "--yes", cwd=project)
    assert "up to date" in again.stdout + again.stderr

    # `nimbus doctor` reads the CLI's history on a pushed database: nothing pending.
    files = sorted((SQL_DIR / "migrations").glob("*.sql"))
    with psycopg.connect(pushed) as conn:
        versions = {v for (v,) in conn.execute(CLI_VERSIONS)}
    check = cli_check(files, versions, project / "supabase" / "migrations")
    assert check.ok, check
    versions.discard(max(versions))
    assert not cli_check(files, versions, project / "supabase" / "migrations").ok


def test_a_changed_function_is_pushed_alone_and_gives_the_same_database(
    supabase_cli: Path, fresh_database, tmp_path: Path
) -> None:
    """A function changed after the checked-in history: the generated file holds that function
    alone, and pushing the history with it gives the database `nimbus migrate` gives."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    target = sql_dir / "functions" / "analytics" / "refresh_analytics.sql"
    text = target.read_text()
    assert "after checking the caller''s role.'" in text
    target.write_text(text.replace("caller''s role.'", "caller''s role (changed).'"))
    project = _workdir(tmp_path, sql_dir, history=True)
    newest = max((project / "supabase" / "migrations").glob("*_nimbus_repeatables.sql"))
    assert list(sections(newest.read_text())) == ["functions/analytics/refresh_analytics.sql"]
    _pushed, a, b = _push_and_migrate(supabase_cli, fresh_database, project, sql_dir)
    assert any("(changed)" in str(row) for row in a["functions"])
    assert _differences(a, b) == []


def test_config_hook_function_is_shipped() -> None:
    """The custom access token hook config.toml names is a function in sql/functions."""
    config = (ROOT / "supabase" / "config.toml").read_text()
    uris = re.findall(r'^uri = "pg-functions://postgres/(\w+)/(\w+)"$', config, flags=re.M)
    assert uris
    for schema, name in uris:
        defined = [
            p
            for p in (SQL_DIR / "functions").rglob("*.sql")
            if f"create or replace function {schema}.{name}(" in p.read_text()
        ]
        assert defined, f"{schema}.{name} is not defined in sql/functions"


def test_db_lint_reports_no_error(supabase_cli: Path, fresh_database, tmp_path: Path) -> None:
    """`supabase db lint` (plpgsql_check) finds no error in a database `nimbus migrate` built."""
    url = fresh_database()
    migrate(url, sql_dir=SQL_DIR, echo=lambda _l: None)
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("create extension if not exists plpgsql_check")
        except psycopg.Error as exc:
            pytest.fail(
                "plpgsql_check is not installed for this PostgreSQL: `make install` installs"
                f" Debian's postgresql-<major>-plpgsql-check ({exc})"
            )
    args = ["db", "lint", "--db-url", _cli_url(url), "--level", "error", "--fail-on", "error"]
    done = subprocess.run(
        [str(supabase_cli), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"supabase db lint:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip() in ("", "[]"), done.stdout
