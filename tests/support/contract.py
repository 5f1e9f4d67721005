"""What schemathesis expects of /api/v1, shared by the contract test (tests/api) and the stateful
two-organization run (tests/security): the document and the statuses that count as refusing
invalid input or accepting valid input."""

from __future__ import annotations

from schemathesis.config import SchemathesisConfig

from proxy.api import PREFIX, openapi, route_map

DOCUMENT = openapi.document(route_map(), PREFIX)
# A body over NIMBUS_MAX_BODY_BYTES (64 KiB in the test stack) is refused with 413 before it is
# validated: for oversized invalid bodies that is the documented refusal.
REFUSALS = [400, 401, 403, 404, 406, 413, 415, 422, 428]
# Valid input may still meet the state of the data: a duplicate name or sku, stock that is not
# there (409), a row of another organization or one deleted meanwhile (404).
ACCEPTED = ["2xx", 401, 403, 404, 409]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"expected-statuses": REFUSALS},
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
        }
    }
)
# The live stream never ends by itself (tests/test_notifications.py covers it).
STREAM = PREFIX + "/notifications/stream"
