"""pysync: rsync rebuilt in Python, wire-compatible with stock rsync
(protocol 31/32).  Scripts use :func:`sync`; the command line is
``pysync`` (or ``python -m pysync``)."""

__version__ = "0.1.0"

__all__ = ["__version__", "sync", "SyncResult", "FileRecord", "SyncError", "Progress"]

_API_NAMES = frozenset(__all__[1:])


def __getattr__(name):
    # The script API (and the dataclasses it is built on) loads on first use,
    # so the command line and the remote server do not pay for it.
    if name in _API_NAMES:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
