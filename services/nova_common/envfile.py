"""Read a systemd ``EnvironmentFile=`` the way systemd itself reads it.

The tools that read ``/etc/nova/settings.env`` outside the unit (nova-diagnose, nova-watchdog)
must see the same values the settings service gets from systemd, so there is one quoting rule
and it is systemd's (``systemd.exec(5)``, ``EnvironmentFile=``; ``parse_env_file`` in systemd's
``src/basic/env-file.c``, which this follows):

* Blank lines, lines without ``=`` and lines whose first non-blank character is ``#`` or ``;``
  are ignored (a comment ends at its line, even after a backslash, as since systemd 254).
  Whitespace around the key and around the value is dropped.
* Unquoted values keep interior whitespace and any quote that is not the value's first
  character; a backslash keeps the next character literally, and a backslash at the end of a
  line joins the next line.
* ``'single quotes'``: everything up to the next ``'`` verbatim (newlines too), no escapes.
* ``"double quotes"``: up to the next unescaped ``"`` (newlines too); ``\\"``, ``\\\\``,
  ``\\``` and ``\\$`` give the character, a backslash-newline is dropped, any other backslash
  is kept with the character after it, as in a POSIX shell.
* Quoted and unquoted pieces next to each other join: ``A='x'"y"z`` is ``xyz``.
* A key that is not a valid variable name (``[A-Za-z_][A-Za-z0-9_]*``, so also ``export X``)
  is ignored, as systemd ignores it. A later assignment of a key wins.
"""

from __future__ import annotations

import re
from pathlib import Path

_WHITESPACE = " \t\n\r"
_NEWLINE = "\n\r"
_COMMENT = "#;"
_DOUBLE_QUOTE_ESCAPES = '"\\`$'
_VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _append(buffer: list[str], c: str, trailing: int) -> int:
    """Append ``c``; return where ``buffer``'s trailing whitespace begins (-1: it has none)."""
    buffer.append(c)
    if c not in _WHITESPACE:
        return -1
    return trailing if trailing >= 0 else len(buffer) - 1


def parse_env(text: str) -> dict[str, str]:
    """The assignments in ``text`` (an EnvironmentFile's contents), by systemd's rules."""
    values: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    key_ws = value_ws = -1  # where trailing whitespace of the key/unquoted value begins

    def push() -> None:
        name = "".join(key[:key_ws] if key_ws >= 0 else key)
        if _VALID_NAME.fullmatch(name):
            values[name] = "".join(value)

    for c in text:
        if state == "pre_key":
            if c in _COMMENT:
                state = "comment"
            elif c not in _WHITESPACE:
                state, key, key_ws = "key", [c], -1
        elif state == "key":
            if c in _NEWLINE:
                state = "pre_key"
            elif c == "=":
                state, value, value_ws = "pre_value", [], -1
            else:
                key_ws = _append(key, c, key_ws)
        elif state == "pre_value":
            if c in _NEWLINE:
                push()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in _WHITESPACE:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in _NEWLINE:
                if value_ws >= 0:
                    del value[value_ws:]
                push()
                state = "pre_key"
            elif c == "\\":
                state, value_ws = "value_escape", -1
            else:
                value_ws = _append(value, c, value_ws)
        elif state == "value_escape":
            state = "value"
            if c not in _NEWLINE:  # an escaped newline joins the lines
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in _DOUBLE_QUOTE_ESCAPES:
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "comment" and c in _NEWLINE:
            state = "pre_key"

    if state == "value" and value_ws >= 0:
        del value[value_ws:]
    if state not in ("pre_key", "key", "comment"):
        push()
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """:func:`parse_env` of the file at ``path``; ``{}`` when it cannot be read.

    An unreadable file is not an error for the callers: they fall back to flags and defaults.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return parse_env(text)
