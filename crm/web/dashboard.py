"""The dashboard: the funnel, revenue, handoffs, sentiment and USSD drop-off, as pictures.

The figures come from ``crm.dashboard_stats`` (revenue and handoffs through ``crm.reports``,
as the reports API); this module only turns them into charts (``crm.web.charts``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import abort, current_app, render_template, request
from markupsafe import Markup
from sqlalchemy.orm import Session

from crm import dashboard_stats as stats
from crm.reports import ReportError
from crm.web import charts, web
from crm.web.auth import MARKETING, page
from crm.web.charts import Series, Step

STAGE_NAMES = {"mql": "MQL", "sql": "SQL"}


def stage_name(stage: str) -> str:
    return STAGE_NAMES.get(stage, stage.capitalize())


def duration(seconds: float) -> str:
    """Speed-to-lead as people say it: 45 s, 3 min 20 s, 2 h 5 min."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, rest = divmod(total, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min"


def day_label(day: date) -> str:
    return day.strftime("%d %b")


def in_currency(currency: str) -> Callable[[float], str]:
    return lambda value: f"{currency} {value:,.2f}"


def _days() -> int:
    raw = request.args.get("days", str(stats.DEFAULT_DAYS))
    if not raw.isdecimal() or int(raw) not in stats.RANGES:
        abort(400, f"days must be one of {', '.join(map(str, stats.RANGES))}")
    return int(raw)


def _touch() -> str:
    touch = request.args.get("touch", "first")
    if touch not in stats.TOUCHES:
        abort(400, "touch must be first or last")
    return touch


def funnel_chart(funnel: stats.Funnel) -> Markup:
    steps = []
    for step in funnel.steps:
        conversion = "" if step.conversion is None else f"{charts.percent(step.conversion)} · "
        steps.append(
            Step(stage_name(step.stage), step.reached, f"{conversion}{step.at_stage:,} now")
        )
    return charts.funnel(
        "chart-funnel",
        "Contacts who reached each stage",
        steps,
        headers=("Stage", "Reached", "Conversion · at the stage now"),
    )


def revenue_charts(revenue: stats.Revenue) -> list[Markup]:
    """Per currency (amounts in different currencies are never added up): by channel and by
    campaign."""
    figures = []
    for currency, bars in revenue.by_channel.items():
        figures.append(
            charts.hbars(
                f"chart-revenue-channel-{currency.lower()}",
                f"Revenue by {revenue.touch}-touch channel, {currency}",
                [(bar.label, float(bar.revenue)) for bar in bars],
                fmt=in_currency(currency),
                headers=("Channel", "Revenue"),
            )
        )
        figures.append(
            charts.hbars(
                f"chart-revenue-campaign-{currency.lower()}",
                f"Revenue by {revenue.touch}-touch campaign, {currency}",
                [(bar.label, float(bar.revenue)) for bar in revenue.by_campaign.get(currency, [])],
                fmt=in_currency(currency),
                css="bar-alt",
                headers=("Campaign", "Revenue"),
            )
        )
    return figures


def handoff_charts(handoffs: stats.Handoffs) -> tuple[Markup, Markup]:
    reps = handoffs.reps
    speed = charts.grouped_hbars(
        "chart-speed",
        "Speed-to-lead per rep",
        [r.rep for r in reps],
        [
            Series("Mean", [r.mean_s for r in reps], "bar"),
            Series(
                "Worst", [None if r.worst_s is None else float(r.worst_s) for r in reps], "bar-alt"
            ),
        ],
        fmt=duration,
        empty="No handoffs in this range.",
    )
    sla = charts.hbars(
        "chart-sla",
        "SLA met (first touch before the deadline)",
        [(r.rep, r.sla_met_rate) for r in reps if r.sla_met_rate is not None],
        fmt=charts.percent,
        max_value=1.0,
        headers=("Rep", "SLA met"),
        empty="No handoffs in this range.",
    )
    return speed, sla


def sentiment_charts(inbound: stats.Inbound) -> tuple[Markup, Markup]:
    days = [day_label(d.day) for d in inbound.trend]
    names = {"negative": "Negative", "neutral": "Neutral", "positive": "Positive"}
    share = charts.lines(
        "chart-sentiment-share",
        "Share of inbound messages by sentiment, per day",
        days,
        [Series(names[s], [d.share(s) for d in inbound.trend], f"s-{s}") for s in stats.SENTIMENTS],
        fmt=charts.percent,
        max_value=1.0,
        empty="No inbound messages read by the model in this range.",
    )
    volume = charts.stacked_columns(
        "chart-sentiment-volume",
        "Inbound messages by sentiment, per day",
        days,
        [
            Series(names[s], [getattr(d, s) for d in inbound.trend], f"s-{s}")
            for s in stats.SENTIMENTS
        ],
        empty="No inbound messages read by the model in this range.",
    )
    return share, volume


def ussd_chart(nodes: list[stats.NodeStat]) -> Markup:
    return charts.grouped_hbars(
        "chart-ussd",
        "USSD sessions per menu node: reached, finished there, dropped there",
        [n.label for n in nodes],
        [
            Series("Reached", [n.reached for n in nodes], "bar-alt"),
            Series("Finished here", [n.completed for n in nodes], "s-positive"),
            Series("Dropped here", [n.dropped for n in nodes], "s-negative"),
        ],
        empty="No USSD sessions in this range.",
    )


@web.get("/dashboard")
@page(MARKETING)
def dashboard(*, session: Session):  # type: ignore[no-untyped-def]
    days, touch = _days(), _touch()
    runtime = current_app.extensions["crm"]
    try:
        data = stats.load(
            session, stats.window(days), store=runtime.redis, menu=runtime.menu, touch=touch
        )
    except (stats.RangeError, ReportError) as exc:
        abort(400, str(exc))
    speed, sla = handoff_charts(data.handoffs)
    share, volume = sentiment_charts(data.inbound)
    return render_template(
        "web/dashboard.html",
        data=data,
        days=days,
        touch=touch,
        ranges=stats.RANGES,
        touches=stats.TOUCHES,
        funnel=funnel_chart(data.funnel),
        revenue=revenue_charts(data.revenue),
        speed=speed,
        sla=sla,
        share=share,
        volume=volume,
        ussd=ussd_chart(data.ussd),
        stage_name=stage_name,
        duration=duration,
    )
