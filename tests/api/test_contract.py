"""schemathesis against /openapi.json: every operation, all default checks, with a real token of a
seeded organization of its own (so the fuzzed writes touch no other test's data). Bounded: a few
examples per operation, a deadline per example, derandomized so a run is repeatable.

The schema is loaded eagerly from the generator (the lazy `schemathesis.pytest.from_fixture`
loader does not work with pytest 9: it sets `node._nodeid`); a test pins that the proxy serves
exactly that document."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from proxy.gate.tokens import mint
from tests.support.contract import CONFIG, DOCUMENT, STREAM
from tests.support.domain import build_world

EXAMPLES = 8


@pytest.fixture(scope="session")
def fuzz_owner(database_url: str) -> tuple[str, str]:
    """(user, organization): the owner of a freshly seeded organization (locations, products,
    stock, an order). Tokens name the organization in their claim: fuzzed POST /organizations
    makes the owner a member of more organizations."""
    org = build_world(database_url).a
    return org.users["owner"], org.id


# Writes may name rows that do not exist (a parent category, a supplier: 422) and analytics
# ranges are checked across fields (at most 1,100 days), which no schema can say: those
# operations are spared the acceptance check below; reads keep it.
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).exclude(path=STREAM)


def test_served_document_is_the_generated_one(proxy_url: str) -> None:
    """/openapi.json is the document the route map generates (what the fuzzing below uses)."""
    assert httpx.get(proxy_url + "/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=5000,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(case, proxy_url, fuzz_owner, jwt_secret) -> None:
    """No 5xx, no response outside the documented schema, status codes and content types as
    declared, invalid input refused and valid input accepted (schemathesis' default checks).
    A fresh token per call: POST /auth/logout revokes only that call's session."""
    user, org = fuzz_owner
    token = mint(jwt_secret, sub=user, org=org)
    excluded = []
    if case.operation.path == "/api/v1/auth/refresh":
        # 501 by design (issue 4) when NIMBUS_SUPABASE_URL is not set, as in this test stack.
        excluded += [not_a_server_error, negative_data_rejection, positive_data_acceptance]
    if case.method != "GET" or case.operation.path.startswith("/api/v1/analytics/"):
        excluded.append(positive_data_acceptance)
    case.call_and_validate(
        base_url=proxy_url, headers={"Authorization": "Bearer " + token}, excluded_checks=excluded
    )
