"""rsync's size arguments (options.c parse_size_arg): "1.5k", "10MB",
"1GiB", "4k-1" ... with rsync's units, limits and error words."""

from __future__ import annotations

from .errors import SyntaxUsageError

__all__ = ["parse_size_arg", "bwlimit_kib"]

_SIZE_MAX = (1 << 63) - 1      # rsync: SIZE_MAX / 2


def parse_size_arg(arg: str, def_suffix: str, name: str, min_value: int = 0,
                   unlimited_0: bool = False) -> int:
    """rsync's size syntax (options.c parse_size_arg, as 3.2.7 reads it):
    a decimal number, a unit letter b/k/m/g/t/p (``def_suffix`` when there
    is none), "b" after it for powers of 1000 or "ib" for 1024, and an
    optional +1 / -1.  Errors are rsync's words."""
    i, n = 0, len(arg)
    while i < n and arg[i].isdigit():
        i += 1
    if i < n and arg[i] == ".":
        i += 1
        while i < n and arg[i].isdigit():
            i += 1
    num_end = i
    if i < n and arg[i] not in "+-":
        unit = arg[i].lower()
        i += 1
    else:
        unit = def_suffix.lower()
    reps = "bkmgtp".find(unit)
    if reps < 0 or not arg[i:i + 1].isascii():
        raise SyntaxUsageError(f"--{name}={arg} is invalid")
    if arg[i:i + 1] in ("b", "B"):
        mult, i = 1000, i + 1
    elif i == n or arg[i] in "+-":
        mult = 1024
    elif arg[i:i + 2].lower() == "ib":
        mult, i = 1024, i + 2
    else:
        raise SyntaxUsageError(f"--{name}={arg} is invalid")
    adjust = 0
    if i < n and arg[i] in "+-" and arg[i + 1:i + 2] == "1" and i != 0:
        adjust = 1 if arg[i] == "+" else -1
        i += 2
    if i < n:
        raise SyntaxUsageError(f"--{name}={arg} is invalid")
    size = mult ** reps
    digits = arg[:num_end]
    dsize = float(digits) if digits.strip(".") else 0.0
    if size > _SIZE_MAX or dsize >= _SIZE_MAX / size:
        raise SyntaxUsageError(f"--{name}={arg} is too large")
    size = int(dsize * size) + adjust
    if size < min_value and not (unlimited_0 and size == 0):
        extra = " or 0 for unlimited" if unlimited_0 else ""
        raise SyntaxUsageError(f"--{name}={arg} is too small (min: {_big_num(min_value)}{extra})")
    return size


def _big_num(n: int) -> str:
    """A limit as rsync's messages show it (do_big_num, 1024-based units)."""
    if n < 1024:
        return str(n)
    value = n / 1024
    for unit in "KMGT":
        if value < 1024:
            return f"{value:.2f}{unit}"
        value /= 1024
    return f"{value:.2f}P"


def bwlimit_kib(v: str) -> int:
    """--bwlimit=RATE: bytes per second with rsync's units (default K),
    at least 512, 0 for none; kept, like rsync, as whole KiB/s (rounded)
    in a C int."""
    kib = (parse_size_arg(v, "K", "bwlimit", 512, True) + 512) // 1024
    kib = (kib + (1 << 31)) % (1 << 32) - (1 << 31)
    return max(kib, 0)
