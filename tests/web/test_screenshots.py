"""The main pages with the demo data (`crm demo`), in Chromium: each page renders its real
content without a console error, and its screenshot is saved as a test artifact. The README's
pictures are these files (copied to docs/screenshots/)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from crm.demo import seed
from crm.runtime import Runtime
from tests.web.conftest import browser_sign_in, screenshot


def test_main_pages_with_the_demo_data(page, runtime: Runtime):
    credentials = seed(runtime)
    assert credentials is not None
    password = credentials.password

    browser_sign_in(page, "rep@example.com", password)
    page.goto("/inbox?view=all")
    threads = page.locator(".threads .thread")
    expect(threads.first).to_be_visible()
    assert threads.count() >= 10
    expect(page.locator(".threads .sla").first).to_be_visible()  # a hot lead's countdown
    screenshot(page, "inbox")

    page.goto("/inbox?view=hot")
    page.locator(".threads .thread a").first.click()
    page.wait_for_url(re.compile(r"/conversations/\d+"))
    expect(page.locator("#handoff")).to_contain_text("Hot lead")
    expect(page.locator("#timeline .entry.inbound").first).to_be_visible()
    expect(page.locator(".threads .thread").first).to_be_visible()  # the list loaded beside it
    screenshot(page, "conversation")

    page.goto("/contacts")
    expect(page.locator("table tbody tr").first).to_be_visible()
    screenshot(page, "contacts")
    page.goto("/pipeline")
    expect(page.locator(".card").first).to_be_visible()
    screenshot(page, "pipeline")

    page.context.clear_cookies()
    browser_sign_in(page, "marketer@example.com", password)
    page.goto("/dashboard")
    for title in ("Funnel", "Revenue", "Sentiment", "USSD"):
        expect(page.locator("main")).to_contain_text(title)
    assert page.locator("svg[role=img]").count() >= 5
    screenshot(page, "dashboard")
    page.goto("/campaigns")
    expect(page.locator("main")).to_contain_text("done")
    screenshot(page, "campaigns")
