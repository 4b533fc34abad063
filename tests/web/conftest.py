"""Web page tests: signed-in test clients (the real sign-in form, CSRF included) and a real
Chromium driven by Playwright against the app on a live HTTP server."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crm.models import Role
from crm.runtime import Runtime
from crm.users import create_user

PASSWORD = "correct horse battery"
CHROMIUM = os.environ.get("CRM_TEST_CHROMIUM", "/usr/bin/chromium")
# Screenshots of the main pages: kept after the run as test artifacts.
ARTIFACTS = Path(os.environ.get("CRM_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(
    rt: Runtime, role: Role | str, email: str | None = None, name: str | None = None, **fields
) -> int:
    with rt.session() as session:
        user = create_user(
            session=session,
            email=email or f"{role}@example.com",
            role=str(role),
            password=PASSWORD,
            name=name or str(role).title(),
        )
        for key, value in fields.items():
            setattr(user, key, value)
        return user.id


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form as a browser would."""
    match = _CSRF.search(client.get(path, follow_redirects=True).get_data(as_text=True))
    assert match, f"no csrf_token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


class WebClient:
    """A signed-in test client whose posts carry the session's CSRF token."""

    def __init__(self, client: FlaskClient, user_id: int) -> None:
        self.client = client
        self.user_id = user_id
        self.token = csrf_token(client, "/")  # any page of the app has the token

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)


@pytest.fixture
def web_as(app: Flask, runtime: Runtime):  # type: ignore[no-untyped-def]
    """``web_as(role, email=None, **user_fields)``: a new user, signed in on its own client."""

    def make(role: Role | str, email: str | None = None, **fields) -> WebClient:  # type: ignore[no-untyped-def]
        email = email or f"{role}-{os.urandom(3).hex()}@example.com"
        user_id = make_user(runtime, role, email, **fields)
        client = app.test_client()
        response = sign_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return WebClient(client, user_id)

    return make


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies) on the live app; fails the test on any console
    error, such as a Content-Security-Policy violation."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1360, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: message.type == "error" and errors.append(message.text))
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"browser console errors: {errors}"


def browser_sign_in(tab, email: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    tab.goto("/login")
    tab.fill("input[name=email]", email)
    tab.fill("input[name=password]", password)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"^(?!.*/login).*$"))


def screenshot(tab, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=False)
    return path
