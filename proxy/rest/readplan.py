"""What a /rest/v1 read depends on, decided once for both ways a read is served: the full path
(proxy/rest/routes.py) and the relay path (proxy/edge/relaypath.py)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.cache import tenants
from proxy.cache.dependencies import one_id, read_order
from proxy.cache.readquery import first, parse_query, values


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """A cacheable read: the tables it depends on, the one organization its own table is filtered
    to (if any), and how long its answer may be kept."""

    resource: str
    deps: tuple[str, ...]
    org: str | None
    ttl_s: float

    def names(self, orgs: tenants.Orgs, user: str | None) -> tuple[str, ...]:
        """The generation names of this read for a caller in organizations orgs (user: the
        caller's id, tenants.user_of)."""
        top = None if self.org is None else (self.resource, self.org)
        return tenants.read_names(self.deps, orgs, top, user)


def read_plan(resource: str, raw_query: str, ttl_s: float, rpc_ttl_s: float) -> ReadPlan | None:
    """The plan of a read of resource (`products`, `rpc/dashboard`), or None when this proxy
    cannot read the query exactly as PostgREST does (`;` separates too, names are decoded): such
    a read is never cached, its dependencies would be a guess."""
    params = parse_query(raw_query)
    if params is None:
        return None
    product = one_id(values(params, "product_id"))
    location = one_id(values(params, "location_id")) if product is not None else None
    deps = read_order(resource, first(params, "select"), product, location)
    org = tenants.one_org(values(params, "organization_id"))
    return ReadPlan(resource, deps, org, rpc_ttl_s if resource.startswith("rpc/") else ttl_s)
