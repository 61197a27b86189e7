"""Reading the program's own files ahead at start-up, for a cold page cache.

A run imports about a hundred modules.  From a cold disk each import is a
synchronous lookup and read, one after another, while the interpreter
waits: on a local no-op that is about half of the run.  :func:`start` hands
those reads to the kernel early, from a helper thread: it looks each file
up and asks for its pages (``POSIX_FADV_WILLNEED``), so the disk works on
them while the main thread runs the modules it already has.

Nothing here imports or runs anything, and nothing it does can change a
run's result: a file that is not there is skipped, and any error ends the
helper quietly.  The helper stops (waiting for the file in hand) before
the process forks -- a local copy's child starts with no thread but its
own -- and at exit.  Only the command line starts it, never the script API.
"""

from __future__ import annotations

import _thread
import os
import sys

__all__ = ["start", "stop", "files"]

# Standard-library modules every run imports after the interpreter's own
# start-up (threads, the wire's struct, the receiving side's queue, the
# socket pair, user and group names), as (directory under the library,
# module file stem); extension modules are in lib-dynload.
_STDLIB = ((".", "__future__"), (".", "threading"), (".", "_weakrefset"), (".", "functools"),
           (".", "types"), ("collections", "__init__"), ("collections", "abc"), (".", "keyword"),
           (".", "operator"), (".", "reprlib"), (".", "struct"))
_DYNLOAD = ("_struct", "select", "_socket", "_queue", "grp")
# Package directories, in about the order a run first needs them, and the
# modules no local or remote-shell run loads (the SSH client, the script API).
_PACKAGES = (".", "protocol", "engine", "io", "transport")
_NEVER = ("api.py", "knownhosts.py")
_NEVER_PREFIX = "ssh"

_started = _stopping = False
_busy = _thread.allocate_lock()     # held by the helper while it runs


def files(package_dir: str | None = None, cache: str | None = None) -> list:
    """The files to read ahead, in order: the standard library's modules
    above, the cffi backend, then pysync's own modules (each as its cached
    bytecode when that exists, else its source) and compiled modules.
    With ``cache`` (the file of pysync/modcache.py that serves this run's
    modules), that file instead of the modules' own, after the extension
    modules every run loads.  A path may name a file that is not there (the reader skips
    it)."""
    if package_dir is None:
        package_dir = os.path.dirname(os.path.abspath(__file__))
    opt = f".opt-{sys.flags.optimize}" if sys.flags.optimize else ""
    tag = sys.implementation.cache_tag
    suffixes = _extension_suffixes()
    out = []
    lib = os.path.dirname(os.__file__)
    for sub, stem in () if cache else _STDLIB:
        out.append(_compiled(os.path.normpath(os.path.join(lib, sub)), stem, tag, opt))
    for name in _DYNLOAD:
        out += [os.path.join(lib, "lib-dynload", name + s) for s in suffixes[:1]]
    if cache:
        out.append(cache)
    # what only a run that moves data loads: array, the compiled module
    # and its cffi backend
    out += [os.path.join(lib, "lib-dynload", "array" + s) for s in suffixes[:1]]
    for entry in sys.path:      # the cffi backend, where the import system will find it
        backend = os.path.join(entry or ".", "_cffi_backend" + suffixes[0])
        if os.path.exists(backend):
            out.append(backend)
            break
    for sub in _PACKAGES:
        d = os.path.normpath(os.path.join(package_dir, sub))
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            if name in _NEVER or name.startswith(_NEVER_PREFIX):
                continue
            if name.endswith(".py") and not cache:
                out.append(_compiled(d, name[:-3], tag, opt))
            elif name.endswith(".so"):
                out.append(os.path.join(d, name))
    return out


def _extension_suffixes() -> list:
    import _imp
    return _imp.extension_suffixes()


def _compiled(directory: str, stem: str, tag: str, opt: str) -> str:
    """Where the import system looks for a module's bytecode (and reads the
    source instead when it is not there)."""
    name = f"{stem}.{tag}{opt}.pyc"
    prefix = sys.pycache_prefix
    if prefix:
        pyc = os.path.join(prefix + os.path.abspath(directory), name)
    else:
        pyc = os.path.join(directory, "__pycache__", name)
    return pyc if os.path.exists(pyc) else os.path.join(directory, stem + ".py")


def _serving_cache() -> str | None:
    """The module cache file when pysync/modcache.py serves this run from
    one (the command line installs it before this starts)."""
    modcache = sys.modules.get("pysync.modcache")
    finder = getattr(modcache, "_finder", None)
    return finder.path if finder is not None and finder.index else None


def _read_ahead(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


def _resident(path: str) -> bool:
    """Whether the start of ``path`` is in the page cache: a read that may
    not wait for the disk succeeds.  False when it would wait, and when
    there is no telling (no such file, a file system without such reads)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _run() -> None:
    try:
        # A module every run imports late: cached, and so is the rest
        # (the common case, a warm start, then costs one read).
        here = os.path.dirname(os.path.abspath(__file__))
        cache = _serving_cache()
        probe = cache or _compiled(here, "session", sys.implementation.cache_tag,
                                   f".opt-{sys.flags.optimize}" if sys.flags.optimize else "")
        if hasattr(os, "RWF_NOWAIT") and _resident(probe):
            return
        for path in files(cache=cache):
            if _stopping:
                return
            try:
                _read_ahead(path)
            except OSError:
                pass
    except Exception:
        pass        # never the run's business
    finally:
        _busy.release()


def start() -> None:
    """Start the helper (once per process; a no-op where the platform
    lacks posix_fadvise)."""
    global _started
    if _started or not hasattr(os, "posix_fadvise"):
        return
    import atexit
    _started = True
    _busy.acquire()
    try:
        _thread.start_new_thread(_run, ())
    except RuntimeError:
        _busy.release()
        return
    os.register_at_fork(before=stop)
    atexit.register(stop)


def stop() -> None:
    """Stop the helper and wait for the file it has in hand."""
    global _stopping
    _stopping = True
    with _busy:
        pass
