"""Fixtures for the SQL domain tests: the two-organization world and the inventory invariant."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.domain import World, build_world
from tests.support.invariant import inventory_violations


@pytest.fixture(scope="session")
def world(database_url: str) -> World:
    """Organizations a and b, a user per role in each, locations, products and stock."""
    return build_world(database_url)


@pytest.fixture
def conn(database_url: str):
    """A superuser connection (autocommit off) for one test; rolled back at the end."""
    with psycopg.connect(database_url) as connection:
        yield connection
        connection.rollback()


@pytest.fixture(autouse=True)
def ledger_invariant(database_url: str):
    """After every SQL test: the full inventory invariant (tests.support.invariant) holds."""
    yield
    assert inventory_violations(database_url) == []
