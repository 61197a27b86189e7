"""pysync: rsync rebuilt in Python, wire-compatible with stock rsync
(protocol 31/32).  Scripts use :func:`sync`; the command line is
``pysync`` (or ``python -m pysync``)."""

__version__ = "0.1.0"

from .api import FileRecord, Progress, SyncError, SyncResult, sync  # noqa: E402

__all__ = ["__version__", "sync", "SyncResult", "FileRecord", "SyncError", "Progress"]
