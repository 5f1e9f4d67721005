"""The `nimbus` command: settings validation, token minting, migrate exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
from click.testing import CliRunner

from proxy.local.cli import main
from tests.conftest import SQL_DIR


def run_nimbus(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m proxy.local.cli` with extra environment."""
    return subprocess.run(
        [sys.executable, "-m", "proxy.local.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_invalid_setting_stops_with_one_line_naming_it() -> None:
    """A bad NIMBUS_PORT stops `serve` with exit 2 and a line naming the variable."""
    result = run_nimbus("serve", NIMBUS_PORT="eighty")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("nimbus: invalid NIMBUS_PORT:")


def test_short_secret_is_refused() -> None:
    """A JWT secret PostgREST would refuse is refused at start-up too."""
    result = run_nimbus("token", NIMBUS_JWT_SECRET="short")
    assert result.returncode == 2
    assert "NIMBUS_JWT_SECRET" in result.stderr


def test_token_carries_supabase_claims(jwt_secret: str) -> None:
    """`nimbus token` mints what Supabase Auth issues, signed with the configured secret."""
    sub = "0b7d8c3e-2f44-4b8a-9f55-3f1d2a6c9e10"
    org = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    result = CliRunner(env={"NIMBUS_JWT_SECRET": jwt_secret}).invoke(
        main, ["token", "--sub", sub, "--org", org, "--ttl", "120"]
    )
    assert result.exit_code == 0, result.output
    claims = jwt.decode(
        result.output.strip(), jwt_secret, algorithms=["HS256"], audience="authenticated"
    )
    assert {"iss", "aud", "exp", "iat", "sub", "role", "session_id", "aal"} <= set(claims)
    assert (claims["sub"], claims["role"], claims["organization_id"]) == (
        sub,
        "authenticated",
        org,
    )
    assert claims["exp"] - claims["iat"] == 120


def test_migrate_command_is_idempotent(database_url: str) -> None:
    """`nimbus migrate --database-url` on an up-to-date database applies nothing, exit 0."""
    result = CliRunner().invoke(
        main, ["migrate", "--database-url", database_url, "--sql-dir", str(SQL_DIR)]
    )
    assert result.exit_code == 0, result.output
    assert "done: 0 migration(s) applied" in result.output
