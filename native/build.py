"""cffi builder for pysync._native (API mode, out-of-line).

``pip install .`` reaches ``ffibuilder`` through ``cffi_modules`` in
setup.py.  For a build in place, run ``python native/build.py``: it compiles
under ``build/cffi/`` and copies the extension into ``pysync/``.

The cdef is native/pysync_native.h itself, minus its preprocessor lines;
``#define NAME value`` becomes ``#define NAME ...`` so that the compiler
supplies the value (this is how PYSYNC_NATIVE_ABI reaches Python).
"""

import glob
import os
import re
import shutil
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HEADER = os.path.join(HERE, "pysync_native.h")
MODULE = "pysync._native"

_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)\s+\S")


def cdef_from_header(text):
    """Return the header text as cffi cdef source."""
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            m = _DEFINE.match(line)
            if m:
                out.append("#define %s ..." % m.group(1))
            continue
        out.append(line)
    return "\n".join(out)


def make_ffibuilder(absolute_paths=False):
    """A configured FFI builder.

    setuptools wants source paths relative to the project root, which is the
    working directory of ``pip install``; FFI.compile() changes directory
    into its tmpdir, so the in-place build needs absolute ones.
    """
    def name(path):
        return path if absolute_paths else os.path.relpath(path, ROOT)

    with open(HEADER, encoding="utf-8") as f:
        header = f.read()
    builder = FFI()
    builder.cdef(cdef_from_header(header))
    builder.set_source(
        MODULE,
        '#include "pysync_native.h"\n',
        sources=[name(p) for p in sorted(glob.glob(os.path.join(HERE, "*.c")))],
        include_dirs=[name(HERE)],
        depends=[name(HEADER)],
        extra_compile_args=["-O3"],
    )
    return builder


ffibuilder = make_ffibuilder()


def build_in_place():
    """Compile into build/cffi/ and copy the extension into pysync/,
    removing any other build of it there (an `_native.abi3.so` left by
    `pip install -e .` would otherwise shadow or be shadowed by this one)."""
    built = make_ffibuilder(absolute_paths=True).compile(
        tmpdir=os.path.join(ROOT, "build", "cffi"), verbose=False)
    target = os.path.join(ROOT, "pysync", os.path.basename(built))
    for old in glob.glob(os.path.join(ROOT, "pysync", "_native*.so")):
        if old != target:
            os.remove(old)
    shutil.copy2(built, target)
    return target


if __name__ == "__main__":
    print("built", os.path.relpath(build_in_place()), file=sys.stderr)
