"""Schema migrations (Alembic) and the check that code and database agree.

`jpr init` and `jpr db upgrade` migrate; `jpr serve` refuses a database whose
revision is not the code's head, and says which command fixes it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from registry.store.database import Database
from registry.store.errors import SchemaError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate the database to `revision` in one transaction per step."""
    config = _config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def require_current(db: Database) -> None:
    """Refuse to serve a database older or newer than this code."""
    current, head = current_revision(db), head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError(f"{db.describe()} has no registry schema; run `jpr db upgrade` (or `jpr init` for a new registry)")
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current in known:
        raise SchemaError(f"{db.describe()} is at schema revision {current}, this registry needs {head}; run `jpr db upgrade`")
    raise SchemaError(
        f"{db.describe()} is at schema revision {current}, which this registry does not know: "
        "it was migrated by a newer version; run that version (or restore a backup made for this one)"
    )
