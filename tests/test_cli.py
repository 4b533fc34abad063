"""The `crm` console commands for users, tokens and the database, run through click."""

from __future__ import annotations

from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import select

from crm.cli import cli
from crm.models import User
from crm.runtime import Runtime
from crm.users import check_password
from tests.conftest import cli_env, make_token

PASSWORD = "a long password"


def crm(rt: Runtime, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=cli_env(rt))


def create_user(rt: Runtime, email: str, password: str = PASSWORD) -> Result:
    return crm(
        rt, "users", "create", "--email", email, "--role", "rep", "--password-stdin",
        input=password + "\n",
    )  # fmt: skip


def test_users_create_stores_a_hash_that_checks(runtime: Runtime):
    result = create_user(runtime, "Ama@Example.com")

    assert result.exit_code == 0, result.output
    assert "Created rep ama@example.com" in result.output
    with runtime.session() as session:
        user = session.scalars(select(User)).one()
        assert user.email == "ama@example.com"
        assert user.role == "rep"
        assert PASSWORD not in user.password_hash
        assert check_password(user, PASSWORD)
        assert not check_password(user, PASSWORD + "!")


def test_users_create_refuses_a_short_password(runtime: Runtime):
    result = create_user(runtime, "ama@example.com", password="short")

    assert result.exit_code != 0
    assert "password must be at least 10 characters" in result.output
    assert "Traceback" not in result.output
    with runtime.session() as session:
        assert session.scalars(select(User)).all() == []


def test_users_create_refuses_a_duplicate_email(runtime: Runtime):
    assert create_user(runtime, "ama@example.com").exit_code == 0
    result = create_user(runtime, "AMA@example.com")
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_tokens_create_prints_a_token_that_works(runtime: Runtime, client: FlaskClient):
    assert create_user(runtime, "ama@example.com").exit_code == 0

    result = crm(runtime, "tokens", "create", "--email", "AMA@example.com")

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    response = client.get(
        "/api/v1/contacts",
        query_string={"phone": "0241234567"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json == {"data": [], "next_cursor": None}
    wrong = client.get(
        "/api/v1/contacts?phone=0241234567", headers={"Authorization": f"Bearer {token}x"}
    )
    assert wrong.status_code == 401


def test_tokens_create_for_an_unknown_email_fails_clearly(runtime: Runtime):
    make_token(runtime)  # someone else exists
    result = crm(runtime, "tokens", "create", "--email", "nobody@example.com")
    assert result.exit_code != 0
    assert "no user with email nobody@example.com" in result.output


def test_db_upgrade_says_up_to_date(runtime: Runtime):
    result = crm(runtime, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
