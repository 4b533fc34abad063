"""Engine and session factory.

Services never reach for a global session: callers open one with :func:`session_scope` (one
transaction per request or job) and pass it explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Insert, Select, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, **kwargs: object) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection that went stale (database
    # restart) fails one request, the pool is invalidated, and providers retry webhooks.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(database_url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so concurrent writers queue instead of failing.

    pysqlite's own transaction handling starts transactions lazily and cannot upgrade a read
    lock to a write lock under contention; taking the write lock at BEGIN avoids "database is
    locked" errors when several gunicorn workers write at once (SQLAlchemy's documented recipe).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        # An autocommit connection (Runtime.autocommit) runs each statement on its own.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def skip_locked(session: Session, query: Select[Any], of: Any = None) -> Select[Any]:
    """FOR UPDATE [OF ``of``] SKIP LOCKED on PostgreSQL, so concurrent workers split rows
    instead of waiting on each other; SQLite serializes writers anyway."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query


def insert_skipping_conflicts(
    session_or_dialect: Session | str,
    target: Any,
    index_elements: list[str],
    index_where: Any = None,
) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` in the session's dialect
    (PostgreSQL or SQLite), or a dialect given by name; add ``.values`` / ``.returning``."""
    name = (
        session_or_dialect
        if isinstance(session_or_dialect, str)
        else session_or_dialect.get_bind().dialect.name
    )
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(target).on_conflict_do_nothing(
        index_elements=index_elements, index_where=index_where
    )
