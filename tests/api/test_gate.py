"""The gate is applied once, as a middleware (proxy/gate/gate.py), to every /rest/v1 and /api/v1
route: no route answers without a token unless it is marked public, and every answer the gate
admitted carries its RateLimit headers — streamed ones (CSV, Server-Sent Events) included —
while errors carry none but a 429's own."""

from __future__ import annotations

import httpx
import pytest

from proxy import api as api_package
from tests.api.conftest import error_code

PUBLIC = {("POST", "/auth/refresh")}


def sample_path(path: str) -> str:
    return path.replace("{id}", "00000000-0000-4000-8000-000000000000")


@pytest.mark.parametrize("route", api_package.route_map(), ids=lambda r: f"{r.method} {r.path}")
def test_no_route_answers_without_a_token(proxy_url, route) -> None:
    """Every route of the map is a 401 without a token, before anything else is looked at —
    except the public ones, whose handlers need no caller."""
    response = httpx.request(route.method, proxy_url + "/api/v1" + sample_path(route.path))
    if (route.method, route.path) in PUBLIC:
        assert route.public and response.status_code != 401
    else:
        assert not route.public
        assert response.status_code == 401, response.text
        assert error_code(response) == "invalid_token"
        assert "ratelimit" not in response.headers


@pytest.mark.parametrize(
    "path",
    ["/products?limit=2", "/auth/me", "/export/products.csv", "/analytics/dashboard", "/settings"],
)
def test_admitted_answers_carry_ratelimit_headers(api, path) -> None:
    response = api.as_("viewer").get(path)
    assert response.status_code == 200, response.text
    assert response.headers["ratelimit-policy"].startswith('"read"')
    assert response.headers["ratelimit"].startswith('"read";r=')


def test_a_streamed_event_stream_carries_them_too(api) -> None:
    with api.as_("viewer").stream("GET", "/notifications/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["ratelimit-policy"].startswith('"read"')


def test_errors_after_admission_carry_none(api) -> None:
    """A 404 from a handler of a gated route: the JSON error, without RateLimit headers."""
    response = api.as_("viewer").get("/products/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert "ratelimit" not in response.headers
