"""Demo data: a month of a small solar business in Ghana, Kenya and Nigeria (``crm demo``, and
``crm run`` on an empty database).

Sunrise Solar sells lamps, home kits, TV packages, fridges and pumps, cash or pay-as-you-go.
Its team (an admin, a marketer, two reps) works about 70 customers who text, WhatsApp, call and
dial the USSD menu; it runs a campaign to the leads from an agric fair and closes deals in
three currencies. What the customers say is in ``crm.demo_story``; ``crm.demo_play`` plays it
through the real service code and jobs (the packaged model reads every message), then dates it
over the last 30 days.

The demo goes only into an empty database (no users, no contacts): it is never mixed with real
data. :func:`reset` empties a database first (``crm demo --reset``), never in production.
Sends go through the sandbox adapters whatever the settings, so no message ever leaves.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crm import dashboard_stats, outbox
from crm.demo_play import DemoError, Player
from crm.demo_story import TEAM
from crm.models import Base, Contact, User
from crm.models.base import utcnow
from crm.runtime import Runtime, build_adapters
from crm.sequence_examples import load_examples

__all__ = ["DemoCredentials", "DemoError", "is_empty", "reset", "seed"]

DEMO_EMAIL = "admin@example.com"
DEMO_REP_EMAIL = "rep@example.com"


@dataclass(frozen=True)
class DemoCredentials:
    """Who can sign in: every demo user shares one generated password."""

    password: str
    token: str  # the admin's API token
    rep_token: str
    users: tuple[tuple[str, str, str], ...]  # (role, email, name)
    seconds: float = 0.0  # how long seeding took

    @property
    def email(self) -> str:
        return DEMO_EMAIL

    @property
    def rep_email(self) -> str:
        return DEMO_REP_EMAIL

    def lines(self) -> list[str]:
        """The credentials file's lines (``key=value``)."""
        return [
            f"email={self.email}",
            f"password={self.password}",
            f"token={self.token}",
            f"rep_email={self.rep_email}",
            f"rep_token={self.rep_token}",
            *(f"{key}_email={email}" for key, email in self._others()),
        ]

    def _others(self) -> list[tuple[str, str]]:
        """The users besides the admin and the first rep: ``marketer``, ``rep2``..."""
        seen: dict[str, int] = {}
        others = []
        for role, email, _name in self.users:
            seen[role] = seen.get(role, 0) + 1
            if email not in (self.email, self.rep_email):
                others.append((role if seen[role] == 1 else f"{role}{seen[role]}", email))
        return others

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines()) + "\n")
        path.chmod(0o600)


# The shipped sequences the demo turns on (win-back would message every quiet customer at once).
DEMO_ACTIVE_SEQUENCES = ("price_follow_up", "welcome_after_ussd")


def is_empty(session: Session) -> bool:
    """No users and no contacts: the only database the demo goes into."""
    return not session.scalar(select(func.count(User.id))) and not session.scalar(
        select(func.count(Contact.id))
    )


def seed(runtime: Runtime) -> DemoCredentials | None:
    """Seed an empty database; the credentials created, or None if it was not empty."""
    with runtime.session() as session:
        if not is_empty(session):
            return None
    started = time.monotonic()
    # The sandbox adapters: the demo's customers are made up, their numbers must never get a
    # message (even with real provider credentials configured).
    sandboxed = runtime.settings.with_overrides(
        twilio_account_sid="", twilio_auth_token="", africastalking_api_key=""
    )
    demo = dataclasses.replace(runtime, adapters=build_adapters(sandboxed))
    from workers.context import use

    use(demo)  # the jobs run with the demo's runtime
    from intelligence import classify  # the packaged model (a few seconds to load)

    player = Player(demo, utcnow().replace(second=0, microsecond=0))
    credentials = player.plan(secrets.token_urlsafe(12), classify)
    player.play()
    player.retime()
    with runtime.session() as session:
        # After the replay, so the month of history enrols nobody: they wait for new events.
        load_examples(session, active=DEMO_ACTIVE_SEQUENCES)
    # A worker's sweeper may have cached days the retiming has just filled.
    dashboard_stats.forget(runtime.redis)
    return DemoCredentials(
        password=credentials.password,
        token=credentials.tokens["admin"],
        rep_token=credentials.tokens["esi"],
        users=tuple((m.role, m.email, m.name) for m in TEAM),
        seconds=time.monotonic() - started,
    )


def reset(runtime: Runtime) -> None:
    """Delete every row of every table, and the jobs waiting in Redis for them."""
    if runtime.settings.production:
        raise DemoError("refusing to empty a production database")
    with runtime.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    for name in outbox.QUEUES:
        queue = Queue(name, connection=runtime.redis)
        queue.empty()
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
    runtime.redis.delete(outbox.READY_KEY)
    dashboard_stats.forget(runtime.redis)
