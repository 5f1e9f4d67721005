"""A query string read as PostgREST 12 reads it, for the cache: the parameters (split on `&`
and `;`, as Haskell's HTTP query parser does; names and values percent-decoded, `+` a space)
and the embeds of a `select`. Whatever this module cannot read exactly as PostgREST would is
None: such a request is not cached (proxy/rest/routes.py), or depends on every table (`select`)."""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote_to_bytes

Params = tuple[tuple[str, str], ...]
BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
SEPARATOR = re.compile(r"[&;]")
# The head of an embed: optional spread, optional alias, the name (maybe quoted), hints.
HEAD = re.compile(
    r'^(?:\.\.\.)?\s*(?:(?:[\w$]+|"[^"\\]*")\s*:\s*)?(?:"([\w$]+)"|([\w$]+))'
    r"((?:\s*!\s*[\w$]+)*)\s*$"
)
MEMO_MAX = 512  # longer queries are parsed each time: a memo of them would pin megabytes


def decode(part: str) -> str | None:
    """Percent-decoded, `+` a space; None for a malformed escape, invalid UTF-8 or a NUL."""
    if "%" not in part and "+" not in part:
        return None if "\x00" in part else part
    if BAD_ESCAPE.search(part):
        return None
    try:
        text = unquote_to_bytes(part.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def parse_query(raw: str) -> Params | None:
    """(name, value) pairs in order, repeated names kept; None when in doubt (a parameter
    without `=`, a malformed escape, a NUL, bytes that are not UTF-8)."""
    if len(raw) <= MEMO_MAX:
        return _parse_memo(raw)
    return _parse(raw)


def _parse(raw: str) -> Params | None:
    pairs = []
    for piece in SEPARATOR.split(raw):
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        if not eq:
            return None
        name, value = decode(name), decode(value)
        if name is None or value is None:
            return None
        pairs.append((name, value))
    return tuple(pairs)


_parse_memo = functools.lru_cache(maxsize=2048)(_parse)


def first(params: Params, name: str) -> str | None:
    """The value PostgREST uses for a parameter given more than once (the first)."""
    return next((v for k, v in params if k == name), None)


def values(params: Params, name: str) -> list[str]:
    """Every value of a repeated parameter (filters: all of them apply)."""
    return [v for k, v in params if k == name]


Embed = tuple[str, tuple[str, ...], str]  # (name, hints, inner select)


def embeds(select: str) -> list[Embed] | None:
    """The top-level embeds of a select (`alias:name!hint(inner)`, `...name(inner)`); None for
    anything not read with certainty (unbalanced parentheses or quotes, escapes, an unusual
    head such as an aggregate `count()`)."""
    items = _split(select)
    if items is None:
        return None
    found: list[Embed] = []
    for item in items:
        opening = _opening(item)
        if opening < 0:
            continue  # a column, `*`, a cast or a JSON path
        item = item.strip()
        if not item.endswith(")"):
            return None
        match = HEAD.match(item[:opening])
        if match is None:
            return None
        name = match.group(1) or match.group(2)
        hints = tuple(h.strip() for h in match.group(3).split("!")[1:])
        found.append((name, hints, item[opening + 1 : -1]))
    return found


def _opening(item: str) -> int:
    quoted = False
    for i, ch in enumerate(item):
        if ch == '"':
            quoted = not quoted
        elif ch == "(" and not quoted:
            return i
    return -1


def _split(select: str) -> list[str] | None:
    if "\\" in select:
        return None
    items, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(select):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "," and depth == 0:
            items.append(select[start:i])
            start = i + 1
    if depth or quoted:
        return None
    items.append(select[start:])
    return items
