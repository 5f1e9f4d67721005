"""Fixtures for /api/v1 tests: the two-organization world and HTTP clients per role."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from proxy.gate.tokens import mint
from tests.support.domain import World, build_world


@pytest.fixture(scope="session")
def world(database_url: str) -> World:
    """Organizations a and b with a user per role, locations, products and stock."""
    return build_world(database_url)


class Api:
    """Clients for the API as any user; `api.as_("manager")` acts in organization a."""

    def __init__(self, base: str, secret: str, world: World) -> None:
        self.base = base
        self.secret = secret
        self.world = world
        self.clients: list[httpx.Client] = []

    def token(self, uid: str, **kw) -> str:
        """A fresh access token for uid."""
        return mint(self.secret, sub=uid, **kw)

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        """An httpx client on /api/v1 (closed at the end of the session)."""
        if token:
            headers["Authorization"] = "Bearer " + token
        client = httpx.Client(base_url=self.base + "/api/v1", headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def as_(self, role: str, org: str = "a") -> httpx.Client:
        """A client for the world's user with role in org a or b."""
        uid = getattr(self.world, org).users[role]
        return self.client(self.token(uid))


@pytest.fixture(scope="session")
def api(proxy_url: str, jwt_secret: str, world: World) -> Iterator[Api]:
    """The API factory for the session's proxy and world."""
    factory = Api(proxy_url, jwt_secret, world)
    yield factory
    for client in factory.clients:
        client.close()


def error_code(response: httpx.Response) -> str:
    """The stable code of an error response."""
    return response.json()["error"]["code"]
