"""A database that refuses under a serving registry: each background pass says why in one line, no traceback.

The follower of the event log, the expiry recorder and the transparency log's checkpointer
poll the database on their own threads. When it goes away (here: the SQLite file replaced
by an empty one, as an operator's mistake would), each logs the database's own reason once
per failure, which is what an operator acts on; a traceback is kept for what is a bug.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from registry.datadir import DataDir
from registry.server.app import start
from registry.settings import load_settings
from registry.store import schema
from registry.store.database import Database, log_background_failure


def test_the_helper_gives_one_line_for_a_database_refusal_and_a_traceback_for_a_bug(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    log = logging.getLogger("jpr.test")
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM events"))
    except Exception:
        log_background_failure(log, "following failed")
    finally:
        engine.dispose()
    try:
        raise ValueError("a bug")
    except ValueError:
        log_background_failure(log, "expiry failed")
    refused, bug = caplog.records
    assert refused.getMessage() == "following failed: the database refused: no such table: events" and refused.exc_info is None
    assert bug.getMessage() == "expiry failed" and bug.exc_info is not None


def test_every_background_pass_logs_the_reason_without_a_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name="jpr-test", admin_name="admin", endpoint="127.0.0.1:0")
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "expiry_interval_seconds": 1, "checkpoint_interval_seconds": 0.2}
    settings = load_settings(flags, environ={})
    database = Database(settings.effective_database_url)
    schema.upgrade(database)
    database.dispose()
    running = start(settings)
    try:
        (data_dir / "registry.db").rename(tmp_path / "moved.db")
        (data_dir / "registry.db").touch()
        running.database.engine.dispose()  # every thread's next connection opens the empty file
        caplog.set_level(logging.INFO)
        deadline = time.monotonic() + 10
        wanted = {"cannot follow the event log", "integrating the transparency log", "recording expired listings"}
        while time.monotonic() < deadline and not all(any(w in r.getMessage() for r in caplog.records) for w in wanted):
            time.sleep(0.1)
    finally:
        running.stop(grace=None)
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    for words in wanted:
        assert any(words in r.getMessage() and "the database refused: no such table" in r.getMessage() for r in failures), words
    assert [r.getMessage() for r in failures if r.exc_info] == []
