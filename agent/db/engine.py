"""Engines and sessions: one engine per process, SQLite tuned for several processes sharing a file."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import sqlalchemy
from oslo_log import log as logging
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from agent.common import config, exception

LOG = logging.getLogger(__name__)
_ENGINE: Engine | None = None
_WRITER: Engine | None = None
#: SQLite has one writer at a time; threads of this process queue for it here, and the next one
#: starts the moment the last commits, instead of polling SQLite's busy handler (which sleeps 1, 2,
#: 5, 10 ... 100 ms between tries). Other processes still meet at SQLite's own lock.
_SQLITE_WRITE_LOCK = threading.RLock()

# Execution option that asks SQLite for BEGIN IMMEDIATE: a writer takes the write lock up front
# and waits for it (busy timeout) instead of failing with "database is locked" mid-transaction.
_IMMEDIATE = "kiln_sqlite_immediate"


def _options():
    return config.register_opts().database


def default_url() -> str:
    """Return [database]connection (by default a SQLite file under [DEFAULT]state_path)."""
    return _options().connection


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise exception.InvalidParameterValue(
            err=f"Invalid database URL {url!r} ([database]connection or --database-url): {exc}"
        ) from exc


def _prepare_sqlite_file(url: URL) -> None:
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise exception.KilnException(
            f"Cannot create directory {parent} for the SQLite database {path}: {exc}; "
            "set [DEFAULT]state_path or [database]connection."
        ) from exc


class Checkpointer:
    """A thread that checkpoints a SQLite file's write-ahead log every ``interval`` seconds.

    The engine's connections run with wal_autocheckpoint=0, so the commit that fills the log
    past 1000 pages no longer copies it into the database file (tens of ms on the request path);
    this thread does, with PRAGMA wal_checkpoint(PASSIVE), which takes no lock a reader or writer
    waits for. Started by the first write session, stopped (after a last pass) by dispose().
    """

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Two checkpoints of one log at once: SQLite answers the second SQLITE_BUSY (busy=1).
        self._pass = threading.Lock()

    @property
    def thread(self) -> threading.Thread | None:
        """The checkpoint thread (None until the first write session starts it)."""
        return self._thread

    def ensure_started(self) -> None:
        """Start the thread unless it runs."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="kiln-sqlite-checkpoint", daemon=True)
                self._thread.start()

    def reset_after_fork(self) -> None:
        """Forget the parent's thread and locks (in a forked child; it starts its own thread)."""
        self._thread = None
        self._lock = threading.Lock()
        self._pass = threading.Lock()
        self._stop = threading.Event()

    def run_once(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, frames in the log, frames checkpointed), as SQLite says."""
        with self._pass, self.engine.connect() as conn:
            busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(busy), int(log), int(done)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - the next pass tries again; the log only grows
                LOG.warning("Checkpointing the SQLite log of %s failed: %s", self.engine.url, exc)

    def stop(self) -> None:
        """Stop the thread after one last checkpoint."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(10.0)
        with contextlib.suppress(Exception):
            self.run_once()


#: The checkpointer of this process's engine (configure() makes it; None: SQLite checkpoints on commit).
_CHECKPOINTER: Checkpointer | None = None


def checkpointer(engine: Engine) -> Checkpointer | None:
    """The background checkpointer of ``engine`` (None: SQLite checkpoints on commit)."""
    return _CHECKPOINTER if _CHECKPOINTER is not None and _CHECKPOINTER.engine is engine else None


def _after_fork_in_child() -> None:
    """A forked child (the conductor's heartbeat process) opens its own connections and locks."""
    global _SQLITE_WRITE_LOCK
    _SQLITE_WRITE_LOCK = threading.RLock()
    if _CHECKPOINTER is not None:
        _CHECKPOINTER.reset_after_fork()
    if _ENGINE is not None:
        _ENGINE.dispose(close=False)  # the parent's pooled connections stay the parent's


os.register_at_fork(after_in_child=_after_fork_in_child)


def _in_memory(url: URL) -> bool:
    return not url.database or url.database == ":memory:"


def _sqlite_engine(url: URL, background_checkpoints: bool) -> Engine:
    _prepare_sqlite_file(url)
    memory = _in_memory(url)
    no_autocheckpoint = background_checkpoints and not memory
    kwargs: dict = {"connect_args": {"timeout": _options().sqlite_busy_timeout, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = sqlalchemy.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy (below) emit BEGIN itself, and enforce foreign keys like the other backends.
        # WAL: readers never wait for the writer (nor it for them), and a commit appends to the log
        # instead of rewriting pages; with synchronous=NORMAL it is fsync'ed at checkpoints only, so a
        # power loss may drop the last commits but never corrupts the file. Both are per connection
        # (journal_mode is also stored in the file); an in-memory database keeps its "memory" journal.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        if no_autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer thread does it
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")

    return engine


def create_engine(url: str, background_checkpoints: bool = False) -> Engine:
    """Create an engine for ``url`` with Kiln's settings for its backend.

    ``background_checkpoints``: a SQLite file's connections leave checkpoints to a Checkpointer
    thread (configure() starts one for this process's engine) instead of doing them on commit.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, background_checkpoints)
    opts = _options()
    if backend == "mysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    try:
        return sqlalchemy.create_engine(
            parsed, pool_pre_ping=True, pool_size=opts.pool_size, pool_recycle=opts.pool_recycle
        )
    except (ArgumentError, ImportError) as exc:
        raise exception.InvalidParameterValue(err=f"Cannot use database URL {parsed!r}: {exc}") from exc


def configure(url: str | None = None) -> Engine:
    """Make ``url`` (default [database]connection) this process's database and return its engine."""
    global _ENGINE, _WRITER, _CHECKPOINTER
    interval = _options().sqlite_checkpoint_interval
    engine = create_engine(url or default_url(), background_checkpoints=bool(interval))
    if _ENGINE is not None:
        _dispose(_ENGINE)
    if interval and engine.dialect.name == "sqlite" and not _in_memory(engine.url):
        _CHECKPOINTER = Checkpointer(engine, interval)
    _ENGINE = engine
    _WRITER = engine.execution_options(**{_IMMEDIATE: True})
    return engine


def get_engine() -> Engine:
    """Return this process's engine, configuring it from the options on first use."""
    if _ENGINE is None:
        configure()
    assert _ENGINE is not None
    return _ENGINE


def current_engine() -> Engine | None:
    """Return this process's engine if one is configured, else None (never configures one)."""
    return _ENGINE


def dispose() -> None:
    """Close every pooled connection and forget the engine (after fork, or at the end of tests)."""
    global _ENGINE, _WRITER
    if _ENGINE is not None:
        _dispose(_ENGINE)
    _ENGINE = _WRITER = None


def _dispose(engine: Engine) -> None:
    """Stop the engine's checkpointer (after a last pass) and close its connections."""
    global _CHECKPOINTER
    if _CHECKPOINTER is not None and _CHECKPOINTER.engine is engine:
        _CHECKPOINTER.stop()
        _CHECKPOINTER = None
    engine.dispose()


@contextlib.contextmanager
def session(write: bool = False) -> Iterator[Session]:
    """Yield a session inside one transaction; committed on success, rolled back on error."""
    get_engine()
    bind = _WRITER if write else _ENGINE
    queue: contextlib.AbstractContextManager = contextlib.nullcontext()
    if write and bind.dialect.name == "sqlite":
        queue = _SQLITE_WRITE_LOCK
        if _CHECKPOINTER is not None:
            _CHECKPOINTER.ensure_started()
    with queue, Session(bind=bind, expire_on_commit=False) as sess, sess.begin():
        yield sess
