"""Campaign pages: segment builder with a live count, composer, preview with exclusions and
UCS-2 culprits, launch, live progress and results; marketers and admins only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from crm.audience import EXCLUSION_REASONS
from crm.campaigns import create_campaign
from crm.consent import set_consent
from crm.contacts import resolve_by_phone, set_tags
from crm.models import (
    Campaign,
    ConsentStatus,
    Contact,
    OutboxJob,
    Role,
    Segment,
    User,
)
from crm.runtime import Runtime
from crm.segments import count, parse_filters
from crm.web.campaigns import EXCLUSION_WHY
from tests.conftest import Webhooks, finish_launch, run_jobs
from tests.web.conftest import browser_sign_in, make_user, screenshot

QUOTE = "\u2019"  # a right single quote: not in GSM-7, so the message goes as UCS-2
COUNT = re.compile(r'class="count-value" data-count="(\d+)"')


def customer(
    rt: Runtime,
    phone: str,
    name: str | None,
    *,
    tags: tuple[str, ...] = ("promo",),
    sms: ConsentStatus | None = ConsentStatus.OPTED_IN,
    stage: str | None = None,
    score: int | None = None,
) -> int:
    """A contact made the way the app makes them: by phone number, with tags and consent."""
    with rt.session() as session:
        contact = resolve_by_phone(session=session, e164=phone, name=name, channel="sms").contact
        set_tags(session=session, contact=contact, tags=list(tags))
        if sms is not None:
            set_consent(session=session, contact=contact, channel="sms", status=sms, source="t")
        if stage is not None:
            contact.lifecycle_stage = stage
        if score is not None:
            contact.score = score
        return contact.id


def segment(rt: Runtime, filters: dict[str, Any], name: str = "Promo") -> int:
    with rt.session() as session:
        parse_filters(filters)
        row = Segment(name=name, filters=filters)
        session.add(row)
        session.flush()
        return row.id


def campaign(rt: Runtime, user_id: int, segment_id: int | None, body: str, **fields: Any) -> int:
    with rt.session() as session:
        data = {"name": "Lamps", "channel": "sms", "segment_id": segment_id, "body": body}
        made = create_campaign(session, {**data, **fields}, session.get_one(User, user_id))
        return made.id


def status_of(rt: Runtime, campaign_id: int) -> str:
    with rt.session() as session:
        return session.get_one(Campaign, campaign_id).status


@pytest.fixture
def people(runtime: Runtime) -> dict[str, int]:
    return {
        "ama": customer(runtime, "+233241000001", "Ama Mensah", stage="lead", score=70),
        "kofi": customer(runtime, "+233241000002", "Kofi Boateng", stage="lead", score=20),
        "zoe": customer(runtime, "+254712000003", "Zoë Kamau", stage="customer", score=90),
        "esi": customer(runtime, "+233241000004", None, stage="mql", score=55),
        "stopped": customer(runtime, "+233241000005", "Yaw", sms=ConsentStatus.OPTED_OUT),
        "other": customer(runtime, "+233241000006", "Abena", tags=("staff",)),
    }


def test_a_rep_gets_403_on_every_campaign_page_and_action(web_as, runtime: Runtime, people):
    marketer = web_as(Role.MARKETER)
    segment_id = segment(runtime, {"tags": ["promo"]})
    campaign_id = campaign(runtime, marketer.user_id, segment_id, "Hi")
    rep = web_as(Role.REP)
    pages = [
        "/campaigns",
        "/campaigns/new",
        f"/campaigns/{campaign_id}",
        f"/campaigns/{campaign_id}/edit",
        f"/campaigns/{campaign_id}/preview",
        f"/campaigns/{campaign_id}/progress",
        f"/campaigns/{campaign_id}/sent",
        f"/campaigns/{campaign_id}/results",
        "/segments/new",
        f"/segments/{segment_id}",
        f"/segments/{segment_id}/count",
    ]
    for path in pages:
        assert rep.get(path).status_code == 403, path
    actions = [
        "/segments/new",
        "/segments/count",
        f"/segments/{segment_id}",
        f"/segments/{segment_id}/delete",
        "/campaigns/new",
        f"/campaigns/{campaign_id}/edit",
        f"/campaigns/{campaign_id}/launch",
        f"/campaigns/{campaign_id}/pause",
        f"/campaigns/{campaign_id}/resume",
        f"/campaigns/{campaign_id}/cancel",
        f"/campaigns/{campaign_id}/delete",
    ]
    form = {"name": "Mine", "channel": "sms", "variant_body_0": "Hi", "tags": "promo"}
    for path in actions:
        assert rep.post(path, form).status_code == 403, path
    assert status_of(runtime, campaign_id) == "draft"
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 1
        assert session.scalar(select(func.count()).select_from(Campaign)) == 1
    # The same pages open for a marketer and an admin.
    admin = web_as(Role.ADMIN)
    for client in (marketer, admin):
        for path in ("/campaigns", f"/campaigns/{campaign_id}", f"/segments/{segment_id}"):
            assert client.get(path).status_code == 200, path


def test_posts_without_the_csrf_token_are_refused(web_as, runtime: Runtime, people):
    marketer = web_as(Role.MARKETER)
    campaign_id = campaign(runtime, marketer.user_id, segment(runtime, {}), "Hi")
    raw = marketer.client  # posts without the token
    assert raw.post(f"/campaigns/{campaign_id}/launch").status_code == 400
    assert raw.post("/segments/count", data={"tags": "promo"}).status_code == 400
    assert raw.post("/segments/new", data={"name": "x"}).status_code == 400
    assert status_of(runtime, campaign_id) == "draft"
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 1


@pytest.mark.parametrize(
    ("form", "filters"),
    [
        ({}, {}),
        ({"tags": "promo"}, {"tags": ["promo"]}),
        (
            {"tags": "promo", "consent_sms": "opted_in"},
            {"tags": ["promo"], "consent": {"sms": "opted_in"}},
        ),
        (
            {"stages": ["lead", "mql"], "score_min": "50"},
            {"stages": ["lead", "mql"], "score_min": 50},
        ),
        ({"countries": "ke"}, {"countries": ["KE"]}),
        (
            {"exclude_tags": "staff", "consent_sms": "opted_out"},
            {"exclude_tags": ["staff"], "consent": {"sms": "opted_out"}},
        ),
        (
            {"consent_whatsapp": "unknown", "score_max": "60"},
            {"consent": {"whatsapp": "unknown"}, "score_max": 60},
        ),
    ],
)
def test_the_live_count_is_the_services_count(
    web_as, runtime: Runtime, people, form: dict, filters: dict
):
    marketer = web_as(Role.MARKETER)
    response = marketer.post("/segments/count", form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    match = COUNT.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    with runtime.session() as session:
        expected = count(session, parse_filters(filters))
    assert int(match.group(1)) == expected


def test_the_live_count_follows_the_filters(web_as, people):
    marketer = web_as(Role.MARKETER)
    counts = []
    for form in ({}, {"tags": "promo"}, {"tags": "promo", "consent_sms": "opted_in"}):
        body = marketer.post("/segments/count", form).get_data(as_text=True)
        counts.append(int(COUNT.search(body).group(1)))
    assert counts == [6, 5, 4]


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"score_min": "80", "score_max": "10"}, "score_min is above score_max"),
        ({"countries": "GH, XX"}, "XX are not ISO region codes"),
        ({"attributes": "town"}, "name=value"),
        ({"last_inbound_after": "yesterday"}, "ISO 8601"),
        ({"score_min": "99999999999999999999"}, "score_min must be an integer"),
    ],
)
def test_an_invalid_filter_shows_the_reason_instead_of_a_count(web_as, form: dict, reason: str):
    marketer = web_as(Role.MARKETER)
    response = marketer.post("/segments/count", form, headers={"HX-Request": "true"})
    assert response.status_code == 200  # the reason is the answer, shown in place of the count
    body = response.get_data(as_text=True)
    assert reason in body and "count-error" in body
    assert COUNT.search(body) is None


def test_the_builder_saves_and_updates_a_segment(web_as, runtime: Runtime, people):
    marketer = web_as(Role.MARKETER)
    page = marketer.get("/segments/new").get_data(as_text=True)
    assert 'hx-post="/segments/count"' in page and 'data-count="6"' in page
    created = marketer.post(
        "/segments/new",
        {
            "name": "Leads",
            "stages": ["lead"],
            "tags": "promo",
            "last_inbound_after": "2026-01-05T10:00",
        },
    )
    assert created.status_code == 302
    with runtime.session() as session:
        saved = session.scalars(select(Segment)).one()
        assert saved.filters == {
            "stages": ["lead"],
            "tags": ["promo"],
            "last_inbound_after": "2026-01-05T10:00:00+00:00",
        }
        segment_id = saved.id
    assert created.headers["Location"] == f"/segments/{segment_id}"
    shown = marketer.get(f"/segments/{segment_id}").get_data(as_text=True)
    assert 'value="2026-01-05T10:00"' in shown and 'value="lead" checked' in shown
    refused = marketer.post(f"/segments/{segment_id}", {"name": "Leads", "score_min": "x"})
    assert refused.status_code == 422 and "score_min must be an integer" in refused.get_data(
        as_text=True
    )
    updated = marketer.post(
        f"/segments/{segment_id}", {"name": "Town", "attributes": "town=Kumasi\nvip=true"}
    )
    assert updated.status_code == 302
    with runtime.session() as session:
        saved = session.get_one(Segment, segment_id)
        assert (saved.name, saved.filters) == (
            "Town",
            {"attributes": {"town": "Kumasi", "vip": True}},
        )
    listed = marketer.get("/campaigns").get_data(as_text=True)
    assert "Town" in listed and f"/segments/{segment_id}/count" in listed
    size = marketer.get(f"/segments/{segment_id}/count").get_data(as_text=True)
    assert "0 contacts" in size


def composer_form(segment_id: int, **fields: str) -> dict[str, str]:
    return {
        "name": "Rainy season",
        "channel": "sms",
        "segment_id": str(segment_id),
        "variant_name_0": "A",
        "variant_body_0": 'Hi {{ first_name | default("there") }}, lamps are 20% off',
        "schedule": "now",
        "timezone": "UTC",
        "quiet_start": "20:00",
        "quiet_end": "08:00",
        **fields,
    }


def test_the_composer_saves_through_the_service_and_refuses_with_reasons(
    web_as, runtime: Runtime, people
):
    marketer = web_as(Role.MARKETER)
    segment_id = segment(runtime, {"tags": ["promo"]})
    assert f'<option value="{segment_id}" selected' in marketer.get(
        f"/campaigns/new?segment_id={segment_id}"
    ).get_data(as_text=True)
    bad = marketer.post(
        "/campaigns/new", composer_form(segment_id, variant_body_0="Hi {{ frist_name }}")
    )
    assert bad.status_code == 422 and "frist_name" in bad.get_data(as_text=True)
    assert "Hi {{ frist_name }}" in bad.get_data(as_text=True)  # what was typed stays
    created = marketer.post(
        "/campaigns/new",
        composer_form(
            segment_id,
            variant_weight_0="70",
            variant_name_1="B",
            variant_weight_1="30",
            variant_body_1="Lamps: 20% off this week",
            schedule="later",
            send_at="2026-12-01T09:00",
            timezone="Africa/Nairobi",
            in_contact_timezone="on",
            quiet_start="",
            quiet_end="",
        ),
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    with runtime.session() as session:
        made = session.scalars(select(Campaign)).one()
        assert made.status == "scheduled" and made.in_contact_timezone
        assert made.send_at.isoformat() == "2026-12-01T06:00:00+00:00"  # 09:00 in Nairobi
        assert [(v["name"], v["weight"]) for v in made.variants] == [("A", 70), ("B", 30)]
        assert (made.quiet_start, made.quiet_end) == (None, None)
        campaign_id = made.id
    edit = marketer.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert 'value="2026-12-01T09:00"' in edit and "Lamps: 20% off this week" in edit
    # A refused edit changes nothing, not even the fields checked before the refusal.
    refused = marketer.post(
        f"/campaigns/{campaign_id}/edit",
        composer_form(segment_id, name="Renamed", sender="not a sender!"),
    )
    assert refused.status_code == 422 and "sender must be" in refused.get_data(as_text=True)
    with runtime.session() as session:
        assert session.get_one(Campaign, campaign_id).name == "Rainy season"
    saved = marketer.post(
        f"/campaigns/{campaign_id}/edit", composer_form(segment_id, name="Renamed")
    )
    assert saved.status_code == 302
    with runtime.session() as session:
        made = session.get_one(Campaign, campaign_id)
        assert (made.name, made.status, len(made.variants)) == ("Renamed", "draft", 1)


def test_the_draft_preview_shows_exclusions_with_reasons_and_the_ucs2_culprit(
    web_as, runtime: Runtime, people
):
    marketer = web_as(Role.MARKETER)
    with runtime.session() as session:  # on the segment, but with no number to send to
        contact = Contact(name="No phone", attributes={})
        session.add(contact)
        session.flush()
        set_tags(session=session, contact=contact, tags=["promo"])
    segment_id = segment(runtime, {"tags": ["promo"]})
    campaign_id = campaign(
        runtime,
        marketer.user_id,
        segment_id,
        "Hi {{ first_name | default('there') }}, it" + QUOTE + "s 20% off",
    )
    page = marketer.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'hx-get="/campaigns/{campaign_id}/preview"' in page and 'hx-trigger="load"' in page
    fragment = marketer.get(f"/campaigns/{campaign_id}/preview", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    body = fragment.get_data(as_text=True)
    assert 'data-reason="opted_out"' in body and "Opted out of this channel." in body
    assert 'data-reason="no_phone"' in body and "No phone number on record." in body
    assert QUOTE in body and "U+2019" in body  # the right quote forced UCS-2...
    assert 'class="suggestion mono">&#39;<' in body  # ...and a plain ' replaces it
    assert 'id="preview-recipients">4<' in body
    assert f"Hi Ama, it{QUOTE}s 20% off" in body and f"Hi there, it{QUOTE}s 20% off" in body
    assert "4 in UCS-2" in body and 'id="preview-cost">USD 0.' in body
    # Without JavaScript, the link computes it in the page.
    inline = marketer.get(f"/campaigns/{campaign_id}?preview=1").get_data(as_text=True)
    assert 'data-reason="no_phone"' in inline and "U+2019" in inline


def test_every_exclusion_reason_is_explained():
    assert set(EXCLUSION_REASONS) | {"needs_template", "render_failed"} == set(EXCLUSION_WHY)


def test_a_preview_without_a_segment_says_what_is_missing(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    campaign_id = campaign(runtime, marketer.user_id, None, "Hi")
    body = marketer.get(
        f"/campaigns/{campaign_id}/preview", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "choose a segment first" in body
    refused = marketer.post(f"/campaigns/{campaign_id}/launch", follow_redirects=True)
    assert "choose a segment first" in refused.get_data(as_text=True)
    assert status_of(runtime, campaign_id) == "draft"


def test_launch_from_the_page_queues_it_and_progress_stops_polling_when_done(
    web_as, runtime: Runtime, people, webhooks: Webhooks
):
    marketer = web_as(Role.MARKETER)
    segment_id = segment(runtime, {"tags": ["promo"]})
    campaign_id = campaign(
        runtime, marketer.user_id, segment_id, "Lamps are back", quiet_start=None, quiet_end=None
    )
    launched = marketer.post(f"/campaigns/{campaign_id}/launch")
    assert (
        launched.status_code == 302 and launched.headers["Location"] == f"/campaigns/{campaign_id}"
    )
    assert status_of(runtime, campaign_id) == "launching"
    with runtime.session() as session:
        jobs = session.scalars(select(OutboxJob.job)).all()
        assert "campaign_launch" in jobs
    polling = marketer.get(f"/campaigns/{campaign_id}/progress").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in polling and "launching" in polling
    again = marketer.post(f"/campaigns/{campaign_id}/launch", follow_redirects=True)
    assert "cannot be launched" in again.get_data(as_text=True)

    finish_launch(runtime, campaign_id)
    running = marketer.get(f"/campaigns/{campaign_id}/progress").get_data(as_text=True)
    assert 'value="0" max="4"' in running and 'hx-trigger="every 1s"' in running
    moving = marketer.get(f"/campaigns/{campaign_id}/sent").get_data(as_text=True)
    assert "0 / 4 sent" in moving and 'hx-trigger="every 2s"' in moving
    assert marketer.post(f"/campaigns/{campaign_id}/pause").status_code == 302
    assert status_of(runtime, campaign_id) == "paused"
    assert marketer.post(f"/campaigns/{campaign_id}/resume").status_code == 302
    run_jobs(runtime)
    done = marketer.get(f"/campaigns/{campaign_id}/progress").get_data(as_text=True)
    assert status_of(runtime, campaign_id) == "done"
    assert 'value="4" max="4"' in done and "100%" in done
    assert "hx-trigger" not in done  # finished: polling stops
    refused = marketer.post(f"/campaigns/{campaign_id}/cancel", follow_redirects=True)
    assert f"campaign {campaign_id} is done" in refused.get_data(as_text=True)
    page = marketer.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'hx-get="/campaigns/{campaign_id}/progress" hx-trigger="load"' in page
    inline = marketer.get(f"/campaigns/{campaign_id}?progress=1").get_data(as_text=True)
    assert 'value="4" max="4"' in inline  # without JavaScript
    listed = marketer.get("/campaigns").get_data(as_text=True)
    assert f'hx-get="/campaigns/{campaign_id}/sent"' in listed
    cell = marketer.get(f"/campaigns/{campaign_id}/sent").get_data(as_text=True)
    assert "4 / 4 sent" in cell and "hx-trigger" not in cell

    # Ama answers: a reply in the results.
    reply = webhooks.message(From="+233241000001", MessageSid="SM" + "r" * 32, Body="Yes please")
    assert reply.status_code == 200
    run_jobs(runtime)  # enrichment attributes the reply to the campaign
    results = marketer.get(f"/campaigns/{campaign_id}/results").get_data(as_text=True)
    assert 'id="result-sent">4<' in results
    assert 'id="result-reply">25.0%<' in results
    bars = re.findall(r'class="bar bar-(\w+)" x="\d+" y="\d+" width="([\d.]+)"', results)
    assert ("sent", "360.0") in bars and ("replied", "90.0") in bars


def test_delivery_counts_are_shared_a_few_seconds_while_the_campaign_sends(
    web_as, runtime: Runtime, people
):
    """The bar polls every second; the delivery counts (a lookup per sent recipient) come
    from Redis for a few seconds, and are counted afresh once the campaign has finished."""
    marketer = web_as(Role.MARKETER)
    segment_id = segment(runtime, {"tags": ["promo"]})
    campaign_id = campaign(
        runtime, marketer.user_id, segment_id, "Lamps are back", quiet_start=None, quiet_end=None
    )
    marketer.post(f"/campaigns/{campaign_id}/launch")
    finish_launch(runtime, campaign_id)
    marketer.get(f"/campaigns/{campaign_id}/progress")
    key = f"crm:campaign-delivery:{campaign_id}"
    assert 0 < runtime.redis.ttl(key) <= 5
    runtime.redis.set(key, '{"delivered": 3, "undelivered": 1}', ex=5)
    shown = marketer.get(f"/campaigns/{campaign_id}/progress").get_data(as_text=True)
    assert "3 delivered" in shown and "1 undelivered" in shown
    run_jobs(runtime)  # sends everything: done
    assert status_of(runtime, campaign_id) == "done"
    final = marketer.get(f"/campaigns/{campaign_id}/progress").get_data(as_text=True)
    assert "0 delivered" in final and "0 undelivered" in final  # the fake reports no delivery


def test_cancel_a_queued_launch_and_delete_only_drafts(web_as, runtime: Runtime, people):
    marketer = web_as(Role.MARKETER)
    segment_id = segment(runtime, {"tags": ["promo"]})
    first = campaign(runtime, marketer.user_id, segment_id, "Hi")
    second = campaign(runtime, marketer.user_id, segment_id, "Hello")
    marketer.post(f"/campaigns/{first}/launch")
    assert marketer.post(f"/campaigns/{first}/cancel").status_code == 302
    assert status_of(runtime, first) == "cancelled"
    kept = marketer.post(f"/campaigns/{first}/delete", follow_redirects=True)
    assert "kept for its results" in kept.get_data(as_text=True)
    assert marketer.post(f"/campaigns/{second}/delete").status_code == 302
    with runtime.session() as session:
        assert session.scalars(select(Campaign.id)).all() == [first]
    assert marketer.get(f"/campaigns/{second}").status_code == 404


def test_the_list_is_newest_first_in_keyset_pages(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    ids = [campaign(runtime, marketer.user_id, None, "Hi", name=f"C{i:02d}") for i in range(30)]
    first = marketer.get("/campaigns").get_data(as_text=True)
    names = re.findall(r"<strong>(C\d\d)</strong>", first)
    assert names == [f"C{i:02d}" for i in range(29, 4, -1)]
    assert f"/campaigns?before={ids[5]}" in first
    older = marketer.get(f"/campaigns?before={ids[5]}").get_data(as_text=True)
    assert re.findall(r"<strong>(C\d\d)</strong>", older) == [f"C{i:02d}" for i in range(4, -1, -1)]


def test_a_marketer_builds_composes_launches_and_watches_progress_in_a_browser(
    page, runtime: Runtime, people
):
    from playwright.sync_api import expect

    make_user(runtime, Role.MARKETER, "mk@example.com")
    tab = page
    browser_sign_in(tab, "mk@example.com")

    tab.goto("/segments/new")
    live = tab.locator("#segment-count .count-value")
    expect(live).to_have_text("6")
    tab.fill("input[name=name]", "Promo customers")
    tab.fill("input[name=tags]", "promo")
    expect(live).to_have_text("5")
    tab.select_option("select[name=consent_sms]", "opted_in")
    expect(live).to_have_text("4")
    tab.fill("input[name=score_min]", "80")
    tab.fill("input[name=score_max]", "10")
    expect(tab.locator("#segment-count .count-reason")).to_have_text("score_min is above score_max")
    tab.fill("input[name=score_min]", "")
    tab.fill("input[name=score_max]", "")
    expect(live).to_have_text("4")
    tab.select_option("select[name=consent_sms]", "")  # the preview will say who is left out
    expect(live).to_have_text("5")
    screenshot(tab, "campaign-builder")
    tab.click("button[type=submit].primary")
    expect(tab.locator(".flash-success")).to_contain_text("saved")

    tab.click("text=Use in a campaign")
    tab.fill("input[name=name]", "Lamps 20% off")
    tab.fill("textarea[name=variant_body_0]", "Hi , lamps are 20% off this week")
    tab.locator("textarea[name=variant_body_0]").press("Home")
    for _ in range(3):
        tab.locator("textarea[name=variant_body_0]").press("ArrowRight")
    tab.click('button.insert:has-text("first_name")')
    body = tab.locator("textarea[name=variant_body_0]")
    expect(body).to_have_value(
        'Hi {{ first_name | default("there") }}, lamps are 20% off this week'
    )
    expect(tab.locator("#counter-0")).to_contain_text("GSM-7 · 1 part")
    tab.fill("input[name=quiet_start]", "")
    tab.fill("input[name=quiet_end]", "")
    screenshot(tab, "campaign-composer")
    tab.click("text=Save and preview")

    expect(tab.locator("#preview-recipients")).to_have_text("4")
    expect(tab.locator("#campaign-preview")).to_contain_text("Hi Ama, lamps are 20% off this week")
    expect(tab.locator('li.exclusion[data-reason="opted_out"]')).to_contain_text("1 opted_out")
    screenshot(tab, "campaign-preview")
    tab.click("button.launch")
    bar = tab.locator("#campaign-bar")
    expect(tab.locator("#campaign-progress")).to_have_attribute("data-status", "launching")

    run_jobs(runtime)  # the worker writes the recipients; the fake Twilio accepts the sends
    expect(tab.locator("#campaign-percent")).to_have_text("100%", timeout=10_000)
    expect(bar).to_have_attribute("value", "4")
    expect(bar).to_have_attribute("max", "4")
    expect(tab.locator("#campaign-progress")).to_have_attribute("data-status", "done")
    expect(tab.locator('#campaign-progress li.exclusion[data-reason="opted_out"]')).to_be_visible()
    screenshot(tab, "campaign-progress")

    tab.click("text=See results")
    expect(tab.locator("#result-sent")).to_have_text("4")
    expect(tab.locator("#all-bars .bar-sent")).to_have_attribute("width", "360.0")
    screenshot(tab, "campaign-results")

    tab.click("nav.crumbs >> text=Campaigns")
    expect(tab.locator(".row-progress")).to_contain_text("4 / 4 sent")
    expect(tab.locator(".segment-size")).to_have_text("5 contacts")
    screenshot(tab, "campaigns")


def test_an_old_segment_stays_chosen_when_a_campaign_is_edited(web_as, runtime: Runtime):
    """The composer lists the newest segments; the campaign's own is offered however old,
    so saving the form does not clear it."""
    from crm.web.campaigns import SEGMENT_CHOICES

    marketer = web_as(Role.MARKETER)
    old = segment(runtime, {}, name="The first segment")
    with runtime.session() as session:
        session.add_all(Segment(name=f"S{i}", filters={}) for i in range(SEGMENT_CHOICES))
    campaign_id = campaign(runtime, marketer.user_id, old, "Hello")
    form = marketer.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert re.search(rf'<option value="{old}"[^>]*selected', form)


def test_a_scheduled_time_is_listed_on_the_campaigns_clock(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    segment_id = segment(runtime, {})
    campaign(
        runtime,
        marketer.user_id,
        segment_id,
        "Hello",
        send_at="2031-05-01T09:00:00+03:00",
        timezone="Africa/Nairobi",
    )
    with runtime.session() as session:
        session.scalars(select(Campaign)).one().status = "scheduled"
    listed = marketer.get("/campaigns").get_data(as_text=True)
    assert "01 May 09:00 Africa/Nairobi" in listed
