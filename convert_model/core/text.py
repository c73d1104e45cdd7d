"""Text that is safe to print: control characters and terminal escapes made visible."""

from __future__ import annotations

import re
import unicodedata

_BLANKS = re.compile(r"[ \t\n]+")

_KEEP = frozenset(" ")


def printable(text: object) -> str:
    r"""``text`` with every control, format, surrogate or unassigned character escaped.

    A path holding ``\x1b]0;...`` or ``\r`` cannot then rewrite the terminal or hide the
    rest of a message: the escape prints as ``\x1b``. Printable characters (any script)
    are kept as they are; a non-UTF-8 byte smuggled in as a surrogate prints as ``\udce9``.
    """
    out = []
    for ch in str(text):
        if ch in _KEEP or not unicodedata.category(ch).startswith(("C", "Z")):
            out.append(ch)
        elif ch.isspace() and ch not in "\r\n\t\v\f" and unicodedata.category(ch) == "Zs":
            out.append(" ")
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                else f"\\U{code:08x}"
            )
    return "".join(out)


def one_line(text: object) -> str:
    r"""``text`` on one printable line: runs of spaces, tabs and newlines become one space.

    Other control characters (carriage returns included, which would overwrite the line)
    are escaped.
    """
    return printable(_BLANKS.sub(" ", str(text)).strip(" "))
