"""The bytecode of the modules a run imports, kept together in one file.

From a cold page cache, each of the ~70 modules a run imports costs the
interpreter its own synchronous lookups and reads (the source's inode, the
``.pyc``'s directory entry, inode and data), one after another.  This
module keeps the bytecode of pysync's modules, and of the standard-library
modules they import, in one file beside pysync's own ``.pyc`` files
(``__pycache__/_startup.<cache tag>.modcache``), so that a start reads one
file instead of seventy.

It is a cache with the ``.pyc`` rules, nothing more:

- Every entry records its source file's modification time (ns) and size.
  Before a module is served from the file its source is looked at
  (``stat``, which the import system does too); when either differs, the
  module is imported the usual way.  An edited module never runs stale.
- The file is named, as ``.pyc`` files are, for the interpreter and the
  optimization level (``-O``), and starts with the bytecode's magic
  number: a file from another interpreter is ignored.
- It is written when a process ends and imported a module the file does
  not hold (the first runs of each kind: local, client, server), from the
  ``.pyc`` the import system wrote or by compiling the source, to a temp
  file renamed into place.  Nothing is written when the interpreter
  writes no bytecode (``PYTHONDONTWRITEBYTECODE``, ``-B``) or the
  directory is not writable; an unreadable or damaged file is ignored.

At start-up this module imports nothing the interpreter has not loaded
already (no ``__future__`` either): it runs before the modules it serves.

Only the command line installs it (scripts/pysync, ``python -m pysync``),
never ``import pysync``.  A module served from it has the same
``__file__``, ``__path__``, ``__cached__`` and code (file names included,
for tracebacks) as one the import system loads itself.
"""

import marshal
import os
import sys

__all__ = ["install", "save", "cache_path"]

_MAGIC = b"PSMC"
_bootstrap = sys.modules["_frozen_importlib"]
_external = sys.modules["_frozen_importlib_external"]
_STDLIB = os.path.dirname(os.__file__)
_PACKAGE = os.path.dirname(os.path.abspath(__file__))

_finder = None


def cache_path() -> str:
    """Where the file lives: beside pysync's own bytecode (this follows
    ``sys.pycache_prefix`` as the import system does)."""
    pyc = _external.cache_from_source(os.path.join(_PACKAGE, "__init__.py"))
    opt = f".opt-{sys.flags.optimize}" if sys.flags.optimize else ""
    return os.path.join(os.path.dirname(pyc), f"_startup.{sys.implementation.cache_tag}{opt}.modcache")


def _header() -> bytes:
    return _MAGIC + _external.MAGIC_NUMBER + bytes([sys.flags.optimize])


_CODE = type(_header.__code__)


def _read_index(path: str):
    """(fd, {name: entry}) of a valid file, or None.  An entry is
    (name, is_package, source path, mtime_ns, size, offset, length)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = os.pread(fd, 4096, 0)
        want = _header()
        if head[:len(want)] != want or len(head) < len(want) + 4:
            raise ValueError
        n = int.from_bytes(head[len(want):len(want) + 4], "little")
        start = len(want) + 4
        raw = head[start:start + n]
        if len(raw) < n:
            raw += os.pread(fd, n - len(raw), start + len(raw))
        entries = marshal.loads(raw)
        index = {}
        for e in entries:
            name, is_pkg, src, mtime, size, offset, length = e
            if not (isinstance(name, str) and isinstance(src, str) and
                    isinstance(offset, int) and isinstance(length, int)):
                raise ValueError
            index[name] = e
        return fd, index
    except Exception:
        os.close(fd)
        return None


class _Finder:
    """A meta-path finder and loader serving the modules the file holds."""

    def __init__(self, path: str, fd: int, index: dict):
        self.path, self.fd, self.index = path, fd, index
        self.served: set = set()
        self.before = set(sys.modules)      # what the interpreter loaded first

    def find_spec(self, name, path=None, target=None):
        e = self.index.get(name)
        if e is None:
            return None
        try:
            st = os.stat(e[2])
        except OSError:
            return None
        if st.st_mtime_ns != e[3] or st.st_size != e[4]:
            return None         # the source changed: the usual import
        spec = _bootstrap.ModuleSpec(name, self, origin=e[2], is_package=e[1])
        if e[1]:
            spec.submodule_search_locations = [os.path.dirname(e[2])]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        e = self.index[module.__spec__.name]
        data = os.pread(self.fd, e[6], e[5])
        try:
            code = marshal.loads(data)
        except Exception:
            code = None
        if len(data) != e[6] or type(code) is not _CODE:
            # a damaged file: this module from its source instead
            code = compile(_read(e[2]), e[2], "exec", dont_inherit=True)
        self.served.add(module.__spec__.name)
        exec(code, module.__dict__)

    # what tools ask a loader (linecache, inspect, pkgutil)
    def get_filename(self, name=None):
        return self.index[name][2]

    def get_source(self, name):
        return _read(self.index[name][2]).decode()

    def is_package(self, name):
        return self.index[name][1]


def install() -> None:
    """Serve modules from the file (when it is there and valid) and have
    it written at exit when this run imported a module it lacks."""
    global _finder
    if _finder is not None:
        return
    try:
        path = cache_path()
    except Exception:       # no bytecode cache here (sys.implementation.cache_tag None)
        return
    got = _read_index(path)
    _finder = _Finder(path, *got) if got else _Finder(path, -1, {})
    if got:
        sys.meta_path.insert(0, _finder)
    if not sys.dont_write_bytecode:
        import atexit
        atexit.register(save)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _eligible(mod):
    """The source path of a module the file may hold: pysync's own and the
    standard library's pure-Python modules, loaded from source or
    bytecode by the import system (or by this cache)."""
    spec = getattr(mod, "__spec__", None)
    if spec is None or spec.origin is None or not spec.has_location:
        return None
    name = spec.name
    origin = spec.origin
    if not origin.endswith(".py"):
        return None
    if isinstance(spec.loader, _Finder):
        return origin
    if not isinstance(spec.loader, _external.SourceFileLoader):
        return None
    if name.startswith("pysync."):
        return origin
    if os.path.dirname(origin) in (_STDLIB, os.path.join(_STDLIB, name.split(".")[0])):
        return origin
    return None


def _bytecode(mod, src, st):
    """The marshalled code of ``mod`` for source ``src`` as it is now
    (``st``): from its valid ``.pyc``, else compiled."""
    cached = getattr(mod, "__cached__", None)
    if cached:
        try:
            data = _read(cached)
        except OSError:
            data = b""
        if (len(data) > 16 and data[:4] == _external.MAGIC_NUMBER and data[4:8] == b"\0\0\0\0" and
                int.from_bytes(data[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF and
                int.from_bytes(data[12:16], "little") == st.st_size & 0xFFFFFFFF):
            return data[16:]
    try:
        source = _read(src)
        code = compile(source, src, "exec", dont_inherit=True, optimize=sys.flags.optimize)
    except Exception:
        return None
    return marshal.dumps(code)


def save() -> None:
    """Write the file anew when this process imported an eligible module
    it does not hold: the entries still valid, then the new modules in the
    order they were imported.  Never raises."""
    f = _finder
    if f is None or sys.dont_write_bytecode:
        return
    try:
        _save(f)
    except Exception:
        pass


def _save(f: _Finder) -> None:
    new = []
    for name, mod in list(sys.modules.items()):
        if name in f.served or name in f.before or name == "__main__":
            continue
        src = _eligible(mod)
        if src is not None:
            new.append((name, mod, src))
    if not new:
        return
    import fcntl
    os.makedirs(os.path.dirname(f.path), exist_ok=True)
    lock = os.open(f.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # one writer at a time: the two processes of a local copy end together
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge(f, new)
    finally:
        os.close(lock)


def _merge(f: _Finder, new: list) -> None:
    # what is on disk now (another process may have written it meanwhile)
    current = _read_index(f.path)
    old_fd, old_index = current if current else (f.fd, f.index)
    blobs = []
    seen = set()
    for e in old_index.values():
        try:
            st = os.stat(e[2])
        except OSError:
            continue
        if (st.st_mtime_ns, st.st_size) != (e[3], e[4]):
            continue
        data = os.pread(old_fd, e[6], e[5])
        if len(data) == e[6]:
            blobs.append((e[0], e[1], e[2], e[3], e[4], data))
            seen.add(e[0])
    if current and old_fd != f.fd:
        os.close(old_fd)
    added = False
    for name, mod, src in new:
        if name in seen:
            continue
        try:
            st = os.stat(src)
        except OSError:
            continue
        data = _bytecode(mod, src, st)
        if data is None:
            continue
        is_pkg = getattr(mod, "__path__", None) is not None
        blobs.append((name, is_pkg, src, st.st_mtime_ns, st.st_size, data))
        seen.add(name)
        added = True
    if not added:
        return
    _write(f.path, blobs)


def _write(path: str, blobs: list) -> None:
    head = _header()
    # offsets depend on the index's length, which depends on the offsets:
    # marshal writes ints of one size here, so two passes settle it
    offset_guess = 0
    for _ in range(3):
        entries, offset = [], offset_guess
        for name, is_pkg, src, mtime, size, data in blobs:
            entries.append((name, is_pkg, src, mtime, size, offset, len(data)))
            offset += len(data)
        index = marshal.dumps(tuple(entries))
        start = len(head) + 4 + len(index)
        if start == offset_guess:
            break
        offset_guess = start
    else:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(head + len(index).to_bytes(4, "little") + index)
            for blob in blobs:
                out.write(blob[5])
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
