"""Settings come from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import pytest

from crm.settings import DEV_TWILIO_AUTH_TOKEN, Settings, SettingsError

PRODUCTION = {
    "CRM_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "PUBLIC_BASE_URL": "https://crm.example.com/",
    "DATABASE_URL": "postgres://crm@db/crm",
}


def test_production_settings_are_read_and_normalized():
    settings = Settings.from_env(PRODUCTION)
    assert settings.production
    assert settings.public_base_url == "https://crm.example.com"
    assert settings.database_url == "postgresql+psycopg://crm@db/crm"
    assert settings.twilio_configured


@pytest.mark.parametrize("missing", ["SECRET_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL"])
def test_production_refuses_to_start_without_a_secret(missing: str):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(env)


def test_production_refuses_a_short_secret_key():
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.from_env({**PRODUCTION, "SECRET_KEY": "short"})


def test_development_defaults_run_without_any_account(tmp_path):
    settings = Settings.from_env({"CRM_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    assert settings.redis_url == ""  # embedded Redis
    assert not settings.twilio_configured
    assert settings.webhook_auth_token == DEV_TWILIO_AUTH_TOKEN
    assert len(settings.secret_key) >= 32


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEFAULT_REGION": "XX"}, "DEFAULT_REGION"),
        ({"CRM_ENV": "staging"}, "CRM_ENV"),
        ({"MAX_WEBHOOK_BYTES": "lots"}, "MAX_WEBHOOK_BYTES"),
    ],
)
def test_malformed_settings_fail_loudly(env: dict[str, str], message: str):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_cli_refuses_to_start_in_production_without_secrets():
    from click.testing import CliRunner

    from crm.cli import cli

    result = CliRunner().invoke(
        cli, ["db", "upgrade"], env={"CRM_ENV": "production", "SECRET_KEY": ""}
    )
    assert result.exit_code != 0
    assert "production mode refuses to start without" in result.output
