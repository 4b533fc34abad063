"""The dashboard's figures for a range of days: the lifecycle funnel, revenue by channel and
campaign, handoffs per rep, the sentiment of inbound messages per day and USSD drop-off per
menu node.

A range is the last 7, 30 or 90 days in UTC, today included (so a day is a whole day, except
today, which runs to now). Revenue and handoffs come from ``crm.reports``; the other figures
are one aggregate query each, over the indexes of migration 0012:

- contacts: ``ix_contacts_live_stage_created``, (stage, created_at) of the contacts not merged:
  the funnel is one index-only count per stage, the new contacts a probe per stage;
- interactions: ``ix_interactions_inbound_created``, the inbound ones by time, with channel and
  sentiment included, so the per-day counts are an index-only range scan.

Counting 90 days of a busy timeline (1M interactions) is still too much for every page view,
so the per-day figures of *closed* days (before today) are kept in Redis: a past day's counts
barely change. Yesterday's stay 10 minutes (late enrichment, USSD sessions still closing),
older days about 6 hours (staggered per day, so they do not all expire together). Today is
always counted. The funnel reads every live contact, so it is kept one minute. Without Redis
everything is counted on every view.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from bot.menu import Menu
from crm import reports
from crm.lifecycle import ORDER
from crm.models import Campaign, Contact, Interaction, LifecycleStage
from crm.models.base import utcnow

log = logging.getLogger(__name__)

RANGES = (7, 30, 90)
DEFAULT_DAYS = 30
TOUCHES = ("first", "last")
SENTIMENTS = ("negative", "neutral", "positive")
UNSCORED = "none"  # an inbound interaction the model has not read (or cannot: a bare call)
MESSAGE_CHANNELS = ("sms", "whatsapp")
COMPLETED = "completed"
DROPPED = ("abandoned", "failed")  # how a USSD session ends when the caller leaves mid-menu
TOP_CAMPAIGNS = 8
NEW = "_new"  # in the cached stage counts: the contacts created in the range

CACHE_PREFIX = "crm:dashboard:v1"
FUNNEL_TTL = 60
RECENT_TTL = 600
OLD_TTL = 6 * 3600
TTL_SPREAD = 3600
MAX_RUNS = 3  # separate queries for the missing days; past that, one query over their span

# Literal predicates, so PostgreSQL matches the partial indexes even with generic plans.
_INBOUND = text("interactions.direction = 'inbound'")
_USSD = text("interactions.channel = 'ussd'")


class RangeError(ValueError):
    """A range or parameter the dashboard does not offer (answered with 400)."""


@dataclass(frozen=True)
class Window:
    """The last ``days`` days: from midnight UTC of the first one to ``end`` (now)."""

    days: int
    start: datetime
    end: datetime

    @property
    def today(self) -> date:
        return self.end.date()

    @property
    def dates(self) -> list[date]:
        first = self.start.date()
        return [first + timedelta(days=i) for i in range(self.days)]


def window(days: int, now: datetime | None = None) -> Window:
    if days not in RANGES:
        raise RangeError(f"days must be one of {', '.join(map(str, RANGES))}")
    now = (now or utcnow()).astimezone(UTC)
    return Window(days, _midnight(now.date() - timedelta(days=days - 1)), now)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _get(store: redis.Redis | None, key: str) -> Any:
    """A cached figure, or None (not cached, or Redis unavailable)."""
    if store is None:
        return None
    try:
        raw = store.get(key)
    except redis.RedisError as exc:
        log.warning("dashboard cache unavailable (%s)", exc)
        return None
    return None if raw is None else json.loads(raw)


def _put(store: redis.Redis | None, values: dict[str, Any], ttl: Callable[[str], int]) -> None:
    if store is None or not values:
        return
    try:
        with store.pipeline(transaction=False) as pipe:
            for key, value in values.items():
                pipe.set(key, json.dumps(value), ex=ttl(key))
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("dashboard figures not cached (%s)", exc)


# --- funnel -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    stage: str
    at_stage: int  # contacts at this stage now
    reached: int  # at this stage or further along
    conversion: float | None  # reached / the previous step's reached


@dataclass(frozen=True)
class Funnel:
    steps: list[FunnelStep]
    disqualified: int
    contacts: int  # every contact not merged into another
    new_contacts: int  # of those, created in the range


def _stage_counts(session: Session, win: Window) -> dict[str, int]:
    """Live contacts per stage, and under ``NEW`` those created in the range."""
    live = Contact.merged_into_id.is_(None)
    stages = [stage.value for stage in LifecycleStage]

    def count(*where: Any) -> Any:
        return select(func.count()).where(live, *where).scalar_subquery()

    # One count per stage: each is an index-only range scan of (stage, created_at), where one
    # GROUP BY over the table reads all of it. Naming every stage lets the new contacts'
    # count probe that index too.
    row = session.execute(
        select(
            *(count(Contact.lifecycle_stage == stage) for stage in stages),
            count(Contact.lifecycle_stage.in_(stages), Contact.created_at >= win.start),
        )
    ).one()
    return {**dict(zip(stages, row[:-1], strict=True)), NEW: int(row[-1] or 0)}


def funnel(session: Session, win: Window, store: redis.Redis | None = None) -> Funnel:
    """Contacts by lifecycle stage now; a contact further along counts as having reached each
    earlier stage (stages only move forward, skips included, unless a person moves one back).

    The counts read every live contact, so they are kept a minute (``FUNNEL_TTL``)."""
    key = f"{CACHE_PREFIX}:funnel:{win.start.date().isoformat()}"
    counts = _get(store, key)
    if counts is None:
        counts = _stage_counts(session, win)
        _put(store, {key: counts}, lambda _key: FUNNEL_TTL)
    at = [counts.get(stage.value, 0) for stage in ORDER]
    steps, previous = [], None
    for i, stage in enumerate(ORDER):
        reached = sum(at[i:])
        conversion = reached / previous if previous else None
        steps.append(FunnelStep(stage.value, at[i], reached, conversion))
        previous = reached
    return Funnel(
        steps=steps,
        disqualified=counts.get(LifecycleStage.DISQUALIFIED.value, 0),
        contacts=sum(n for stage, n in counts.items() if stage != NEW),
        new_contacts=counts[NEW],
    )


# --- per-day figures, closed days cached ---------------------------------------------------

DayValues = dict[str, Any]
Compute = Callable[[datetime, datetime], dict[date, DayValues]]


def _key(metric: str, day: date) -> str:
    return f"{CACHE_PREFIX}:{metric}:{day.isoformat()}"


def _ttl(day: date, today: date) -> int:
    if day >= today - timedelta(days=1):
        return RECENT_TTL
    return OLD_TTL + (day.toordinal() * 7919) % TTL_SPREAD


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs; one run over the whole span past MAX_RUNS."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    if len(runs) > MAX_RUNS:
        return [(runs[0][0], runs[-1][1])]
    return runs


def per_day(
    store: redis.Redis | None, metric: str, win: Window, compute: Compute
) -> dict[date, DayValues]:
    """``compute``'s figures for every day of the window: closed days from the cache where
    present (the rest counted and cached), today counted."""
    closed = win.dates[:-1]
    found: dict[date, DayValues] = {}
    cached: list[bytes | None] = [None] * len(closed)
    if store is not None and closed:
        try:
            cached = store.mget([_key(metric, day) for day in closed])
        except redis.RedisError as exc:
            log.warning("dashboard cache unavailable (%s); counting every day", exc)
            store = None
    for day, raw in zip(closed, cached, strict=True):
        if raw is not None:
            found[day] = json.loads(raw)
    fresh: dict[date, DayValues] = {}
    for first, last in _runs([day for day in closed if day not in found]):
        counted = compute(_midnight(first), _midnight(last + timedelta(days=1)))
        for i in range((last - first).days + 1):
            day = first + timedelta(days=i)
            if day not in found:
                fresh[day] = counted.get(day, {})
    keys = {_key(metric, day): day for day in fresh}
    _put(
        store,
        {key: fresh[day] for key, day in keys.items()},
        lambda key: _ttl(keys[key], win.today),
    )
    found.update(fresh)
    found[win.today] = compute(_midnight(win.today), win.end).get(win.today, {})
    return found


def _day(session: Session, column: Any) -> Any:
    """The UTC date of a timestamp column (SQLite stores UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(literal_column("'UTC'"), column))
    return func.date(column)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def inbound_counts(session: Session, start: datetime, end: datetime) -> dict[date, DayValues]:
    """Inbound interactions per day, channel and sentiment: {day: {channel: {sentiment: n}}}."""
    day = _day(session, Interaction.created_at)
    result: dict[date, DayValues] = {}
    rows = session.execute(
        select(day, Interaction.channel, Interaction.sentiment, func.count())
        .where(_INBOUND, Interaction.created_at >= start, Interaction.created_at < end)
        .group_by(day, Interaction.channel, Interaction.sentiment)
    )
    for when, channel, sentiment, count in rows:
        by_channel = result.setdefault(_as_date(when), {}).setdefault(channel, {})
        by_channel[sentiment or UNSCORED] = by_channel.get(sentiment or UNSCORED, 0) + count
    return result


def ussd_counts(session: Session, start: datetime, end: datetime) -> dict[date, DayValues]:
    """USSD sessions per day and menu node: {day: {node: [reached, completed, dropped]}}: how
    many sessions showed the node, and how many ended on it, finished or dropped.

    The database groups the sessions by path (crm.ussd: metadata.path, the node ids in the
    order reached) and outcome: there are few distinct paths, so walking them here is cheap.
    """
    day = _day(session, Interaction.created_at)
    rows = session.execute(
        select(day, Interaction.meta["path"], Interaction.delivery_status, func.count())
        .where(_INBOUND, _USSD, Interaction.created_at >= start, Interaction.created_at < end)
        # By position: the JSON key is a bound parameter, which GROUP BY would not match.
        .group_by(text("1"), text("2"), text("3"))
    )
    result: dict[date, DayValues] = {}
    for when, path, status, count in rows:
        if not isinstance(path, list) or not path:
            continue  # a session the gateway reported but we never answered
        nodes = result.setdefault(_as_date(when), {})
        for node in dict.fromkeys(str(n) for n in path):  # a node shown twice counts once
            nodes.setdefault(node, [0, 0, 0])[0] += count
        last = nodes[str(path[-1])]
        if status == COMPLETED:
            last[1] += count
        elif status in DROPPED:
            last[2] += count
    return result


# --- assembled figures ---------------------------------------------------------------------


@dataclass(frozen=True)
class SentimentDay:
    day: date
    negative: int
    neutral: int
    positive: int

    @property
    def scored(self) -> int:
        return self.negative + self.neutral + self.positive

    def share(self, sentiment: str) -> float | None:
        return getattr(self, sentiment) / self.scored if self.scored else None


@dataclass(frozen=True)
class Inbound:
    messages: int  # SMS and WhatsApp
    calls: int
    ussd_sessions: int
    trend: list[SentimentDay]


def inbound(days: dict[date, DayValues], win: Window) -> Inbound:
    totals: dict[str, int] = {}
    trend = []
    for day in win.dates:
        sentiments = dict.fromkeys(SENTIMENTS, 0)
        for channel, counts in days.get(day, {}).items():
            totals[channel] = totals.get(channel, 0) + sum(counts.values())
            for sentiment in SENTIMENTS:
                sentiments[sentiment] += counts.get(sentiment, 0)
        trend.append(SentimentDay(day, **sentiments))
    return Inbound(
        messages=sum(totals.get(channel, 0) for channel in MESSAGE_CHANNELS),
        calls=totals.get("voice", 0),
        ussd_sessions=totals.get("ussd", 0),
        trend=trend,
    )


@dataclass(frozen=True)
class NodeStat:
    node: str
    label: str
    reached: int
    completed: int  # sessions that ended here, finished
    dropped: int  # sessions that ended here, abandoned or failed

    @property
    def drop_rate(self) -> float | None:
        return self.dropped / self.reached if self.reached else None


def menu_labels(menu: Menu) -> dict[str, str]:
    """Each node's name as a caller knows it: the option that leads there, in menu order
    (breadth first from the start node)."""
    labels = {menu.start: "Start menu"}
    queue = [menu.start]
    while queue:
        node = menu.node(queue.pop(0))
        targets = [(o.label, o.goto) for o in node.options]
        if node.next:
            targets.append((node.next.replace("_", " ").capitalize(), node.next))
        for label, target in targets:
            if target not in labels and target in menu.nodes:
                labels[target] = label
                queue.append(target)
    return labels


def ussd_dropoff(days: dict[date, DayValues], menu: Menu | None) -> list[NodeStat]:
    """Per node, in menu order (nodes no longer in the menu last, busiest first)."""
    totals: dict[str, list[int]] = {}
    for values in days.values():
        for node, counts in values.items():
            total = totals.setdefault(node, [0, 0, 0])
            for i in range(3):
                total[i] += counts[i]
    labels = menu_labels(menu) if menu is not None else {}
    order = {node: i for i, node in enumerate(labels)}
    ranked = sorted(totals.items(), key=lambda item: (order.get(item[0], len(order)), -item[1][0]))
    return [
        NodeStat(node, labels.get(node, node), reached, completed, dropped)
        for node, (reached, completed, dropped) in ranked
    ]


@dataclass(frozen=True)
class RevenueBar:
    label: str
    deals: int
    revenue: Decimal


@dataclass(frozen=True)
class Revenue:
    touch: str
    by_channel: dict[str, list[RevenueBar]]  # per currency, largest first
    by_campaign: dict[str, list[RevenueBar]]
    totals: dict[str, Decimal]  # per currency, never added up across currencies
    deals: int


CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "voice": "Voice", "ussd": "USSD"}


def channel_name(channel: str | None) -> str:
    return CHANNEL_NAMES.get(channel or "", channel or "Unknown")


def revenue(session: Session, win: Window, touch: str) -> Revenue:
    """Won revenue in the range by channel and by campaign (``crm.reports.revenue``)."""
    if touch not in TOUCHES:
        raise RangeError("touch must be first or last")
    channels = reports.revenue(session, by="channel", touch=touch, start=win.start, end=win.end)
    campaigns = reports.revenue(session, by="campaign", touch=touch, start=win.start, end=win.end)
    ids = sorted({int(row.key) for row in campaigns if row.key is not None})
    names: dict[int, str] = {}
    if ids:
        found = session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))
        names = {campaign_id: name for campaign_id, name in found}
    by_channel: dict[str, list[RevenueBar]] = {}
    totals: dict[str, Decimal] = {}
    for row in channels:
        by_channel.setdefault(row.currency, []).append(
            RevenueBar(channel_name(str(row.key) if row.key else None), row.deals, row.revenue)
        )
        totals[row.currency] = totals.get(row.currency, Decimal(0)) + row.revenue
    by_campaign: dict[str, list[RevenueBar]] = {}
    for row in campaigns:
        if row.key is None:
            label = "No campaign"
        else:
            label = names.get(int(row.key)) or f"Campaign #{row.key}"
        by_campaign.setdefault(row.currency, []).append(RevenueBar(label, row.deals, row.revenue))
    return Revenue(
        touch=touch,
        by_channel=_by_currency(by_channel, totals),
        by_campaign={c: _top(bars) for c, bars in _by_currency(by_campaign, totals).items()},
        totals=dict(sorted(totals.items(), key=lambda item: -item[1])),
        deals=sum(row.deals for row in channels),
    )


def _by_currency(
    bars: dict[str, list[RevenueBar]], totals: dict[str, Decimal]
) -> dict[str, list[RevenueBar]]:
    """The currencies with the most revenue first."""
    return dict(sorted(bars.items(), key=lambda item: -totals.get(item[0], Decimal(0))))


def _top(bars: list[RevenueBar]) -> list[RevenueBar]:
    """The largest campaigns, the rest as one bar."""
    if len(bars) <= TOP_CAMPAIGNS + 1:
        return bars
    rest = bars[TOP_CAMPAIGNS:]
    other = RevenueBar(
        f"{len(rest)} other campaigns",
        sum(b.deals for b in rest),
        sum((b.revenue for b in rest), Decimal(0)),
    )
    return [*bars[:TOP_CAMPAIGNS], other]


@dataclass(frozen=True)
class RepHandoffs:
    rep: str
    handoffs: int
    sla_met_rate: float | None
    mean_s: float | None
    worst_s: int | None
    escalated: int
    rejected: int


@dataclass(frozen=True)
class Handoffs:
    reps: list[RepHandoffs]
    total: int
    sla_met_rate: float | None


def handoffs(session: Session, win: Window) -> Handoffs:
    """Speed-to-lead and SLA adherence per rep (``crm.reports.handoffs``)."""
    rows = reports.handoffs(session, start=win.start, end=win.end)
    reps = [
        RepHandoffs(
            rep=row["rep_name"]
            or ("Unassigned" if row["rep_id"] is None else f"Rep #{row['rep_id']}"),
            handoffs=row["handoffs"],
            sla_met_rate=row["sla_met_rate"],
            mean_s=row["speed_to_lead_avg_s"],
            worst_s=row["speed_to_lead_max_s"],
            escalated=row["escalated"],
            rejected=row["rejected"],
        )
        for row in rows
    ]
    total = sum(r.handoffs for r in reps)
    met = sum(row["touched_in_time"] for row in rows)
    return Handoffs(reps, total, met / total if total else None)


@dataclass(frozen=True)
class Dashboard:
    window: Window
    funnel: Funnel
    revenue: Revenue
    handoffs: Handoffs
    inbound: Inbound
    ussd: list[NodeStat]


def load(
    session: Session,
    win: Window,
    *,
    store: redis.Redis | None,
    menu: Menu | None = None,
    touch: str = "first",
) -> Dashboard:
    """Every figure of the dashboard: a fixed number of queries whatever the data size."""
    return Dashboard(
        window=win,
        funnel=funnel(session, win, store),
        revenue=revenue(session, win, touch),
        handoffs=handoffs(session, win),
        inbound=inbound(per_day(store, "inbound", win, _bound(session, inbound_counts)), win),
        ussd=ussd_dropoff(per_day(store, "ussd", win, _bound(session, ussd_counts)), menu),
    )


def forget(store: redis.Redis) -> None:
    """Drop every cached figure (the data under them was rewritten: a demo reset or reseed)."""
    keys = list(store.scan_iter(match=f"{CACHE_PREFIX}:*", count=1000))
    if keys:
        store.delete(*keys)


WARM_EVERY = 60  # seconds: how often a worker fills the cache's missing days


def warm(session: Session, store: redis.Redis) -> bool:
    """Count and cache the closed days of the longest range that the cache lacks, so the
    first dashboard view after a day rolls over (or after Redis lost its data) is as quick as
    the next. Workers call this from their sweeper; one of them per ``WARM_EVERY`` does the
    work. Returns whether this call did it."""
    try:
        if not store.set(f"{CACHE_PREFIX}:warming", 1, nx=True, ex=WARM_EVERY):
            return False
    except redis.RedisError:
        return False
    win = window(max(RANGES))
    per_day(store, "inbound", win, _bound(session, inbound_counts))
    per_day(store, "ussd", win, _bound(session, ussd_counts))
    return True


def _bound(
    session: Session, count: Callable[[Session, datetime, datetime], dict[date, DayValues]]
) -> Compute:
    return lambda start, end: count(session, start, end)
