"""Settings for every test process and the pysync/rsync processes the
tests start (tests/ and interop/ both).

- The directory of this interpreter goes on PATH ahead of any version
  manager's shims, so ``pysync`` and ``python3`` in a remote command
  (``--rsync-path=pysync``, the fake remote shell) are this interpreter's
  own scripts, not a shim (pyenv's costs ~0.1 s per start).  Entries
  before the shims (a checkout's own wrapper) keep their place.
- Started interpreters keep compiled bytecode in one cache for the run
  (``PYTHONPYCACHEPREFIX``, removed when the run ends): an environment
  with PYTHONDONTWRITEBYTECODE would otherwise recompile every module at
  every pysync start.

Neither changes what is tested, only what each start costs."""

import os
import sys
import tempfile

_bin = os.path.dirname(sys.executable)
_path = os.environ.get("PATH", "").split(os.pathsep)
_shims = [i for i, d in enumerate(_path) if os.path.basename(d.rstrip("/")) == "shims"]
if _shims and _bin not in _path[:_shims[0]]:
    _path.insert(_shims[0], _bin)
    os.environ["PATH"] = os.pathsep.join(_path)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
if "PYTHONPYCACHEPREFIX" not in os.environ:
    _prefix = os.environ["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="pysync-pyc-")

    def pytest_unconfigure(config):
        # the run's bytecode (and pysync/modcache.py's file) go with it
        import shutil
        shutil.rmtree(_prefix, ignore_errors=True)
