"""The sender's walk keeps each entry's source path as its directory's
(shared) plus the name: it must give back exactly the path it walked."""

import os

import pytest

from pysync.engine.scan import Scanner


class _Opts:
    recursive = True
    one_file_system = False
    hard_links = False
    devices = specials = links = True
    relative = False


class _Log:
    def error(self, text):
        raise AssertionError(text)

    info = warning = error


def _tree(root):
    for d in ("a", "a/b", "a/b/c", "e"):
        os.makedirs(os.path.join(root, d))
    for f in ("top", "a/one", "a/b/two", "a/b/c/three", "e/four"):
        with open(os.path.join(root, f), "wb") as fh:
            fh.write(f.encode())
    os.symlink("top", os.path.join(root, "link"))


@pytest.mark.parametrize("form", ["contents", "dir", "relative"])
def test_every_entry_src_is_the_walked_path(tmp_path, form):
    _tree(str(tmp_path / "src"))
    opts = _Opts()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        if form == "contents":
            arg, base = b"src/", b"src/"
        elif form == "dir":
            arg, base = b"src", b""
        else:
            opts.relative = True
            arg, base = b"src/./", b"src/"
        entries = Scanner(opts, _Log()).scan([arg])
        names = sorted(e.name for e in entries)
        assert len(names) == 11
        for e in entries:
            if e.name in (b".", b"src"):
                assert os.path.samefile(e.src, b"src")
                continue
            expected = base + e.name
            assert e.src == expected, (e.name, e.src)
            assert os.lstat(e.src).st_mode == e.mode
    finally:
        os.chdir(cwd)
