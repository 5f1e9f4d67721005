"""Ids as PostgreSQL prints them: what a user, organization, product or location id looks like
wherever the proxy reads one it did not make (a token's subject, a notification, a body)."""

from __future__ import annotations

import re
from typing import TypeGuard

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_uuid(value: object) -> TypeGuard[str]:
    """A uuid in PostgreSQL's canonical text (lower case, hyphenated): anything else is not
    sent to the database as one (a value it would refuse to cast fails the whole query)."""
    return isinstance(value, str) and UUID.match(value) is not None
