"""FileEntry's compact form: the common fields are slots, the optional
ones live in an _Extra made only for the entries that have one."""

import stat
import sys

import pytest

from pysync.protocol.flist import FileEntry, SourceDir

OPTIONAL = {"rdev": (0, 0), "link": None, "sum": None, "hlink": None, "dev": None,
            "ino": None, "xattrs": None, "xattr_ndx": -1, "acl": None, "def_acl": None, "atime": 0}
VALUES = {"rdev": (8, 3), "link": b"target", "sum": b"\x01" * 16, "hlink": 0, "dev": 2049,
          "ino": 12, "xattrs": (), "xattr_ndx": 4, "acl": object(), "def_acl": object(), "atime": 1_500_000_000}


def test_plain_entry_has_no_extra_and_the_defaults():
    e = FileEntry(b"d/f", stat.S_IFREG | 0o644, 10, 1_700_000_000, 5)
    assert e._x is None
    for field, default in OPTIONAL.items():
        assert getattr(e, field) == default, field
        setattr(e, field, default)          # setting the default makes no extra
    assert e._x is None
    assert sys.getsizeof(e) <= 16 + 16 + 8 * 11


@pytest.mark.parametrize("field", sorted(OPTIONAL))
def test_each_optional_field_round_trips_alone(field):
    e = FileEntry(b"x", stat.S_IFREG | 0o600)
    setattr(e, field, VALUES[field])
    assert getattr(e, field) is VALUES[field]
    for other, default in OPTIONAL.items():
        if other != field:
            assert getattr(e, other) == default, other
    setattr(e, field, OPTIONAL[field])
    assert getattr(e, field) == OPTIONAL[field]


def test_constructor_optional_arguments():
    e = FileEntry(b"l", stat.S_IFLNK | 0o777, 6, link=b"target")
    assert (e.link, e.sum, e.rdev) == (b"target", None, (0, 0))
    d = FileEntry(b"c", stat.S_IFCHR | 0o600, rdev=(1, 3))
    assert d.rdev == (1, 3) and d.link is None
    s = FileEntry(b"f", stat.S_IFREG | 0o600, sum=b"s" * 16)
    assert s.sum == b"s" * 16 and s.hlink is None


def test_src_is_a_path_or_a_shared_directory_plus_name():
    e = FileEntry(b"top", stat.S_IFDIR | 0o755)
    assert e.src is None
    e.src = b"/abs/top"
    assert e.src == b"/abs/top"
    shared = SourceDir(b"/abs/top/sub", b"top/sub/")
    f = FileEntry(b"top/sub/file", stat.S_IFREG | 0o644)
    f.src = shared
    assert f.src == b"/abs/top/sub/file"
    g = FileEntry(b"file", stat.S_IFREG | 0o644)
    g.src = SourceDir(b"/", b"")
    assert g.src == b"//file"           # as the walk has always joined them


def test_report_keeps_item_records_only_when_asked():
    from pysync.protocol.constants import ITEM_IS_NEW, ITEM_TRANSFER
    from pysync.report import Report

    class Opts:
        log_format = None
        itemize = verbose = progress = quiet = dry_run = 0
        checksum = owner = group = times = False

    e = FileEntry(b"f", stat.S_IFREG | 0o644, 3)
    for keep in (False, True):
        r = Report(Opts(), am_server=True)
        r.keep_records = keep
        r.item(e, ITEM_TRANSFER | ITEM_IS_NEW)
        r.deleted(b"gone")
        assert len(r.records) == (2 if keep else 0)
