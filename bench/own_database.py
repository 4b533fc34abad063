"""A benchmark's own PostgreSQL database on the server of DATABASE_URL (else the local test
database's server), so a bench never touches the tests' data and keeps its seed between runs."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from bench.webhooks import database_url


def own_database_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the bench server."""
    return make_url(database_url()).set(database=name).render_as_string(hide_password=False)


def conninfo(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(name: str, *, drop: bool = False) -> None:
    """Create database ``name`` when missing (dropped first with ``drop``), from the server's
    other database."""
    with psycopg.connect(conninfo(database_url()), autocommit=True) as conn:
        if drop:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a fixed bench name
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(f'CREATE DATABASE "{name}"')  # a fixed bench name
            print(f"created database {name}")
