"""Bounded embedding: a `select` may not embed resources deeper or more often than the settings
allow (NIMBUS_MAX_EMBED_DEPTH, NIMBUS_MAX_EMBEDS).

PostgREST caps the top level of an answer at db-max-rows, but not what each row embeds: a
viewer's `orders?select=id,order_items(id,products(id,order_items(id,orders(id,order_items(id)))))`
fans out through many-to-many paths into megabytes and seconds of database time per request. The
proxy reads `select` as PostgREST does — every `select` in the query, split on `&` and `;`,
percent- and plus-decoded; items split on commas outside parentheses and quotes; an item followed
by parentheses is an embedded resource (`alias:name!hint(...)`, `...spread(...)`), except an
aggregate (`column.sum()`, `count()`) — and refuses, before anything goes upstream, a select
whose nesting or number of embedded resources is over the limits.
"""

from __future__ import annotations

import functools
from urllib.parse import unquote_plus

from proxy.ops.errors import ProxyError

# The aggregate PostgREST 12 accepts without a column (`select=count()`).
BARE_AGGREGATES = frozenset({"count"})


class EmbedLimit(ProxyError):
    """400: a select embeds deeper or more resources than the proxy allows."""

    status = 400
    code = "PGRST_EMBED_LIMIT"


def selects(raw_query: str) -> list[str]:
    """Every `select` value of a raw query string, decoded as PostgREST decodes it."""
    found = []
    for part in raw_query.replace(";", "&").split("&"):
        key, _, value = part.partition("=")
        if "select" in key.lower() or "%" in key:
            if unquote_plus(key) == "select":
                found.append(unquote_plus(value))
    return found


@functools.lru_cache(maxsize=4096)
def shape(select: str) -> tuple[int, int]:
    """(deepest nesting of embedded resources, number of embedded resources) of one select."""
    open_parens: list[bool] = []  # for each "(" still open: does it open an embedded resource?
    deepest = embeds = 0
    item: list[str] = []  # the current item's characters at this level, up to a "("
    quoted = False
    for char in select:
        if quoted:
            quoted = char != '"'
            item.append(char)
        elif char == '"':
            quoted = True
            item.append(char)
        elif char == "(":
            embed = _is_embed("".join(item).strip())
            item = []
            open_parens.append(embed)
            if embed:
                embeds += 1
                deepest = max(deepest, sum(open_parens))
        elif char == ")":
            if open_parens:
                open_parens.pop()
            item = []
        elif char == ",":
            item = []
        else:
            item.append(char)
    return deepest, embeds


def _is_embed(name: str) -> bool:
    """Whether the text before a "(" names an embedded resource rather than an aggregate
    (`amount.sum(`, `total:amount.sum(`, `count(`); anything unclear counts as an embed."""
    if name.startswith("..."):
        return True  # a spread: `...orders(...)`
    target = name.rpartition(":")[2] if not name.endswith('"') else name
    base = target.split("!", 1)[0].strip()
    if base.startswith('"'):
        return True
    return base not in BARE_AGGREGATES and "." not in base


def check(raw_query: str, *, max_depth: int, max_embeds: int) -> None:
    """Raise EmbedLimit when a select in raw_query embeds more than the limits allow."""
    if "select" not in raw_query and "%" not in raw_query:
        return
    for select in selects(raw_query):
        depth, embeds = shape(select)
        if depth > max_depth:
            raise EmbedLimit(
                f"Embedding is nested {depth} levels deep; at most {max_depth} are allowed",
                details=f"NIMBUS_MAX_EMBED_DEPTH is {max_depth}",
                hint="Embed fewer levels, or read the deeper resources with a second request.",
            )
        if embeds > max_embeds:
            raise EmbedLimit(
                f"The select embeds {embeds} resources; at most {max_embeds} are allowed",
                details=f"NIMBUS_MAX_EMBEDS is {max_embeds}",
                hint="Embed fewer resources, or read some of them with a second request.",
            )
