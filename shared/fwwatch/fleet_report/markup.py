"""Markup that escapes by default: the report page's only way to put text into HTML or SVG.

``html("<td>{name}</td>", name=device_name)`` escapes every value it is given (and strips
control characters: a name is one line of display text), unless the value is
:class:`Html`, which only this module's functions and literal templates make. So a device
named ``<script>alert(1)</script>`` is shown as those characters, and no text from Tuya
can open a tag, an attribute or a script. Data for the page's script goes through
:func:`json_for_script`, which no ``</script>`` or ``<!--`` can get out of.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from html import escape
from typing import Any

from ..safe_text import strip_controls

__all__ = ["Html", "html", "join", "json_for_script", "text"]


class Html(str):
    """Markup that is already safe: made by :func:`html`, :func:`join` or :func:`text`."""

    __slots__ = ()


def text(value: object) -> Html:
    """``value`` as display text in HTML: one line, no control characters, escaped
    (quotes too, so it is safe in an attribute's value)."""
    return Html(escape(strip_controls(str(value)), quote=True))


class _EscapingFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Html):
            return value
        return text(format(value, format_spec))


_FORMATTER = _EscapingFormatter()


def html(template: str, /, **values: Any) -> Html:
    """``template`` (markup written here, never text from outside) with ``{name}`` fields
    filled in: every value escaped, but :class:`Html` values kept as they are."""
    return Html(_FORMATTER.vformat(template, (), values))


def join(parts: Iterable[Html], separator: str = "") -> Html:
    """Pieces of markup as one."""
    return Html(separator.join(parts))


def json_for_script(data: object) -> Html:
    """``data`` as JSON to put inside ``<script type="application/json">``: every ``<``,
    ``>`` and ``&`` as a ``\\u`` escape, so that no ``</script>`` or ``<!--`` in a name can
    end the element or change how it is parsed; line separators escaped for old parsers."""
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escaped)
    return Html(encoded)
