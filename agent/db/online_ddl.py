"""Schema changes that never queue for their locks, so that ``kiln-dbsync upgrade`` runs online.

An ALTER TABLE needs the table's exclusive lock. Queued behind a service's transaction that has
read the table, it blocks that transaction's next write on the same table: a deadlock, which the
database breaks by failing the service's transaction (MySQL error 1213, PostgreSQL 40P01), and
the API of a release that does not retry it answers 500. So the migration takes its locks only
when they are free, and never waits in the queue where it would block the services:

- MySQL/MariaDB (DDL commits at once): each DDL statement runs with ``lock_wait_timeout = 0`` and
  is tried again shortly while its table is busy.
- PostgreSQL (the whole upgrade is one transaction): the migration first locks every existing
  table, trying with a ``lock_timeout`` far below ``deadlock_timeout`` until all are free at once;
  after that nothing it does waits for a service. Services' requests wait for the migration's
  commit (about a second here) instead, and none fails.

Either waits at most ``deadline_s`` before giving up with the database's error.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections.abc import Iterator

from oslo_log import log as logging
from sqlalchemy import event
from sqlalchemy.engine import Connection

LOG = logging.getLogger(__name__)

_DDL = re.compile(r"^\s*(ALTER|CREATE|DROP|RENAME)\b", re.IGNORECASE)
#: MySQL's "Lock wait timeout exceeded" and "Deadlock found"; PostgreSQL's lock_not_available and
#: deadlock_detected: the statement did not get its lock.
_RETRY_ON = (1205, 1213, "55P03", "40P01")
#: How long one try to lock PostgreSQL's tables waits (its deadlock_timeout is 1 s by default).
PG_LOCK_TIMEOUT = "100ms"


def _busy(exc: Exception) -> bool:
    code = getattr(exc, "pgcode", None) or (exc.args[0] if exc.args else None)
    return code in _RETRY_ON


def _run(cursor, statement: str, parameters, deadline_s: float, savepoint: bool) -> None:
    deadline = time.monotonic() + deadline_s
    tries = 0
    while True:
        try:
            if savepoint:
                cursor.execute("SAVEPOINT kiln_online_ddl")
            if parameters:
                cursor.execute(statement, parameters)
            else:
                cursor.execute(statement)
            if savepoint:
                cursor.execute("RELEASE SAVEPOINT kiln_online_ddl")
            return
        except Exception as exc:  # noqa: BLE001 - the driver's own error class; re-raised unless busy
            if not _busy(exc) or time.monotonic() > deadline:
                raise
            if savepoint:
                cursor.execute("ROLLBACK TO SAVEPOINT kiln_online_ddl")
            tries += 1
            if tries == 1 or tries % 50 == 0:
                LOG.info(
                    "Schema change waits for the services' transactions (try %d): %s", tries, statement[:80]
                )
            time.sleep(0.02 + random.random() * 0.08)  # noqa: S311 - jitter, not security


def _lock_all_tables(connection: Connection, deadline_s: float) -> None:
    tables = (
        connection.exec_driver_sql(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()"
        )
        .scalars()
        .all()
    )
    if not tables:
        return
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT}'")
    cursor = connection.connection.cursor()
    try:
        _run(cursor, f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE", None, deadline_s, True)
    finally:
        cursor.close()
    connection.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")


@contextlib.contextmanager
def waiting_ddl(connection: Connection, deadline_s: float = 600.0) -> Iterator[None]:
    """Run the migration on ``connection`` without queueing for locks (MySQL/MariaDB, PostgreSQL)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        _lock_all_tables(connection, deadline_s)
    if dialect != "mysql":
        yield
        return
    engine = connection.engine

    def _execute(cursor, statement, parameters, context) -> bool | None:
        if context is None or context.root_connection is not connection or not _DDL.match(statement):
            return None
        _run(cursor, statement, parameters, deadline_s, False)
        return True

    def _execute_no_params(cursor, statement, context) -> bool | None:
        return _execute(cursor, statement, None, context)

    connection.exec_driver_sql("SET SESSION lock_wait_timeout = 0")
    event.listen(engine, "do_execute", _execute)
    event.listen(engine, "do_execute_no_params", _execute_no_params)
    try:
        yield
    finally:
        event.remove(engine, "do_execute", _execute)
        event.remove(engine, "do_execute_no_params", _execute_no_params)
        with contextlib.suppress(Exception):  # a broken connection is dropped anyway
            connection.exec_driver_sql("SET SESSION lock_wait_timeout = DEFAULT")
