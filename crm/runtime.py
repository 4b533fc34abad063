"""What a process needs to do work: settings, database, Redis and channel adapters.

Built once per process (web or worker) from :class:`Settings`; passed around explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.auto_replies import AutoReplies, load_auto_replies
from bot.menu import Menu, load_menu
from bot.replies import ReplyTexts
from channels.africastalking import AfricasTalkingAdapter, SandboxAfricasTalkingAdapter
from channels.base import ChannelAdapter
from channels.twilio import SandboxTwilioAdapter, TwilioAdapter
from crm import outbox
from crm.db import make_engine, make_session_factory, session_scope
from crm.redis_conn import connect
from crm.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    adapters: dict[str, ChannelAdapter]
    reply_texts: ReplyTexts
    menu: Menu
    auto_replies: AutoReplies

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; outbox rows written in it are announced once it has committed."""
        with session_scope(self.sessions) as session:
            yield session
            pending = outbox.take_pending(session)
        outbox.announce(self.redis, pending)

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A pooled connection in autocommit mode, for work that is one atomic statement: it
        saves the BEGIN and COMMIT round trips of a transaction."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection

    def status_callback_url(self, adapter: str, interaction_id: int) -> str | None:
        base = self.settings.public_base_url
        if not base:
            return None
        return f"{base}/webhooks/{adapter}/status?interaction={interaction_id}"

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def build_adapters(settings: Settings) -> dict[str, ChannelAdapter]:
    kwargs = {
        "auth_token": settings.webhook_auth_token,
        "account_sid": settings.twilio_account_sid,
        "messaging_service_sid": settings.twilio_messaging_service_sid,
        "from_number": settings.twilio_from_number,
        "whatsapp_from": settings.twilio_whatsapp_from,
        "api_base_url": settings.twilio_api_base_url,
    }
    twilio_cls = TwilioAdapter if settings.twilio_configured else SandboxTwilioAdapter
    at_cls = (
        AfricasTalkingAdapter
        if settings.africastalking_configured
        else SandboxAfricasTalkingAdapter
    )
    return {
        "twilio": twilio_cls(**kwargs, connections=max(10, settings.campaign_threads)),
        "africastalking": at_cls(
            username=settings.africastalking_username,
            api_key=settings.africastalking_api_key,
            api_base_url=settings.africastalking_api_base_url,
            sms_from=settings.africastalking_sms_from,
            webhook_secret=settings.africastalking_secret,
            allowed_ips=settings.africastalking_allowed_ips,
        ),
    }


def build_runtime(settings: Settings) -> Runtime:
    if settings.database_url.startswith("sqlite"):
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    # A campaign job's threads each hold a connection while they claim or record a send; a
    # smaller pool makes them queue for connections and open and close extra ones (bench).
    pool = (
        {}
        if settings.database_url.startswith("sqlite")
        else {"pool_size": max(5, settings.campaign_threads + 2)}
    )
    engine = make_engine(settings.database_url, **pool)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=connect(settings.redis_url, settings.instance_path),
        adapters=build_adapters(settings),
        reply_texts=ReplyTexts(
            help=settings.help_text,
            opt_out=settings.opt_out_text,
            opt_in=settings.opt_in_text,
            welcome=settings.welcome_text,
        ),
        menu=load_menu(settings.bot_menu_file, screen_chars=settings.ussd_screen_chars),
        auto_replies=load_auto_replies(settings.bot_rules_file),
    )
