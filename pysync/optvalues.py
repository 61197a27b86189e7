"""The value syntaxes of rsync's less common options, read as rsync 3.2.7
reads them (options.c): --stderr, --outbuf, --stop-after / --stop-at,
--remote-option, --debug (with --debug=help).  Loaded only when one of
them is given."""

from __future__ import annotations

from .errors import PysyncError, SyntaxUsageError

__all__ = ["stderr_mode", "outbuf_mode", "stop_after", "stop_at", "remote_option",
           "debug_flags", "debug_help", "DebugHelp"]


def stderr_mode(arg: str) -> int:
    """--stderr=errors|all|client, any non-empty prefix: 2, 1 or 0
    (rsync's msgs2stderr values)."""
    for word, mode in (("errors", 2), ("all", 1), ("client", 0)):
        if arg and word.startswith(arg):
            return mode
    raise SyntaxUsageError(f'--stderr mode "{arg}" is not one of errors, all, or client')


def outbuf_mode(arg: str) -> str:
    """--outbuf: the first letter decides (N/U none, L line, B/F block)."""
    mode = {"N": "N", "U": "N", "L": "L", "B": "B", "F": "B"}.get(arg[:1].upper())
    if mode is None:
        raise SyntaxUsageError("Invalid --outbuf setting -- specify N, L, or B.")
    return mode


def _atol(text: str) -> int:
    t = text.lstrip(" \t\n\r\f\v")
    sign = -1 if t[:1] == "-" else 1
    t = t[1:] if t[:1] in "+-" else t
    n = 0
    for c in t:
        if not "0" <= c <= "9":
            break
        n = n * 10 + ord(c) - 48
    return sign * n


def stop_after(arg: str, now: float | None = None) -> float:
    """--stop-after=MINS (also --time-limit): the time to stop, from now."""
    import time
    mins = _atol(arg)
    if mins <= 0 or mins * 60 > (1 << 62):
        raise SyntaxUsageError(f"invalid --stop-after value: {arg}")
    return int(time.time() if now is None else now) + mins * 60


def stop_at(arg: str, now: float | None = None) -> float:
    """--stop-at=[[YY]YY-]MM-DD[Th:m] ... as rsync's parse_time (options.c):
    parts left out default to the next matching time in the future."""
    import time
    now = int(time.time() if now is None else now)
    when = _parse_time(arg, now)
    if when is None:
        raise SyntaxUsageError(f"invalid --stop-at format: {arg}")
    if when <= now:
        raise SyntaxUsageError(f"--stop-at time is not in the future: {arg}")
    return when


def _parse_fields(arg: str):
    """[year, month, day, hour, minute] as given (None: left out), or None
    when the text is not rsync's format."""
    date, times = [], []
    i, n = 0, len(arg)
    in_date = 1
    if arg[:1] in ("T", "t", ":"):
        in_date = 0 if arg[0] == ":" else -1
        i = 1
    while True:
        if i >= n or not arg[i].isdigit() or not arg[i].isascii():
            return None
        j = i
        while j < n and arg[j].isdigit() and arg[j].isascii():
            j += 1
        value, i = int(arg[i:j]), j
        sep = arg[i] if i < n else ""
        if sep == ":":
            in_date = 0
        if in_date > 0:
            if len(date) == 3:
                return None
            date.append(value)
            if not sep:
                break
            if sep in ("T", "t"):
                if i + 1 >= n:
                    break
                in_date = -1
            elif sep not in ("-", "/"):
                return None
            i += 1
            continue
        if len(times) == 2:
            return None
        times.append(value)
        if not sep:
            if in_date < 0 and len(times) < 2:
                return None
            break
        if sep != ":":
            return None
        in_date = 0
        i += 1
    date = [None] * (3 - len(date)) + date
    times = [None] * (2 - len(times)) + times
    return date + times


def _parse_time(arg: str, now: int):
    import time
    fields = _parse_fields(arg)
    if fields is None:
        return None
    year, mon, mday, hour, minute = fields
    today = time.localtime(now)
    bump = 0                      # which part advances until the time is ahead
    if year is None:
        year, bump = today.tm_year, 1
    elif year < 100:
        year += 1900
        while year < today.tm_year:
            year += 100
    if mon is None:
        mon, bump = today.tm_mon, 2
    if mday is None:
        mday, bump = today.tm_mday, 3
    step = 0
    if minute is None:
        hour = minute = 0
    elif hour is None:
        if bump != 3:
            return None
        bump, hour, step = 0, today.tm_hour, 3600
    if hour > 23 or minute > 59 or not 1 <= mon <= 12 or not 1 <= mday <= 31:
        return None
    val = _mktime(year, mon, mday, hour, minute)
    want_mday = mday
    while bump and (val <= now or time.localtime(val).tm_mday < want_mday):
        if bump == 3:
            mday += 1
            want_mday = mday
        elif bump == 2:
            if time.localtime(val).tm_mday < want_mday:
                mday = want_mday
            else:
                mon += 1
                if mon == 13:
                    mon, year = 1, year + 1
        else:
            year += 1
        val = _mktime(year, mon, mday, hour, minute)
    if step:
        while val <= now:
            val += step
    return val


def _mktime(year, mon, mday, hour, minute) -> int:
    """C's mktime: out-of-range days roll into the next month."""
    import time
    return int(time.mktime((year, mon, mday, hour, minute, 0, 0, 0, -1)))


def remote_option(arg: str) -> list:
    if not arg.startswith("-"):
        raise SyntaxUsageError(f"Remote option must start with a dash: {arg}")
    return [arg]


# rsync's --debug words: (name, help, levels added by -v counts 2..5).
DEBUG_WORDS = (
    ("ACL", "Debug extra ACL info"),
    ("BACKUP", "Debug backup actions (levels 1-2)"),
    ("BIND", "Debug socket bind actions"),
    ("CHDIR", "Debug when the current directory changes"),
    ("CONNECT", "Debug connection events (levels 1-2)"),
    ("CMD", "Debug commands+options that are issued (levels 1-2)"),
    ("DEL", "Debug delete actions (levels 1-3)"),
    ("DELTASUM", "Debug delta-transfer checksumming (levels 1-4)"),
    ("DUP", "Debug weeding of duplicate names"),
    ("EXIT", "Debug exit events (levels 1-3)"),
    ("FILTER", "Debug filter actions (levels 1-3)"),
    ("FLIST", "Debug file-list operations (levels 1-4)"),
    ("FUZZY", "Debug fuzzy scoring (levels 1-2)"),
    ("GENR", "Debug generator functions"),
    ("HASH", "Debug hashtable code"),
    ("HLINK", "Debug hard-link actions (levels 1-3)"),
    ("ICONV", "Debug iconv character conversions (levels 1-2)"),
    ("IO", "Debug I/O routines (levels 1-4)"),
    ("NSTR", "Debug negotiation strings"),
    ("OWN", "Debug ownership changes in users & groups (levels 1-2)"),
    ("PROTO", "Debug protocol information"),
    ("RECV", "Debug receiver functions"),
    ("SEND", "Debug sender functions"),
    ("TIME", "Debug setting of modified times (levels 1-2)"),
)

# What each -v count adds (the word and its level), from -vv up.
DEBUG_BY_VERBOSITY = (
    "BIND CMD CONNECT DEL DELTASUM DUP FILTER FLIST ICONV",
    "ACL BACKUP CONNECT2 DELTASUM2 DEL2 EXIT FILTER2 FLIST2 FUZZY GENR OWN RECV SEND TIME",
    "CMD2 DELTASUM3 DEL3 EXIT2 FLIST3 ICONV2 OWN2 PROTO TIME2",
    "CHDIR DELTASUM4 FLIST4 FUZZY2 HASH HLINK",
)


class DebugHelp(PysyncError):
    """--debug=help: the parse ends with ``output`` printed and exit 0 (as
    rsync prints it when it meets the word)."""
    code = 0

    def __init__(self):
        super().__init__("--debug=help")
        self.output = debug_help()


def debug_flags(arg: str) -> str:
    """Check every word of --debug=FLAGS (WORD, WORDn, ALL, NONE, HELP;
    any case); unknown words are refused in rsync's words."""
    names = {name for name, _ in DEBUG_WORDS}
    for item in arg.split(","):
        if not item:
            continue
        word = item if item[0].isdigit() else item.rstrip("0123456789")
        upper = word.upper()
        if upper == "HELP":
            raise DebugHelp
        if upper not in names and upper not in ("ALL", "NONE"):
            err = SyntaxUsageError(f'Unknown --debug item: "{word}"')
            err.bare = True          # rsync prints this one without its name
            raise err
    return arg


def debug_help() -> str:
    lines = ["Use OPT or OPT1 for level 1 output, OPT2 for level 2, etc.; OPT0 silences.", ""]
    lines += [f"{name:<10} {text}" for name, text in DEBUG_WORDS]
    lines += ["", f"{'ALL':<10} Set all --debug options (e.g. all4)",
              f"{'NONE':<10} Silence all --debug options (same as all0)",
              f"{'HELP':<10} Output this help message", "",
              "Options added at each level of verbosity:"]
    order = [name for name, _ in DEBUG_WORDS]
    for level, added in enumerate(DEBUG_BY_VERBOSITY, start=2):
        items = sorted(added.split(), key=lambda w: order.index(w.rstrip("0123456789")))
        lines.append(f"{level}) " + ",".join(items))
    return "\n".join(lines) + "\n"
