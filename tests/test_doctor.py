"""`nimbus doctor`: one line per check, exit 0 only when all pass, and a fix for every failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from proxy.local.localstack import free_port
from tests.conftest import SQL_DIR


def doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run `nimbus doctor` in an empty directory (no .env) with exactly these NIMBUS_* values."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
    return subprocess.run(
        [sys.executable, "-m", "proxy.local.cli", "doctor", *args],
        env={**clean, "NIMBUS_STATE_DIR": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def statuses(output: str) -> dict[str, str]:
    """check name -> OK/FAIL, from the check lines."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("OK", "FAIL"):
            found[parts[1]] = parts[0]
    return found


def test_all_ok_against_the_test_stack(tmp_path, postgrest, database_url, jwt_secret) -> None:
    """Against the migrated test database and its PostgREST: every check OK, exit 0, versions
    named."""
    result = doctor(
        tmp_path,
        "--sql-dir",
        str(SQL_DIR),
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_POSTGREST_URL=postgrest.url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_REDIS_URL="",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert statuses(result.stdout) == {
        "config": "OK",
        "postgresql": "OK",
        "migrations": "OK",
        "postgrest": "OK",
        "redis": "OK",
        "jwt": "OK",
    }
    assert "PostgREST 12." in result.stdout
    assert "PostgreSQL 1" in result.stdout
    assert "disabled" in result.stdout  # Redis: says it runs without it


def test_wrong_urls_fail_with_fixes_and_no_password(tmp_path, jwt_secret) -> None:
    """Nothing listening on the configured ports: exit 1, FAIL lines naming the variable to
    fix, and the database password never printed."""
    dead = free_port()
    result = doctor(
        tmp_path,
        NIMBUS_DATABASE_URL=f"postgresql://nimbus:hunter2secret@127.0.0.1:{dead}/nimbus",
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{dead}",
        NIMBUS_REDIS_URL=f"redis://127.0.0.1:{dead}/0",
        NIMBUS_JWT_SECRET=jwt_secret,
    )
    assert result.returncode == 1
    found = statuses(result.stdout)
    assert found["postgresql"] == found["postgrest"] == found["redis"] == "FAIL"
    assert found["config"] == found["jwt"] == "OK"
    assert "set NIMBUS_DATABASE_URL" in result.stdout
    assert "set NIMBUS_POSTGREST_URL" in result.stdout
    assert "NIMBUS_REDIS_URL" in result.stdout
    assert "hunter2secret" not in result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("2 OK, 4 failed")


def test_pending_migration_is_named(tmp_path, postgrest, database_url, jwt_secret) -> None:
    """A migration file not yet applied: FAIL migrations naming it, fix `nimbus migrate`."""
    tree = tmp_path / "sql"
    shutil.copytree(SQL_DIR, tree)
    (tree / "migrations" / "29990101000000_future.sql").write_text("select 1;\n")
    result = doctor(
        tmp_path,
        "--sql-dir",
        str(tree),
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_POSTGREST_URL=postgrest.url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_REDIS_URL="",
    )
    assert result.returncode == 1
    assert statuses(result.stdout)["migrations"] == "FAIL"
    assert "29990101000000_future.sql" in result.stdout
    assert "nimbus migrate" in result.stdout


def test_invalid_setting_fails_the_config_check(tmp_path) -> None:
    """An invalid NIMBUS_PORT: the config check fails naming it; exit 1."""
    result = doctor(tmp_path, NIMBUS_PORT="eighty")
    assert result.returncode == 1
    assert statuses(result.stdout) == {"config": "FAIL"}
    assert "NIMBUS_PORT" in result.stdout
