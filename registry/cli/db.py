"""`jpr db ...`: schema migrations and online backups."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from registry.cli import output
from registry.cli.output import add_json_flag, emit_json
from registry.settings import load_settings

if TYPE_CHECKING:
    from registry.store.database import Database

# Pages copied per step of an online backup: between steps writers get the database (a page is 4 KiB,
# so 1024 pages is 4 MiB), and the progress line moves.
BACKUP_STEP_PAGES = 1024

# SQLAlchemy and Alembic are imported by the commands that use them, not with this module:
# `jpr --help` and the platform commands (lookup, report, health) start without them.


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    db = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = db.add_parser("upgrade", help="migrate the schema to this version's head")
    current = db.add_parser("current", help="print the schema revision of the database and of this code")
    backup = db.add_parser("backup", help="online backup of an SQLite registry database (safe while serving)")
    backup.add_argument("target", help="file to write; must not exist")
    for parser in (upgrade, current, backup):
        parser.add_argument("--data-dir", help="data directory (env JPR_DATA_DIR; default ./jpr-data)")
        parser.add_argument("--database-url", help="SQLAlchemy URL (env JPR_DATABASE_URL)")
        add_json_flag(parser)
    upgrade.set_defaults(run=_upgrade)
    current.set_defaults(run=_current)
    backup.set_defaults(run=_backup)


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[Database]:
    from registry.datadir import DataDir
    from registry.store.database import Database

    settings = load_settings({"data_dir": args.data_dir, "database_url": args.database_url})
    if not settings.database_url:  # the SQLite file in the data directory: SQLite would only say "unable to open"
        DataDir(settings.data_dir).require()
    database = Database(settings.effective_database_url)
    try:
        yield database
    finally:
        database.dispose()


def _upgrade(args: argparse.Namespace) -> int:
    from registry.store import schema

    with _database(args) as database:
        before = schema.current_revision(database)
        schema.upgrade(database)
        if args.json:
            emit_json({"database": database.describe(), "revision_before": before, "revision": schema.head_revision()})
        else:
            print(f"{database.describe()}: schema {before or 'empty'} -> {schema.head_revision()}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from registry.store import schema

    with _database(args) as database:
        current = schema.current_revision(database)
    if args.json:
        emit_json({"database_revision": current, "code_revision": schema.head_revision()})
        return 0
    print(f"database: {current or 'empty'}")
    print(f"code:     {schema.head_revision()}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    with _database(args) as database:
        pass
    if not database.is_sqlite:
        raise ValueError("jpr db backup copies SQLite databases; back up PostgreSQL with pg_dump (docs/operations.md)")
    source_path = database.url.split("///", 1)[1]
    if not Path(source_path).is_file():
        raise ValueError(f"no registry database at {source_path}: `jpr db upgrade` creates it (`jpr init` makes a whole data directory)")
    target = Path(args.target)
    progress = output.Progress("backup", shown=output.progress_shown(args), total=0, unit="pages")
    # sqlite3's backup API copies a consistent snapshot while writers go on. It copies in steps, for the
    # progress line; the read transaction held across them keeps one snapshot, where a write between
    # two steps would otherwise restart the copy (and a busy registry's might never end).
    with closing(sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, isolation_level=None)) as source:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
        _create_backup_file(target)
        with closing(sqlite3.connect(target)) as copy:
            source.backup(copy, pages=BACKUP_STEP_PAGES, progress=lambda _status, left, total: progress.of(total, total - left), sleep=0)
        source.execute("COMMIT")
    progress.close()
    with closing(sqlite3.connect(target)) as copy:
        verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
    if args.json:
        emit_json({"database": source_path, "file": str(target), "integrity": verdict})
    else:
        print(f"backed up {source_path} to {target} (integrity {verdict})")
    return 0 if verdict == "ok" else 1


def _create_backup_file(target: Path) -> None:
    """A backup holds the whole registry database: owner-only like the database itself, never over another file."""
    from registry.store.database import create_private_file

    try:
        create_private_file(target)
    except FileExistsError:
        raise ValueError(f"{target} exists; refusing to overwrite it") from None
