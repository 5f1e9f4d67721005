"""CSV cells a spreadsheet will not evaluate (OWASP's CSV-injection rule), both ways.

Export: a text cell whose first character is `=`, `+`, `-`, `@`, tab or CR is written with one
`'` in front (a spreadsheet shows the text, it does not run it). A cell that already starts with
`'`s followed by such a character gets one more `'`, so the rule is reversible without loss.
Import: exactly one leading `'` before (more `'`s and) a formula character is that escape and is
removed; a cell that still starts with a formula character is refused. Numbers are not cells of
this rule: the export writes the numbers PostgREST returns as they are (a -3 stays -3), and the
import's number columns must parse as numbers anyway.
"""

from __future__ import annotations

import re

FORMULA = "=+-@\t\r"
QUOTE = "'"
_GUARDED = re.compile(r"'*[=+\-@\t\r]")  # what an export would prefix with one more quote


def guard(value: str) -> str:
    """value as an exported text cell: one `'` in front when a spreadsheet would evaluate it."""
    return QUOTE + value if _GUARDED.match(value) else value


def unguard(value: str) -> tuple[str, bool]:
    """(the value an imported text cell stands for, whether it is allowed): guard's inverse; a
    cell starting with a formula character without the export's `'` is not allowed."""
    if value[:1] == QUOTE and _GUARDED.match(value, 1):
        return value[1:], True
    return value, not (value and value[0] in FORMULA)
