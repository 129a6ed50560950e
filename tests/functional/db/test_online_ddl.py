"""kiln-dbsync upgrade beside a service's open transaction, on the real PostgreSQL and MariaDB.

A transaction that has read ``nodes`` and writes it after the migration started must succeed (on
either, the migration's DDL would otherwise queue for its lock and make that write the victim of a
deadlock: agent.db.online_ddl); the migration finishes once the transaction commits.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy

from agent.db import api, migration

#: The schema of the previous release (tests/functional/upgrade/old_release.PREVIOUS_SCHEMA).
PREVIOUS_SCHEMA = "12c53a968cd1"


def test_migration_waits_for_an_open_transaction_that_then_writes(empty_db_url):
    engine = api.configure(empty_db_url)
    try:
        migration.upgrade(PREVIOUS_SCHEMA)
        node_uuid = "0c0ffee0-0000-4000-8000-000000000001"
        with engine.begin() as conn:  # the old schema's columns only
            conn.execute(
                sqlalchemy.text(
                    "INSERT INTO nodes (uuid, driver, maintenance, conductor_group, protected, retired, "
                    "console_enabled, extra) "
                    "VALUES (:uuid, 'fake-hardware', false, '', false, false, false, '{}')"
                ),
                {"uuid": node_uuid},
            )
        errors: list[BaseException] = []

        def _upgrade() -> None:
            try:
                migration.upgrade()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        with engine.connect() as service:
            tx = service.begin()
            service.execute(
                sqlalchemy.text("SELECT extra FROM nodes WHERE uuid = :uuid"), {"uuid": node_uuid}
            ).all()
            upgrader = threading.Thread(target=_upgrade, name="dbsync")
            upgrader.start()
            time.sleep(1.5)
            assert upgrader.is_alive(), f"the migration did not wait for the open transaction: {errors}"
            service.execute(
                sqlalchemy.text("UPDATE nodes SET extra = :extra WHERE uuid = :uuid"),
                {"extra": '{"written": "during"}', "uuid": node_uuid},
            )
            tx.commit()
        upgrader.join(120)
        assert not upgrader.is_alive() and not errors, errors
        assert migration.version() == migration.head()
        assert api.get_node(node_uuid).extra == {"written": "during"}
    finally:
        api.dispose()
