"""``pysync.sync()`` for scripts: the command line's options as keywords,
a result with numbers instead of text to parse, and a typed exception
carrying rsync's exit code.

    result = pysync.sync("/srv/data/", "backup:/snapshots/today/",
                         archive=True, delete=True, link_dest=["../yesterday"])
    print(result.stats["literal_data"], len(result.files))

Keyword names are the long option names with '-' spelled '_'
(``delete_after=True``, ``checksum_choice="xxh3"``, ``rsh="ssh -p 2222"``,
``exclude=["*.o", "tmp/"]``).  They go through the same option table as
the command line, so an option means the same in both.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from .errors import PysyncError, SyntaxUsageError
from .options import OPTION_TABLE, Options, _apply, finish_options

__all__ = ["sync", "SyncResult", "FileRecord", "SyncError", "Progress"]

_BY_NAME = {}
for _row in OPTION_TABLE:
    for _n in _row[0]:
        _BY_NAME[_n.replace("-", "_")] = _row
_NOT_FOR_API = {"server", "sender", "local_server", "help", "version", "rsh_command"}


@dataclass(frozen=True)
class FileRecord:
    name: str          # path relative to the transfer root ("sub/" for a dir)
    action: str        # "transfer", "change", "delete", "hardlink"
    itemize: str       # rsync's 11-letter code (e.g. ">f+++++++++"), "*deleting", "hf"
    bytes: int         # file size for transfers, else 0


@dataclass(frozen=True)
class Progress:
    name: str
    bytes_done: int
    size: int
    finished: bool


@dataclass
class SyncResult:
    exit_code: int
    stats: dict
    files: list = field(default_factory=list)
    errors: list = field(default_factory=list)   # the error lines rsync would print


class SyncError(PysyncError):
    """The run failed; ``code`` is rsync's exit code and ``result`` what
    was done before the failure."""

    def __init__(self, message: str, code: int, result: SyncResult | None = None):
        super().__init__(message, code)
        self.result = result


def options_from_keywords(sources, destination, kw: dict) -> Options:
    opts = Options()
    for key, value in kw.items():
        row = _BY_NAME.get(key)
        if row is None or key in _NOT_FOR_API:
            raise SyncError(f"unknown option: {key}", 1)
        kind = row[2]
        name = row[0][0] if row[0] else key
        if kind in ("flag", "alias"):
            _apply(opts, row, negate=not value, name=name)
        elif kind == "count":
            setattr(opts, row[3], int(value))
        elif kind == "const":
            if value:
                _apply(opts, row, name=name)
        elif kind in ("filter", "filter_file", "altdest", "append"):
            # Repeatable options: one value or a list of them.
            for item in ([value] if isinstance(value, (str, bytes, os.PathLike)) else value):
                _apply(opts, row, os.fsdecode(item), name=name)
        elif kind == "value":
            _apply(opts, row, os.fsdecode(value) if isinstance(value, (bytes, os.PathLike))
                   else str(value), name=name)
        else:
            raise SyncError(f"option {key} cannot be given through the API", 1)
    finish_options(opts)
    srcs = [sources] if isinstance(sources, (str, bytes, os.PathLike)) else list(sources)
    opts.args = [os.fsdecode(s) for s in srcs] + [os.fsdecode(destination)]
    return opts


def _stats(report, outcome) -> dict:
    s = report.stats
    d = s.deleted
    return {
        "num_files": s.num_files,
        "num_created_files": sum(s.created.values()),
        "num_deleted_files": d.total if d else 0,
        "num_regular_files_transferred": s.files_transferred,
        "total_file_size": s.total_size,
        "total_transferred_file_size": s.transferred_size,
        "literal_data": s.literal_data,
        "matched_data": s.matched_data,
        "offloaded_data": s.offloaded,
        "file_list_size": s.flist_size,
        "total_bytes_sent": outcome.sent,
        "total_bytes_received": outcome.received,
        "elapsed_seconds": outcome.elapsed,
    }


def _record(rec) -> FileRecord:
    name, action, code, size = rec
    return FileRecord(os.fsdecode(name), action, code, size)


def sync(source, destination, *, progress=None, **options) -> SyncResult:
    """Copy ``source`` (a path or a list of paths; ``host:path`` for a
    remote) to ``destination`` as ``pysync [options] source... destination``
    would.  Raises SyncError (with ``.code``) when the run does not end
    with exit code 0."""
    from .client import run_transfer
    try:
        opts = options_from_keywords(source, destination, options)
    except SyntaxUsageError as e:
        raise SyncError(str(e), 1) from None
    out, err = io.StringIO(), io.StringIO()
    callback = None
    if progress is not None:
        def callback(name, done, size, final):
            progress(Progress(os.fsdecode(name), done, size, final))
    try:
        outcome = run_transfer(opts, stdout=out, stderr=err, progress=callback, records=True)
    except PysyncError as e:
        raise SyncError(str(e), e.code) from None
    report = outcome.report
    errors = [line for line in err.getvalue().splitlines() if line.strip()]
    result = SyncResult(outcome.code, _stats(report, outcome), [_record(r) for r in report.records],
                        errors)
    if outcome.code:
        detail = errors[-1] if errors else f"exit code {outcome.code}"
        raise SyncError(detail, outcome.code, result)
    return result
