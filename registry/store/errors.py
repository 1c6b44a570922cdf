"""Storage errors the command line reports, importable without loading SQLAlchemy."""

from __future__ import annotations


class SchemaError(RuntimeError):
    """The database is not ready for this version of the registry."""
