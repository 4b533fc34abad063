"""The dashboard page: each chart checked against data made through the services and webhooks,
who may open it, the range parameter, the SVG chart helpers, and a real browser."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.contacts import find_by_phone, resolve_by_phone
from crm.deals import move_stage, open_deal
from crm.enrichment import enrich
from crm.handoffs import record_first_touch
from crm.models import Campaign, Interaction
from crm.models.base import utcnow
from crm.routing import Trigger, hand_off
from crm.runtime import Runtime
from crm.web import charts
from tests.conftest import Webhooks, run_jobs
from tests.crm.test_dashboard_stats import (
    by_keyword,
    contacts_in_stages,
    inbound_messages,
    ussd_sessions,
)
from tests.crm.test_routing import add_rep
from tests.web.conftest import browser_sign_in, make_user, screenshot
from tests.workers.test_campaign_send import PHONES, do_launch, make_campaign

_ROW = re.compile(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>')
_CELL = re.compile(r'<td class="num">(.*?)</td>')


def figure(page: str, chart_id: str) -> str:
    """One chart's ``<figure>`` from the page."""
    match = re.search(rf'<figure class="chart-figure" id="{chart_id}">.*?</figure>', page, re.S)
    assert match, f"no chart {chart_id} on the page"
    return match.group(0)


def rows(page: str, chart_id: str) -> list[list[str]]:
    """The rows of a chart's data table, as the reader sees them (unescaped)."""
    return [
        [html.unescape(head), *(html.unescape(c) for c in _CELL.findall(cells))]
        for head, cells in _ROW.findall(figure(page, chart_id))
    ]


def stat(page: str, stat_id: str) -> str:
    match = re.search(rf'<div class="stat" id="{stat_id}">(.*?)</div>\s*</div>', page, re.S)
    assert match, stat_id
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def dashboard(web_as, path: str = "/dashboard") -> str:  # type: ignore[no-untyped-def]
    response = web_as("marketer").get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def day(days_ago: int = 0) -> str:
    return (utcnow() - timedelta(days=days_ago)).strftime("%d %b")


# --- access and parameters -------------------------------------------------------------------


def test_a_rep_may_not_open_the_dashboard_a_marketer_and_an_admin_may(web_as):
    assert web_as("rep").get("/dashboard").status_code == 403
    assert web_as("marketer").get("/dashboard").status_code == 200
    assert web_as("admin").get("/dashboard").status_code == 200


@pytest.mark.parametrize(
    "query", ["days=14", "days=abc", "days=-7", "days=", "touch=middle", "days=30&touch="]
)
def test_a_range_or_touch_not_offered_is_a_400_page(web_as, query: str):
    response = web_as("marketer").get(f"/dashboard?{query}")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "400" in text and ("days must be one of 7, 30, 90" in text or "touch must be" in text)


def test_an_empty_dashboard_shows_every_section_and_defaults_to_30_days(web_as):
    page = dashboard(web_as)
    assert re.search(r'aria-current="page">Last 30 days<', page)
    for heading in ("Funnel", "Sentiment", "Revenue won", "Handoffs per rep", "USSD menu"):
        assert heading in page
    assert "No deals won in this range." in page
    assert "No handoffs in this range." in page
    assert "No USSD sessions in this range." in page
    assert rows(page, "chart-funnel")[0] == ["Subscriber", "0", "0 now"]
    assert stat(page, "stat-contacts").startswith("New contacts 0")


# --- each figure from real data --------------------------------------------------------------


def test_the_funnel_shows_each_stage_reached_with_conversions(web_as, runtime: Runtime):
    contacts_in_stages(runtime, {"subscriber": 3, "lead": 3, "mql": 1, "customer": 1})
    page = dashboard(web_as)
    assert rows(page, "chart-funnel") == [
        ["Subscriber", "8", "3 now"],
        ["Lead", "5", "62.5% · 3 now"],
        ["MQL", "2", "40.0% · 1 now"],
        ["SQL", "1", "50.0% · 0 now"],
        ["Opportunity", "1", "100.0% · 0 now"],
        ["Customer", "1", "100.0% · 1 now"],
    ]
    funnel = figure(page, "chart-funnel")
    assert 'role="img"' in funnel and "<title id=" in funnel
    widths = {
        label: float(width)
        for width, label in re.findall(
            r'width="([\d.]+)" height="[\d.]+" class="bar funnel-step">'
            r"<title>(\w+):",
            funnel,
        )
    }
    assert widths["Lead"] == pytest.approx(widths["Subscriber"] * 5 / 8, abs=0.1)
    assert stat(page, "stat-contacts").startswith("New contacts 8 of 8 contacts")


def test_revenue_by_channel_and_by_campaign_per_currency(
    web_as, runtime: Runtime, webhooks: Webhooks
):
    # A campaign brings a reply (the reply is attributed to it), then a won deal.
    campaign_id = make_campaign(runtime, count=2)
    with runtime.session() as session:
        session.get_one(Campaign, campaign_id).name = "Lamps <20% off>"
    do_launch(runtime, campaign_id)
    run_jobs(runtime)
    sid = "SM" + uuid.uuid4().hex
    assert webhooks.message(From=PHONES[0], Body="great, I want one", MessageSid=sid).status_code
    with runtime.session() as session:
        [reply] = session.scalars(
            select(Interaction.id).where(Interaction.provider_message_id == sid)
        ).all()
        enrich(session, [reply], by_keyword)
    with runtime.session() as session:
        buyer = find_by_phone(session, PHONES[0])
        assert buyer is not None and buyer.first_touch_campaign_id == campaign_id
        buyer.first_touch_channel = "sms"
        deal = open_deal(session, buyer, title="Lamp", amount="90", currency="GHS", actor="t")
        move_stage(session, deal, "won", actor="t")
        other = resolve_by_phone(session=session, e164="+233240000077", channel="whatsapp")
        deal = open_deal(session, other.contact, title="TV", amount="10", currency="USD", actor="t")
        move_stage(session, deal, "won", actor="t")

    page = dashboard(web_as)
    assert rows(page, "chart-revenue-channel-ghs") == [["SMS", "GHS 90.00"]]
    assert rows(page, "chart-revenue-channel-usd") == [["WhatsApp", "USD 10.00"]]
    assert rows(page, "chart-revenue-campaign-ghs") == [["Lamps <20% off>", "GHS 90.00"]]
    assert rows(page, "chart-revenue-campaign-usd") == [["No campaign", "USD 10.00"]]
    assert "Lamps <20% off>" not in page and "Lamps &lt;20% off&gt;" in page
    assert stat(page, "stat-revenue") == "Revenue won GHS 90.00 USD 10.00 2 deals won"
    assert "first-touch channel" in figure(page, "chart-revenue-channel-ghs")
    last = dashboard(web_as, "/dashboard?touch=last")
    assert "Revenue by last-touch channel, GHS" in last
    assert re.search(r'aria-current="page">Last touch<', last)


def test_speed_to_lead_and_sla_met_per_rep(web_as, runtime: Runtime):
    ama = add_rep(runtime, "Ama")
    with runtime.session() as session:
        for i, minutes in enumerate((1, 20)):  # the SLA is 15 minutes
            contact = resolve_by_phone(session=session, e164=f"+23324000002{i}").contact
            handoff = hand_off(session, contact, Trigger("mql", "asked about price"))
            assert handoff is not None
            touched = handoff.created_at + timedelta(minutes=minutes)
            record_first_touch(session, contact.id, ama, now=touched)

    page = dashboard(web_as)
    assert rows(page, "chart-speed") == [["Ama", "10 min 30 s", "20 min"]]
    assert rows(page, "chart-sla") == [["Ama", "50.0%"]]
    assert stat(page, "stat-handoffs") == "Handoffs 2 SLA met: 50.0%"


def test_sentiment_trend_per_day(web_as, runtime: Runtime, webhooks: Webhooks):
    inbound_messages(runtime, webhooks, ["It came late", "late again"], days_ago=1)
    inbound_messages(runtime, webhooks, ["great lamp", "ok", "great service"])

    page = dashboard(web_as, "/dashboard?days=7")
    share = rows(page, "chart-sentiment-share")
    assert [r[0] for r in share] == [day(n) for n in range(6, -1, -1)]
    assert share[-2] == [day(1), "100.0%", "0.0%", "0.0%"]
    assert share[-1] == [day(0), "0.0%", "33.3%", "66.7%"]
    assert share[0] == [day(6), "-", "-", "-"]
    # Two days in a row: each sentiment is one line through two points.
    assert figure(page, "chart-sentiment-share").count("<polyline") == 3
    volume = rows(page, "chart-sentiment-volume")
    assert volume[-2] == [day(1), "2", "0", "0", "2"]
    assert volume[-1] == [day(0), "0", "1", "2", "3"]
    assert stat(page, "stat-inbound").startswith("Inbound messages 5 ")


def test_ussd_drop_off_per_menu_node(web_as, webhooks: Webhooks):
    ussd_sessions(webhooks)
    page = dashboard(web_as)
    assert rows(page, "chart-ussd") == [
        ["Start menu", "3", "0", "1"],
        ["Products and prices", "1", "0", "0"],
        ["Update my details", "1", "0", "1"],
        ["Solar lamp with phone charger", "1", "1", "0"],
    ]
    assert "4 USSD sessions" in stat(page, "stat-inbound")


# --- the chart helpers -------------------------------------------------------------------------


def test_chart_labels_are_escaped():
    hostile = '<script>alert("x")</script>'
    for chart in (
        charts.hbars("c1", hostile, [(hostile, 1.0)]),
        charts.grouped_hbars("c2", "t", [hostile], [charts.Series(hostile, [1.0], "bar")]),
        charts.funnel("c3", "t", [charts.Step(hostile, 3, hostile)]),
        charts.lines("c4", "t", [hostile, "b"], [charts.Series("s", [1.0, 2.0], "bar")]),
        charts.stacked_columns("c5", "t", [hostile], [charts.Series("s", [1.0], "bar")]),
    ):
        assert "<script>" not in chart
        assert "&lt;script&gt;" in chart


def test_bar_lengths_are_proportional_to_the_values():
    chart = charts.hbars("c", "t", [("a", 10.0), ("b", 5.0), ("c", 0.0)])
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', chart)]
    assert widths[0] == pytest.approx(2 * widths[1]) and widths[2] == 0

    def lengths(chart: str) -> list[float]:
        return [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', chart)]

    full = lengths(charts.hbars("c", "t", [("a", 1.0), ("b", 3.0)]))
    capped = lengths(charts.hbars("c", "t", [("a", 1.0), ("b", 3.0)], max_value=4.0))
    assert capped[1] == pytest.approx(full[1] * 3 / 4) and capped[1] == pytest.approx(3 * capped[0])


def test_a_missing_value_breaks_the_line_and_shares_fill_the_column():
    chart = charts.lines("c", "t", list("abcde"), [charts.Series("s", [1, 2, None, 3, 4], "bar")])
    assert chart.count("<polyline") == 2
    stacked = charts.stacked_columns(
        "c",
        "t",
        ["d"],
        [charts.Series("a", [1], "s-a"), charts.Series("b", [3], "s-b")],
        share=True,
    )
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', stacked)]
    plot = charts.TIME_HEIGHT - charts.PLOT_TOP - charts.PLOT_BOTTOM
    assert sum(heights) == pytest.approx(plot) and heights[1] == pytest.approx(3 * heights[0])
    assert "No data" in charts.stacked_columns("c", "t", ["d"], [charts.Series("a", [0], "x")])
    # The count axis ends on a round number that splits into four round ticks.
    assert [charts.nice_top(v) for v in (3, 9, 13, 130, 1000)] == [4, 10, 20, 200, 1000]


# --- in a real browser -------------------------------------------------------------------------


def test_the_dashboard_in_a_browser(page, runtime: Runtime, webhooks: Webhooks):
    make_user(runtime, "marketer", "mia@example.com", name="Mia")
    contacts_in_stages(runtime, {"subscriber": 40, "lead": 25, "mql": 9, "sql": 5, "customer": 3})
    inbound_messages(runtime, webhooks, ["late", "late", "ok", "great"], days_ago=2)
    inbound_messages(runtime, webhooks, ["late", "ok", "ok", "great"], days_ago=1)
    inbound_messages(runtime, webhooks, ["great", "great", "ok"])
    ussd_sessions(webhooks)
    ama = add_rep(runtime, "Ama")
    with runtime.session() as session:
        contact = resolve_by_phone(session=session, e164="+233240000099", channel="whatsapp")
        handoff = hand_off(session, contact.contact, Trigger("mql", "asked about price"))
        assert handoff is not None
        record_first_touch(
            session, contact.contact.id, ama, now=handoff.created_at + timedelta(minutes=4)
        )
        deal = open_deal(
            session, contact.contact, title="Kit", amount="1200", currency="GHS", actor="t"
        )
        move_stage(session, deal, "won", actor="t")

    browser_sign_in(page, "mia@example.com")
    page.goto("/dashboard")
    charts_on_page = page.locator("svg.chart")
    assert charts_on_page.count() >= 7
    for i in range(charts_on_page.count()):
        chart = charts_on_page.nth(i)
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 20
    assert page.locator("#chart-funnel rect.funnel-step").count() == 6
    screenshot(page, "dashboard")
    # The figures behind a chart open for a screen reader or a curious eye.
    page.locator("#chart-sla summary").click()
    assert page.locator("#chart-sla table").is_visible()
    page.get_by_role("link", name="Last 7 days").click()
    page.wait_for_url("**/dashboard?days=7*")
    assert page.locator('a[aria-current="page"]', has_text="Last 7 days").count() == 1
    assert page.locator("#chart-sentiment-share svg").is_visible()
