"""pysync: rsync rebuilt in Python, wire-compatible with stock rsync
(protocol 31/32)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
