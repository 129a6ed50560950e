"""Tests of the alembic migrations and of kiln-dbsync."""

from __future__ import annotations

import sqlalchemy

from agent.cmd import dbsync
from agent.db import api, migration, models

UUID = "0b6e7e3c-5d0e-4a4c-9a4e-3f1d1f6d2a10"


class TestMigrations:
    def test_schema_matches_models(self, db):
        assert migration.version() == migration.head()
        assert migration.schema_diff() == []

    def test_diff_notices_a_difference(self, empty_db_url):
        """The comparison is real: a schema missing an index is reported."""
        engine = api.configure(empty_db_url)
        try:
            migration.upgrade()
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text("DROP INDEX ix_nodes_reservation ON nodes")) if (
                    engine.dialect.name == "mysql"
                ) else conn.execute(sqlalchemy.text("DROP INDEX ix_nodes_reservation"))
            diff = migration.schema_diff()
            assert [(d[0], d[1].name) for d in diff] == [("add_index", "ix_nodes_reservation")]
        finally:
            api.dispose()

    def test_every_model_table_is_created(self, db):
        tables = set(sqlalchemy.inspect(db).get_table_names())
        assert set(models.Base.metadata.tables) | {"alembic_version"} == tables

    def test_downgrade_and_upgrade_again(self, empty_db_url):
        api.configure(empty_db_url)
        try:
            migration.upgrade()
            migration.downgrade("base")
            assert migration.version() is None
            assert sqlalchemy.inspect(api.get_engine()).get_table_names() == ["alembic_version"]
            migration.upgrade()
            assert migration.version() == migration.head()
            assert migration.schema_diff() == []
        finally:
            api.dispose()

    def test_unused_interface_names_are_reset_by_the_bios_firmware_raid_revision(self, empty_db_url):
        """Names Kiln stored but never used (bios_interface "fake") would now fail every task: reset."""
        engine = api.configure(empty_db_url)
        try:
            migration.upgrade("7c3d9e2a1f60")
            with engine.begin() as conn:
                conn.execute(
                    sqlalchemy.text(
                        "INSERT INTO nodes (uuid, driver, bios_interface, raid_interface, "
                        "firmware_interface, maintenance, conductor_group, protected, retired, "
                        "console_enabled) VALUES "
                        f"('{UUID}', 'fake-hardware', 'fake', 'agent', 'no-firmware', "
                        "false, '', false, false, false)"
                    )
                )
            migration.upgrade()
            node = api.get_node(UUID)
            assert (node.bios_interface, node.raid_interface, node.firmware_interface) == (
                None,
                "agent",
                "no-firmware",
            )
            assert node.raid_config is None and node.target_raid_config is None
        finally:
            api.dispose()

    def test_each_downgrade_one_step_and_back(self, empty_db_url):
        """Every migration's downgrade undoes exactly its upgrade, one revision at a time, rows kept."""
        from alembic.script import ScriptDirectory

        engine = api.configure(empty_db_url)
        try:
            migration.upgrade()
            node = api.create_node({"driver": "fake-hardware", "name": "kept"})
            script = ScriptDirectory.from_config(migration._config())
            revisions = [r.revision for r in script.walk_revisions()]  # head first
            for revision, below in zip(revisions, [*revisions[1:], None], strict=True):
                migration.downgrade("-1")
                assert migration.version() == below, f"downgrade of {revision}"
                if below is None:
                    break
                with engine.connect() as conn:
                    count = conn.execute(
                        sqlalchemy.text("SELECT COUNT(*) FROM nodes WHERE uuid = :u"), {"u": node.uuid}
                    )
                    assert count.scalar() == 1, f"the node row lost by the downgrade of {revision}"
            migration.upgrade()
            assert migration.version() == migration.head() and migration.schema_diff() == []
        finally:
            api.dispose()


class TestDbsync:
    def test_upgrade_twice_then_version(self, empty_db_url, capsys):
        assert dbsync.main(["--database-url", empty_db_url, "version"]) == 0
        assert capsys.readouterr().out == "None\n"
        assert dbsync.main(["--database-url", empty_db_url, "upgrade"]) == 0
        head = migration.head()
        assert capsys.readouterr().out == f"Database at revision {head} (was None).\n"
        assert dbsync.main(["--database-url", empty_db_url, "upgrade"]) == 0
        assert capsys.readouterr().out == f"Database at revision {head} (unchanged).\n"
        assert dbsync.main(["--database-url", empty_db_url, "version"]) == 0
        assert capsys.readouterr().out == f"{head}\n"
        api.configure(empty_db_url)
        try:
            assert migration.schema_diff() == []
            node = api.create_node({"driver": "fake-hardware", "name": "after-dbsync"})
            assert api.get_node("after-dbsync").uuid == node.uuid
        finally:
            api.dispose()

    def test_config_file_state_path(self, tmp_path, capsys):
        conf = tmp_path / "kiln.conf"
        conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}/state\n")
        assert dbsync.main(["--config-file", str(conf), "upgrade"]) == 0
        assert (tmp_path / "state" / "kiln.sqlite").is_file()
        assert dbsync.main(["--config-file", str(conf), "version"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == migration.head()

    def test_bad_url(self, capsys):
        assert dbsync.main(["--database-url", "nosuchdb://x/y", "version"]) == 2
        assert "nosuchdb://x/y" in capsys.readouterr().err
