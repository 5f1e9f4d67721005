"""Database helpers for tests: run statements as a PostgREST role with JWT claims set."""

from __future__ import annotations

import json
from contextlib import contextmanager

import psycopg


@contextmanager
def as_role(conn: psycopg.Connection, role: str, claims: dict | None = None):
    """Inside a transaction that is rolled back, act as `role` with `claims` like PostgREST does."""
    claims = dict(claims or {})
    claims.setdefault("role", role)
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        conn.execute(psycopg.sql.SQL("set local role {}").format(psycopg.sql.Identifier(role)))
        yield conn
