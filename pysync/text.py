"""How names reach the terminal: rsync's escaping (log.c), so every
message shows a name the same way rsync does and a hostile name cannot
forge lines.  Control characters (but tab) and bytes that are not valid
in the locale's charset become ``\\#ooo``; a literal ``\\#ddd`` in a name
gets its backslash escaped so the output stays unambiguous."""

from __future__ import annotations

__all__ = ["show", "unshow", "EIGHT_BIT"]

_UTF8 = None
# -8/--8-bit-output (set once by the command line): bytes with the high bit
# set are shown as they are (surrogate-escaped, for a stream that writes
# them back as the raw bytes); control characters are still escaped.
EIGHT_BIT = False


def _utf8_locale() -> bool:
    global _UTF8
    if _UTF8 is None:
        import locale  # the first name shown pays for it, not every start
        try:
            codeset = locale.nl_langinfo(locale.CODESET)
        except (AttributeError, ValueError):
            codeset = locale.getpreferredencoding(False)
        _UTF8 = codeset.replace("-", "").upper() == "UTF8"
    return _UTF8


def _seq_len(lead: int) -> int:
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def show(name) -> str:
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    utf8 = _utf8_locale()
    out = []
    i, n = 0, len(name)
    while i < n:
        c = name[i]
        if c == 0x5C and name[i + 1:i + 2] == b"#" and name[i + 2:i + 5].isdigit() and i + 5 <= n:
            out.append("\\#134")
            i += 1
        elif c < 0x20 and c != 0x09:
            out.append(f"\\#{c:03o}")
            i += 1
        elif c < 0x80:
            out.append(chr(c))
            i += 1
        elif EIGHT_BIT:
            out.append(chr(0xDC00 + c))
            i += 1
        else:
            k = _seq_len(c) if utf8 else 0
            if k:
                try:
                    out.append(name[i:i + k].decode("utf-8"))
                    i += k
                    continue
                except UnicodeDecodeError:
                    pass
            out.append(f"\\#{c:03o}")
            i += 1
    return "".join(out)


_ESCAPE = None


def unshow(text: str) -> bytes:
    """The bytes :func:`show` made ``text`` from: a server's message goes
    to the client raw (MSG_INFO), and the client escapes it, once."""
    global _ESCAPE
    if _ESCAPE is None:
        import re
        _ESCAPE = re.compile(rb"\\#([0-7]{3})")
    raw = text.encode("utf-8", "surrogateescape")
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), raw)
