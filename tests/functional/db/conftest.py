"""Fixtures of the database tests on the machine's real PostgreSQL and MariaDB.

Each backend gets a throwaway database kiln_test_<random>, dropped at the end.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy
from sqlalchemy import delete

from agent.db import api, migration, models

SERVERS = {
    "postgresql": "postgresql+psycopg2://postgres@127.0.0.1",
    "mysql": "mysql+pymysql://root@127.0.0.1",
}


def _admin_engine(backend: str) -> sqlalchemy.Engine:
    database = "postgres" if backend == "postgresql" else ""
    return sqlalchemy.create_engine(f"{SERVERS[backend]}/{database}", isolation_level="AUTOCOMMIT")


def _throwaway_database(backend: str):
    name = f"kiln_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(backend)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"{backend} server at {SERVERS[backend]} is not reachable: {exc.orig}")
    return admin, name


def _drop(admin: sqlalchemy.Engine, backend: str, name: str) -> None:
    api.dispose()
    with admin.connect() as conn:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    admin.dispose()


@pytest.fixture(scope="module", params=sorted(SERVERS))
def db_url(request):
    """URL of a throwaway database on each real server, schema at head."""
    backend = request.param
    admin, name = _throwaway_database(backend)
    url = f"{SERVERS[backend]}/{name}"
    try:
        migration.upgrade(engine=api.configure(url))
        api.dispose()
        yield url
    finally:
        _drop(admin, backend, name)


@pytest.fixture
def empty_db_url(db_url):
    """URL of a second, empty throwaway database on the same server as ``db_url``."""
    backend = "postgresql" if db_url.startswith("postgresql") else "mysql"
    admin, name = _throwaway_database(backend)
    try:
        yield f"{SERVERS[backend]}/{name}"
    finally:
        _drop(admin, backend, name)


@pytest.fixture
def db(db_url):
    """Configure the API on ``db_url`` and empty every table."""
    engine = api.configure(db_url)
    migration.upgrade()
    with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            conn.execute(delete(table))
    yield engine
    api.dispose()
