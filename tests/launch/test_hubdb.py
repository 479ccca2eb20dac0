"""The hub's sqlite settings (launch/hubdb.py): write-ahead log and synchronous=NORMAL
by default, sqlite's own journal when turned off, other databases untouched."""

from __future__ import annotations

import pytest
from dsbuild.launch import hubdb
from traitlets.config import Config


@pytest.fixture
def hook():
    """No tune_sqlite hook before (tests that load a generated configuration register it;
    it is process-wide), none after."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def remove():
        if hubdb._CONFIG:
            event.remove(Engine, "connect", hubdb._on_connect)
            hubdb._CONFIG.clear()

    remove()
    yield
    remove()


def modes(path) -> tuple[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as db:
            return db.execute(text("PRAGMA journal_mode")).scalar(), db.execute(text("PRAGMA synchronous")).scalar()
    finally:
        engine.dispose()


def test_the_hubs_sqlite_commits_to_a_write_ahead_log(tmp_path, hook):
    assert modes(tmp_path / "before.sqlite") == ("delete", 2)  # sqlite's own: rollback journal, FULL
    hubdb.tune_sqlite(Config())
    assert modes(tmp_path / "hub.sqlite") == ("wal", 1)  # NORMAL


def test_turned_off_it_is_sqlites_own_journal_and_the_last_configuration_wins(tmp_path, hook):
    hubdb.tune_sqlite(Config())
    off = Config()
    off.HubDatabase.sqlite_wal = False
    hubdb.tune_sqlite(off)  # a second load of the configuration (one hook, the new settings)
    assert modes(tmp_path / "hub.sqlite") == ("delete", 2)
    assert hubdb.pragmas(off) == () and hubdb.pragmas(Config()) == hubdb.PRAGMAS
