"""The pipeline board: columns with counts and totals per currency, moving deals by button, by
htmx and by drag and drop in a real browser, and who may see and move what."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from crm.contacts import resolve_by_phone
from crm.deals import move_stage, open_deal
from crm.models import Contact, Deal, Role
from crm.models.base import utcnow
from crm.runtime import Runtime
from crm.web.pipeline import PER_STAGE
from tests.web.conftest import WebClient, browser_sign_in, make_user, screenshot


def deal(
    rt: Runtime,
    title: str,
    amount: str,
    currency: str = "GHS",
    stage: str = "qualified",
    owner_id: int | None = None,
    phone: str = "+233241000001",
    name: str = "Ama Mensah",
) -> int:
    with rt.session() as session:
        contact = resolve_by_phone(session=session, e164=phone, name=name).contact
        contact.owner_id = owner_id
        return open_deal(
            session,
            contact,
            title=title,
            amount=amount,
            currency=currency,
            stage=stage,
            owner_id=owner_id,
            actor="test",
        ).id


def column(page: str, stage: str) -> str:
    """The HTML of one column of the board."""
    start = page.index(f'data-stage="{stage}" data-outcome')
    end = page.find('<section class="column', start)
    return page[start : end if end > 0 else len(page)]


def header(page: str, stage: str) -> str:
    """A column's header, text only: its name, count and totals."""
    part = column(page, stage)
    part = part[part.index("<header") : part.index("</header>")]
    return " ".join(re.sub(r"<[^>]+>", " ", part).split())


def html(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def stage_of(rt: Runtime, deal_id: int) -> str:
    with rt.session() as session:
        return session.get_one(Deal, deal_id).stage


def test_columns_count_and_total_every_deal_per_currency(web_as, runtime: Runtime):
    deal(runtime, "Lamps", "1000.00")
    deal(runtime, "Fridge", "250.50", phone="+233241000002", name="Kofi")
    deal(runtime, "Pumps", "400", currency="KES", phone="+233241000003", name="Wanjiru")
    deal(runtime, "Panels", "99", stage="proposal", phone="+233241000004", name="Esi")
    won = deal(runtime, "Old win", "5000", stage="won", phone="+233241000005", name="Yaw")
    recent_win = deal(runtime, "New win", "70", stage="won", phone="+233241000006", name="Akua")
    with runtime.session() as session:
        session.get_one(Deal, won).closed_at = utcnow() - timedelta(days=45)
    admin: WebClient = web_as(Role.ADMIN)
    page = html(admin.get("/pipeline"))
    assert header(page, "qualified") == "qualified 3 GHS 1,250.50 KES 400.00"
    assert header(page, "proposal") == "proposal 1 GHS 99.00"
    assert header(page, "negotiation") == "negotiation 0 —"
    # Won and lost show what closed in the last 30 days, and say so.
    assert header(page, "won").startswith("won 1 GHS 70.00")
    assert f'id="deal-{recent_win}"' in page and f'id="deal-{won}"' not in page
    assert "closed in the last 30 days" in page
    card = column(page, "qualified")
    assert "Ama Mensah" in card and "Lamps" in card and "GHS 1,000.00" in card
    assert 'href="/contacts/' in card


def test_a_move_by_button_goes_through_the_deal_rules(web_as, runtime: Runtime):
    rep: WebClient = web_as(Role.REP)
    deal_id = deal(runtime, "Lamps", "1000", owner_id=rep.user_id)
    moved = rep.post(f"/deals/{deal_id}/stage", {"stage": "proposal"})
    assert moved.status_code == 302
    assert moved.headers["Location"] == f"/pipeline#deal-{deal_id}"
    assert stage_of(runtime, deal_id) == "proposal"
    page = html(rep.get("/pipeline"))
    assert "Moved “Lamps” to proposal." in page
    assert header(page, "proposal") == "proposal 1 GHS 1,000.00"
    assert header(page, "qualified") == "qualified 0 —"
    won = rep.post(f"/deals/{deal_id}/stage", {"stage": "won"})
    assert won.status_code == 302 and stage_of(runtime, deal_id) == "won"


def test_losing_without_a_reason_is_refused_with_a_visible_error(web_as, runtime: Runtime):
    rep: WebClient = web_as(Role.REP)
    deal_id = deal(runtime, "Lamps", "1000", owner_id=rep.user_id)
    refused = rep.post(f"/deals/{deal_id}/stage", {"stage": "lost"})
    assert refused.status_code == 302
    page = html(rep.get("/pipeline"))
    assert "flash-error" in page and "a lost deal needs lost_reason" in page
    assert stage_of(runtime, deal_id) == "qualified"
    # The same through htmx: the board comes back with the error, 422.
    partial = rep.post(f"/deals/{deal_id}/stage", {"stage": "lost"}, headers={"HX-Request": "1"})
    assert partial.status_code == 422
    assert html(partial).startswith('<section id="board"')
    assert "a lost deal needs lost_reason" in html(partial)
    # Without JavaScript, a card's "lost…" opens a page asking for the reason.
    asking = html(rep.get(f"/deals/{deal_id}/lost?stage=lost"))
    assert f'action="/deals/{deal_id}/stage"' in asking and '<option value="price">' in asking
    assert '<input type="hidden" name="stage" value="lost">' in asking
    lost = rep.post(f"/deals/{deal_id}/stage", {"stage": "lost", "lost_reason": "price"})
    assert lost.status_code == 302 and stage_of(runtime, deal_id) == "lost"
    assert "price" in column(html(rep.get("/pipeline")), "lost")


def test_an_htmx_move_answers_the_updated_board(web_as, runtime: Runtime):
    admin: WebClient = web_as(Role.ADMIN)
    deal_id = deal(runtime, "Lamps", "1000")
    response = admin.post(
        f"/deals/{deal_id}/stage", {"stage": "negotiation"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    board = html(response)
    assert "<html" not in board
    assert header(board, "negotiation") == "negotiation 1 GHS 1,000.00"
    assert "Moved “Lamps” to negotiation." in board


def test_reps_see_and_move_their_deals_and_the_unassigned_marketers_only_look(
    web_as, runtime: Runtime
):
    ama: WebClient = web_as(Role.REP)
    kofi: WebClient = web_as(Role.REP)
    marketer: WebClient = web_as(Role.MARKETER)
    mine = deal(runtime, "Ama's", "10", owner_id=ama.user_id)
    theirs = deal(runtime, "Kofi's", "20", owner_id=kofi.user_id, phone="+233241000009")
    nobodys = deal(runtime, "Open", "30", phone="+233241000010", name="Esi")
    page = html(ama.get("/pipeline"))
    assert f'id="deal-{mine}"' in page and f'id="deal-{nobodys}"' in page
    assert f'id="deal-{theirs}"' not in page
    assert header(page, "qualified") == "qualified 2 GHS 40.00"  # totals see what the rep sees
    assert ama.post(f"/deals/{theirs}/stage", {"stage": "proposal"}).status_code == 404
    assert ama.post(f"/deals/{nobodys}/stage", {"stage": "proposal"}).status_code == 302
    watching = html(marketer.get("/pipeline"))
    assert f'id="deal-{theirs}"' in watching and "move-form" not in watching
    assert 'draggable="true"' not in watching and "pipeline.js" not in watching
    assert marketer.post(f"/deals/{mine}/stage", {"stage": "proposal"}).status_code == 403
    assert marketer.get(f"/deals/{mine}/lost").status_code == 403
    assert ama.get(f"/deals/{theirs}/lost").status_code == 404
    assert ama.client.post(f"/deals/{mine}/stage", data={"stage": "won"}).status_code == 400
    assert stage_of(runtime, mine) == "qualified" and stage_of(runtime, theirs) == "qualified"


def test_the_board_shows_the_most_recent_deals_of_a_crowded_stage(web_as, runtime: Runtime):
    with runtime.session() as session:
        contact = resolve_by_phone(session=session, e164="+233241000001", name="Ama").contact
        ids = [
            open_deal(session, contact, title=f"Deal {i}", amount=1, actor="t").id
            for i in range(PER_STAGE + 3)
        ]
        move_stage(session, session.get_one(Deal, ids[-1]), "proposal", actor="t")
    admin: WebClient = web_as(Role.ADMIN)
    page = html(admin.get("/pipeline"))
    qualified = column(page, "qualified")
    shown = PER_STAGE + 2
    assert header(page, "qualified") == f"qualified {shown} USD {shown}.00"  # default currency
    assert qualified.count('<article class="card') == PER_STAGE
    assert f'id="deal-{ids[-2]}"' in qualified and f'id="deal-{ids[0]}"' not in qualified
    assert "+ 2 older not shown" in qualified


def test_drag_a_card_to_another_column_in_a_browser(page, runtime: Runtime):
    rep_id = make_user(runtime, Role.REP, "ama@example.com", name="Ama Owusu")
    lamps = deal(runtime, "Solar lamps x 20", "1250.50", owner_id=rep_id, name="Kwame Asante")
    fridge = deal(runtime, "Fridge", "800", "GHS", "proposal", rep_id, phone="+233241000002")
    deal(runtime, "Pump", "300", stage="won", owner_id=rep_id, phone="+233241000003", name="Esi")
    tab = page
    browser_sign_in(tab, "ama@example.com")
    tab.goto("/pipeline")
    proposal = tab.locator('.column[data-stage="proposal"]')
    assert proposal.locator(".totals").inner_text() == "GHS 800.00"
    tab.drag_and_drop(f"#deal-{lamps}", '.column[data-stage="proposal"]')
    proposal.locator(f"#deal-{lamps}").wait_for()
    assert proposal.locator(".totals").inner_text() == "GHS 2,050.50"
    assert proposal.locator(".count").inner_text() == "2"
    assert tab.locator('.column[data-stage="qualified"] .count').inner_text() == "0"
    assert tab.locator(".board-notice").inner_text() == "Moved “Solar lamps x 20” to proposal."
    assert stage_of(runtime, lamps) == "proposal"
    expect(tab.locator(".card.moving")).to_have_count(0)  # htmx has settled the new board
    screenshot(tab, "pipeline")
    # A card's Move buttons post its form through htmx: the board updates in place.
    tab.locator(f"#deal-{fridge} summary").click()
    tab.locator(f'#deal-{fridge} button[value="won"]').click()
    tab.locator(f'.column[data-stage="won"] #deal-{fridge}').wait_for()
    assert tab.locator('.column[data-stage="won"] .totals').inner_text() == "GHS 1,100.00"
    assert tab.url.endswith("/pipeline")  # no page load
    # Dropping on lost asks for the reason first.
    tab.drag_and_drop(f"#deal-{lamps}", '.column[data-stage="lost"]')
    tab.locator("#lost-dialog select").select_option("competitor")
    tab.locator('#lost-dialog button[value="confirm"]').click()
    tab.locator(f'.column[data-stage="lost"] #deal-{lamps}').wait_for()
    assert "competitor" in tab.locator(f"#deal-{lamps}").inner_text()
    assert stage_of(runtime, lamps) == "lost"
    tab.locator(f"#deal-{lamps} .card-contact").click()
    tab.wait_for_url(re.compile(r"/contacts/\d+$"))
    assert tab.locator("h1").inner_text() == "Kwame Asante"
    assert "Solar lamps x 20" in tab.locator("#deals").inner_text()
    screenshot(tab, "contact")


def test_a_rep_does_not_see_the_name_of_another_reps_contact_on_their_deal(web_as, runtime):
    """A rep may own a deal on a contact another rep owns; the contact's page is a 404 for
    them, so the board does not show its name either."""
    rep = web_as(Role.REP)
    other = web_as(Role.REP)
    deal_id = deal(runtime, "Lamps", "100", owner_id=rep.user_id, name="Secret Customer")
    with runtime.session() as session:
        found = session.get_one(Deal, deal_id)
        session.get_one(Contact, found.contact_id).owner_id = other.user_id
    board = html(rep.get("/pipeline"))
    assert f'id="deal-{deal_id}"' in board and "Secret Customer" not in board
    lost = html(rep.get(f"/deals/{deal_id}/lost"))
    assert "Secret Customer" not in lost
    admin = web_as(Role.ADMIN)
    assert "Secret Customer" in html(admin.get("/pipeline"))
