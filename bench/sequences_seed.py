"""The seed of bench/sequences.py: contacts with a Ghana mobile number each, in the bench's own
PostgreSQL database, kept between runs (rebuilt when the size or the migrations changed).

Contact ``i`` (id ``i + 1``) has the number ``+23324`` + ``i`` on 7 digits, one in ten has no
name, and its score is ``i % 100``: the baseline campaign's segment (``score_max``) takes a
share of the contacts without a table of its own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import psycopg

from bench.campaigns import FIRST, LAST, PASSWORD, SEED, copy_rows, identity_lines
from bench.campaigns import migrations_hash as _migrations_hash
from bench.campaigns import seed_meta as _seed_meta
from bench.own_database import conninfo, create_database
from crm.db import make_engine, make_session_factory, session_scope
from crm.migrate import upgrade
from crm.models import Role
from crm.models.base import utcnow
from crm.users import create_user

DB_NAME = "crm_bench_seq"
MARKETER = "marketer@bench.example"
# What a run writes; emptied before a run and after it (TRUNCATE without CASCADE: a table not
# listed that refers to one of these makes it fail rather than empty more than it should).
RUN_TABLES = (
    "sequence_step_runs",
    "sequence_enrollments",
    "campaign_recipients",
    "campaigns",
    "sequences",
    "segments",
    "interactions",
    "outbox_jobs",
    "channel_consents",
)


def contact_lines(count: int, stamp: str) -> Iterator[str]:
    rng = random.Random(SEED)
    for i in range(count):
        name = "\\N" if i % 10 == 9 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        yield f"{i + 1}\t{name}\tlead\t{i % 100}\t0\t0\t{{}}\t{stamp}\t{stamp}\n"


def seed(url: str, contacts: int) -> None:
    """Fill a fresh, migrated database: the marketer, the contacts and their numbers."""
    start = time.perf_counter()
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            create_user(
                session=session,
                email=MARKETER,
                role=Role.MARKETER.value,
                password=PASSWORD,
                name="Bench Marketer",
            )
    finally:
        engine.dispose()
    stamp = utcnow().isoformat()
    with psycopg.connect(conninfo(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        copy_rows(
            conn,
            "contacts",
            "id, name, lifecycle_stage, score, score_points, fit_points, attributes, "
            "created_at, updated_at",
            contact_lines(contacts, stamp),
        )
        copy_rows(
            conn,
            "identities",
            "id, contact_id, kind, value, created_at",
            identity_lines(contacts, stamp),
        )
        for table in ("contacts", "identities"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        conn.execute("CREATE SCHEMA bench_seed")
        conn.execute("CREATE TABLE bench_seed.meta (key text PRIMARY KEY, value text NOT NULL)")
        meta = {"contacts": contacts, "migrations": _migrations_hash(), "seeded_at": time.time()}
        conn.cursor().executemany(
            "INSERT INTO bench_seed.meta VALUES (%s, %s)", [(k, str(v)) for k, v in meta.items()]
        )
        conn.commit()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    print(f"seeded {contacts:,} contacts in {time.perf_counter() - start:.1f} s")


def prepare(url: str, contacts: int, reseed: bool) -> None:
    """The seed, reused when it has this many contacts and was made under these migrations (the
    rows of earlier runs emptied); else the database is dropped, created, migrated and seeded."""
    create_database(DB_NAME)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        meta = _seed_meta(conn)
    wanted = {"contacts": str(contacts), "migrations": _migrations_hash()}
    if reseed or any(meta.get(key) != value for key, value in wanted.items()):
        print(f"seeding {contacts:,} contacts in a new {DB_NAME} ...", flush=True)
        create_database(DB_NAME, drop=True)
        upgrade(url)
        seed(url, contacts)
        return
    empty(url)
    print(f"reusing the seed ({contacts:,} contacts; --reseed to rebuild); earlier runs emptied")


def empty(url: str) -> None:
    """Empty the tables a run writes (the seed stays)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"TRUNCATE {', '.join(RUN_TABLES)} RESTART IDENTITY")
        conn.execute(f"VACUUM (ANALYZE) {', '.join(RUN_TABLES)}")
