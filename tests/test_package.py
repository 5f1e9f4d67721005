"""The installable package: a wheel built from this tree, installed into a fresh venv outside the
checkout, migrates a fresh database from the SQL it carries and serves requests."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from proxy.gate.tokens import mint
from proxy.local.localstack import free_port, start_postgrest, stop_process
from tests.conftest import ADMIN_URL, ROOT

SOURCES = ("proxy", "sql", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _env(**extra: str) -> dict[str, str]:
    """This environment without NIMBUS_* or PYTHON* (nothing may lead back to the checkout)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NIMBUS_", "PYTHON"))}
    return {**clean, **extra}


def _run(*args: str | Path, cwd: Path, timeout: float = 300, **env: str):
    """Run a command to completion, outside the checkout; its output is in the failure."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from a copy of this tree (the checkout's build/ is not used)."""
    work = tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / "src" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, work / "src" / name)
    done = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        work / "dist",
        "./src",
        cwd=work,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = (work / "dist").glob("nimbus_proxy-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies installed."""
    path = tmp_path_factory.mktemp("venv") / "v"
    assert not path.resolve().is_relative_to(ROOT)
    done = _run(sys.executable, "-m", "venv", path, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    done = _run(path / "bin" / "pip", "install", "-q", wheel, cwd=path.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return path


@pytest.fixture
def fresh_database():
    """An empty database of this test's own, dropped afterwards."""
    name = f"nimbus_pkg_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def test_wheel_carries_every_sql_file(wheel) -> None:
    """Every file under sql/ is in the wheel as proxy/sql/..., byte for byte."""
    source = {p.relative_to(ROOT / "sql").as_posix(): p for p in (ROOT / "sql").rglob("*.sql")}
    with zipfile.ZipFile(wheel) as archive:
        packaged = {
            n.removeprefix("proxy/sql/"): n
            for n in archive.namelist()
            if n.startswith("proxy/sql/")
        }
        assert set(packaged) == set(source)
        for rel, path in source.items():
            assert archive.read(packaged[rel]) == path.read_bytes(), rel


def test_installed_package_migrates_and_serves(venv, fresh_database, jwt_secret, tmp_path):
    """`nimbus migrate` from the venv applies every migration the wheel carries; PostgREST on
    that database and `nimbus serve` from the venv answer /health and an authenticated read."""
    nimbus = venv / "bin" / "nimbus"
    version = _run(nimbus, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("nimbus, version "), version
    where = _run(
        venv / "bin" / "python",
        "-c",
        "from proxy.local.migrate import SQL_DIR; print(SQL_DIR)",
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where
    migrations = len(list((ROOT / "sql" / "migrations").glob("*.sql")))
    done = _run(nimbus, "migrate", "--database-url", fresh_database, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"done: {migrations} migration(s) applied" in done.stdout, done.stdout
    state = tmp_path / "postgrest"
    state.mkdir()
    (state / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
    pgrst = start_postgrest(database_url=fresh_database, secret=jwt_secret, state_dir=state)
    port = free_port()
    with (tmp_path / "serve.log").open("ab") as log:
        proxy = subprocess.Popen(
            [str(nimbus), "serve"],
            cwd=tmp_path,
            env=_env(
                NIMBUS_HOST="127.0.0.1",
                NIMBUS_PORT=str(port),
                NIMBUS_STATE_DIR=str(tmp_path),
                NIMBUS_POSTGREST_URL=pgrst.url,
                NIMBUS_DATABASE_URL=fresh_database,
                NIMBUS_JWT_SECRET=jwt_secret,
                NIMBUS_REDIS_URL="",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proxy.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "the installed proxy never answered /health"
                time.sleep(0.1)
        token = mint(jwt_secret, sub=str(uuid.uuid4()))
        resp = httpx.get(
            url + "/rest/v1/products?select=id&limit=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == []  # RLS: a user of no organization sees no product
    finally:
        stop_process(proxy)
        pgrst.stop()


def test_installed_migrate_refuses_an_empty_tree(venv, fresh_database, tmp_path) -> None:
    """Given a tree without migrations, the installed `nimbus migrate` fails and says why."""
    (tmp_path / "empty" / "migrations").mkdir(parents=True)
    done = _run(
        venv / "bin" / "nimbus",
        "migrate",
        "--database-url",
        fresh_database,
        "--sql-dir",
        tmp_path / "empty",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "no migrations found" in done.stderr, done.stderr
