"""Benchmark the web pages' server time in PostgreSQL seeded with 100k contacts and 1M
interactions: the inbox (a rep's own threads, an admin's all), a conversation whose contact has
5,000 timeline entries, and the marketer's dashboard; target p99 < 100 ms each.

1. seed (bench/web_seed.py; kept between runs, rebuilt when the sizes, the schema or the web
   seed's version changed): bench/scoring.py's seed plus a marketer, browser sessions, campaigns,
   USSD session metadata, open and finished handoffs, and the 5,000-entry contact and thread.
2. the app built in-process (``crm.app.create_app``) on that database and Redis db 8, each user
   signed in through the real /login form (CSRF token read from the page) on its own Flask test
   client.
3. ``--warmup`` rounds, then ``--requests`` rounds; a round requests every page once, in turn,
   so the pages and the baseline share the same conditions. Server time is the time inside the
   WSGI app (middleware around the call and the body's iteration), not a client round trip. Each
   page's status must be what it expects (else the run stops). SQL statements per request
   ("stmts") and the time spent in them ("SQL ms", p50) come from engine events.
4. baseline: ``/healthz`` on a signed-in client: routing, the signed session cookie, the app's
   after-request hooks, and no database; the floor any request pays, so a page's ratio to it is
   what the page itself costs. ``/`` (a rep's redirect to the inbox) is shown too: the ``@page``
   floor (one transaction, the session lookup), for information.

The bench uses its own database, ``crm_bench_web``, on the server of DATABASE_URL (else the local
``test`` database's server), created and migrated if missing, and Redis db 8 (or
WEB_REDIS_URL), flushed before and after. Run from the repository root:

    python -m bench.web --requests 200 --warmup 20

``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of each page's slowest statements.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import MethodNotAllowed, NotFound

from bench import web_seed
from bench.own_database import conninfo, own_database_url
from bench.scoring import Sample
from bench.webhooks import bench_redis
from crm.app import create_app, runtime_of
from crm.db import make_engine, make_session_factory
from crm.migrate import upgrade
from crm.settings import Settings

DB_NAME = "crm_bench_web"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
SECRET_KEY = "bench-web-secret-key-" + "w" * 32  # a throwaway bench key
TARGET_P99_MS = 100.0
TOP_STATEMENTS = 3
PLAN_LINES = 30
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PLACEHOLDER = b"Coming soon."  # crm/templates/web/placeholder.html


@dataclass(frozen=True)
class Target:
    """A page to time: its path, who asks, the status it must answer."""

    name: str
    path: str
    email: str
    expect: int = 200
    target: bool = True  # held to TARGET_P99_MS (False: information)


@dataclass
class Statement:
    """One SQL text's executions during a page's measured requests."""

    calls: int = 0
    total: float = 0.0
    slowest: float = 0.0
    parameters: Any = None  # of the slowest execution

    def add(self, elapsed: float, parameters: Any) -> None:
        self.calls += 1
        self.total += elapsed
        if elapsed >= self.slowest:
            self.slowest, self.parameters = elapsed, parameters


@dataclass
class PageRun:
    """What the measured requests of one page gave."""

    target: Target
    sample: Sample = field(default_factory=Sample)
    sql_counts: list[int] = field(default_factory=list)
    db: Sample = field(default_factory=Sample)  # time in statements, per request
    size: int = 0
    placeholder: bool = False
    statements: dict[str, Statement] = field(default_factory=dict)
    skipped: str = ""  # why it was not measured


class ServerTimer:
    """WSGI middleware: the time inside the app, from the call until its body was produced and
    closed (a streamed template renders while it is iterated)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.elapsed = 0.0
        self.size = 0
        self.body = b""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start = perf_counter()
        iterable = self.app(environ, start_response)
        try:
            body = b"".join(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        self.elapsed = perf_counter() - start
        self.body = body
        self.size = len(body)
        return [body]


class SqlLog:
    """Every statement the engine runs, with its time, while ``current`` is being watched."""

    def __init__(self, engine: Engine) -> None:
        self.current: list[tuple[str, Any, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info.setdefault("bench_started", []).append(perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        started = conn.info["bench_started"].pop()
        self.current.append(
            (statement, None if executemany else parameters, perf_counter() - started)
        )


# --- database -----------------------------------------------------------------------------


def database_url(given: str | None) -> str:
    """``--database-url`` (normalized as the app does), else crm_bench_web on the bench
    server."""
    if given:
        return Settings.from_env({"DATABASE_URL": given}).database_url
    return own_database_url(DB_NAME)


def ensure_database(url: str) -> None:
    """Create the database when missing (from the server's ``postgres`` database), and bring
    its schema up to date."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise SystemExit(f"bench/web.py needs PostgreSQL (it seeds by COPY), not {url}")
    try:
        psycopg.connect(conninfo(url), connect_timeout=5).close()
    except psycopg.OperationalError:
        server = parsed.set(database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(conninfo(server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')  # a name we were given
        print(f"created database {parsed.database}")
    upgrade(url)


# --- the app and its clients ----------------------------------------------------------------


def build_app(url: str, redis_url: str, instance: Path) -> tuple[Flask, ServerTimer, SqlLog]:
    settings = Settings(
        env="test",
        instance_path=instance,
        database_url=url,
        redis_url=redis_url,
        secret_key=SECRET_KEY,
        default_region="GH",
    )
    app = create_app(settings)
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer  # type: ignore[method-assign]
    return app, timer, SqlLog(runtime_of(app).engine)


def sign_in(app: Flask, email: str) -> FlaskClient:
    """A client signed in through the real form: the CSRF token from the page, then the post."""
    client = app.test_client()
    page = client.get("/login")
    found = _CSRF.search(page.get_data(as_text=True))
    if page.status_code != 200 or found is None:
        raise SystemExit(f"/login answered {page.status_code} without a csrf_token")
    response = client.post(
        "/login",
        data={"email": email, "password": web_seed.PASSWORD, "csrf_token": found.group(1)},
    )
    if response.status_code != 302:
        raise SystemExit(f"signing in as {email} answered {response.status_code}, not 302")
    return client


def sign_out(client: FlaskClient) -> None:
    """End the session on the server (its row in web_sessions goes)."""
    found = _CSRF.search(client.get("/login").get_data(as_text=True))
    if found:
        client.post("/logout", data={"csrf_token": found.group(1)})


def routed(app: Flask, path: str) -> bool:
    """Whether the app has a GET route for ``path`` (the pages are being written)."""
    try:
        app.url_map.bind("localhost").match(path.split("?")[0], method="GET")
    except (NotFound, MethodNotAllowed):
        return False
    return True


# --- measuring ----------------------------------------------------------------------------


def request(
    client: FlaskClient, timer: ServerTimer, log: SqlLog, target: Target
) -> tuple[float, int, list[tuple[str, Any, float]]]:
    """One request, its status checked; (server seconds, bytes, statements)."""
    log.current = []
    response = client.get(target.path)
    if response.status_code != target.expect:
        excerpt = response.get_data(as_text=True)[:600]
        raise SystemExit(
            f"{target.name}: GET {target.path} as {target.email} answered "
            f"{response.status_code}, expected {target.expect}\n{excerpt}"
        )
    return timer.elapsed, timer.size, log.current


def measure(
    app: Flask,
    clients: dict[str, FlaskClient],
    timer: ServerTimer,
    log: SqlLog,
    targets: list[Target],
    rounds: int,
    warmup: int,
) -> list[PageRun]:
    runs = [PageRun(t) for t in targets]
    for run in runs:
        if not routed(app, run.target.path):
            run.skipped = "no route yet"
    live = [run for run in runs if not run.skipped]
    gc.collect()
    for n in range(warmup + rounds):
        for run in live:
            elapsed, size, statements = request(clients[run.target.email], timer, log, run.target)
            if n < warmup:
                continue
            run.sample.latencies.append(elapsed)
            run.sql_counts.append(len(statements))
            run.db.latencies.append(sum(seconds for _, _, seconds in statements))
            run.size = size
            run.placeholder = _PLACEHOLDER in timer.body
            for text, parameters, seconds in statements:
                run.statements.setdefault(text, Statement()).add(seconds, parameters)
    return runs


def slowest(run: PageRun) -> list[tuple[str, Statement]]:
    """The page's statements with the most time per request, most first."""
    ranked = sorted(run.statements.items(), key=lambda item: item[1].total, reverse=True)
    return ranked[:TOP_STATEMENTS]


def explain(engine: Engine, statement: str, parameters: Any) -> Iterator[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement, in a transaction rolled back."""
    sql = "EXPLAIN (ANALYZE, BUFFERS) " + statement
    with engine.connect() as conn:
        try:
            found = (
                conn.exec_driver_sql(sql, parameters) if parameters else conn.exec_driver_sql(sql)
            )
            plan = [line for (line,) in found]
        except DBAPIError as exc:  # a plan is information: say why there is none, go on
            plan = [f"(no plan: {one_line(str(exc.orig), 200)})"]
        conn.rollback()
    if len(plan) > PLAN_LINES:
        plan = [*plan[: PLAN_LINES - 3], "...", *plan[-2:]]
    yield from plan


# --- report -------------------------------------------------------------------------------


def one_line(sql: str, width: int = 96) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def report(runs: list[PageRun], baseline: PageRun, engine: Engine, plans: bool) -> bool:
    """The figures per page and against the baseline; whether every held page made the
    target."""
    base50, base99 = baseline.sample.ms(0.5) or 1, baseline.sample.ms(0.99) or 1
    print(
        f"\n{'page':<26} {'as':<24} {'status':>6} {'bytes':>8} {'stmts':>5} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'SQL ms':>7} {'x base p50':>10} {'p99':>6}"
        "  target"
    )
    ok = True
    for run in runs:
        t = run.target
        if run.skipped:
            print(f"{t.name:<26} {t.email:<24} {'-':>6}  {t.path}: {run.skipped}, not measured")
            continue
        s = run.sample
        sql = sorted(run.sql_counts)
        sql_text = f"{sql[len(sql) // 2]}" + (f"-{sql[-1]}" if sql[-1] != sql[0] else "")
        verdict = ""
        if t.target:
            made = s.ms(0.99) < TARGET_P99_MS
            ok = ok and made
            verdict = f"p99 < {TARGET_P99_MS:.0f} ms: {'PASS' if made else 'MISS'}"
        if run.placeholder:
            verdict += " (placeholder page)"
        print(
            f"{t.name:<26} {t.email:<24} {t.expect:>6} {run.size:>8} {sql_text:>5} "
            f"{s.ms(0.5):7.2f} {s.ms(0.99):7.2f} {s.ms(1.0):7.2f} {run.db.ms(0.5):7.2f} "
            f"{s.ms(0.5) / base50:9.1f}x {s.ms(0.99) / base99:5.1f}x  {verdict}"
        )
    print("\nslowest statements per page (mean ms per call, calls per request, SQL):")
    for run in runs:
        if run.skipped or not run.statements:
            continue
        requests = len(run.sample.latencies) or 1
        print(f"  {run.target.name}:")
        for text, stat in slowest(run):
            print(
                f"    {stat.total / stat.calls * 1000:6.2f} ms  x{stat.calls / requests:<4.1f} "
                f"{one_line(text)}"
            )
            if plans and text.lstrip().upper().startswith(("SELECT", "WITH")):
                for line in explain(engine, text, stat.parameters):
                    print("        " + line)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=20, help="requests per page, not measured")
    parser.add_argument("--explain", action="store_true", help="plans of the slowest statements")
    parser.add_argument("--reseed", action="store_true", help="rebuild the seed")
    parser.add_argument("--database-url", help=f"default: {DB_NAME} on the bench server")
    parser.add_argument(
        "--redis-url", help=f"a db of its own, flushed (default {DEFAULT_REDIS_URL})"
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    args = parser.parse_args()

    url = database_url(args.database_url)
    redis_url = args.redis_url or os.environ.get("WEB_REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    store = bench_redis(redis_url)
    store.flushdb()
    ensure_database(url)
    engine = make_engine(url)
    try:
        seeded = web_seed.load(
            url, make_session_factory(engine), args.contacts, args.interactions, args.reseed
        )
    finally:
        engine.dispose()

    rep, admin, marketer = web_seed.REP_EMAIL, web_seed.ADMIN_EMAIL, web_seed.MARKETER_EMAIL
    baseline = Target("baseline /healthz", "/healthz", rep, target=False)
    targets = [
        baseline,
        Target("@page floor / (302)", "/", rep, expect=302, target=False),
        Target("inbox, mine", "/inbox?view=mine", rep),
        Target("inbox, all", "/inbox?view=all", admin),
        Target("conversation, 5,000", f"/conversations/{seeded.conversation_id}", rep),
        Target("dashboard, 30 days", "/dashboard?days=30", marketer),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-web-") as instance:
        app, timer, log = build_app(url, redis_url, Path(instance))
        runtime = runtime_of(app)
        clients: dict[str, FlaskClient] = {}
        try:
            for email in (rep, admin, marketer):
                clients[email] = sign_in(app, email)
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"{args.requests} requests per page after {args.warmup} warm-up, "
                f"interleaved ({len(targets)} pages; {os.cpu_count()} CPUs, load {load}) ..."
            )
            runs = measure(app, clients, timer, log, targets, args.requests, args.warmup)
            ok = report(runs, runs[0], runtime.engine, args.explain)
        finally:
            for client in clients.values():
                sign_out(client)  # after the plans, so the session lookup's plan finds its row
            runtime.close()
            store.flushdb()
    if seeded.seconds:
        print(f"\nseeded in {seeded.seconds:.1f} s")
    print(f"\nall measured pages under {TARGET_P99_MS:.0f} ms p99: {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
