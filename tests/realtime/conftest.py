"""One Realtime proxy for the module that asks for it; the shared test world."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.domain import World, build_world
from tests.support.process import start_proxy


@pytest.fixture(scope="module")
def world(database_url: str) -> World:
    """Organizations a and b with a user per role (built for this module)."""
    return build_world(database_url)


@pytest.fixture(scope="module")
def rt_proxy(postgrest, database_url: str, jwt_secret: str, tmp_path_factory):
    """A `nimbus serve` of this module's own, with the cache on (writes go through it)."""
    proc, url = start_proxy(
        tmp_path_factory.mktemp("realtime-proxy"),
        NIMBUS_POSTGREST_URL=postgrest.url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_ANALYTICS_REFRESH_S="0",  # a refresh outliving the module would NOTIFY others' tests
    )
    yield proc, url
    proc.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for writes and bare sockets."""
    async with aiohttp.ClientSession() as client:
        yield client
