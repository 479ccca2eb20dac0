"""How the hub uses its sqlite database (dsbuild's hubs: `dsbuild hub up` and the Helm
chart). Under many logins and starts, about half of the hub's time goes to its
database, a quarter to commits, and each commit of sqlite's default rollback journal
waits for the disk twice, holding up the hub's one event loop (docs/benchmarks.md,
"Scale"). In write-ahead-log mode with synchronous=NORMAL a commit appends to the log
and waits for no disk, and the database stays consistent after a crash (a power loss
may lose the last commits, never corrupt it).

`tune_sqlite(c)` in jupyterhub_config.py registers a connect hook that applies the
`HubDatabase` settings (read when the hub connects, so that later configuration wins)
to sqlite connections only; other databases are left alone."""

from __future__ import annotations

from traitlets import Bool
from traitlets.config import Config, Configurable

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


class HubDatabase(Configurable):
    sqlite_wal = Bool(
        True,
        help="""Use sqlite in write-ahead-log mode with synchronous=NORMAL: commits wait for
        no disk write (the hub's database commits are a quarter of its time under load).
        The database stays consistent after a crash; a power loss may lose the last
        commits. Turn off (sqlite's own rollback journal, synchronous=FULL) for a database
        on a network filesystem such as NFS, where WAL's shared memory does not work.""",
    ).tag(config=True)


def pragmas(config: Config) -> tuple[str, ...]:
    """The statements a new sqlite connection of the hub runs (pure)."""
    return PRAGMAS if HubDatabase(config=config).sqlite_wal else ()


_CONFIG: list[Config] = []  # the hub's configuration, read at each connect


def tune_sqlite(config: Config) -> None:
    """Apply `HubDatabase`'s settings to every sqlite connection the hub opens (one hook
    per process: a second call only replaces the configuration it reads)."""
    if _CONFIG:
        _CONFIG[0] = config
        return
    _CONFIG.append(config)

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _on_connect)


def _on_connect(connection, _record) -> None:
    import sqlite3

    if not isinstance(connection, sqlite3.Connection):
        return
    cursor = connection.cursor()
    try:
        for statement in pragmas(_CONFIG[0]):
            cursor.execute(statement)
    finally:
        cursor.close()
