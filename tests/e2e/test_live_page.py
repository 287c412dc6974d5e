"""The live page at `/`, in a real browser: Debian's chromium, headless, runs the page's
JavaScript against the service, and the DOM it leaves shows a price level placed over HTTP."""

from __future__ import annotations

import pytest

from tests.e2e.browser import Browser, find_chromium


def _chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("chromium is not installed and apt-get could not install it")
    return found


def _dom(url: str, until: str, deadline: float = 30.0) -> str:
    """The page's DOM once the JavaScript condition `until` holds (or when `deadline` seconds have passed)."""
    with Browser(_chromium()) as browser:
        browser.open(url)
        browser.wait_for(until, deadline)
        return browser.dom()


def test_live_page_is_served_without_outside_resources(api):
    response = api.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    page = response.text
    assert "/static/live.js" in page and "http://" not in page and "https://" not in page
    script = api.get("/static/live.js")
    assert script.status_code == 200 and "/api/v1/ws" in script.text
    assert "http://" not in script.text and "https://" not in script.text


def test_live_page_shows_a_price_level_placed_over_http(api, service):
    asset_id = api.new_asset()
    user = api.new_user(usd=1000)
    api.place(user, asset_id, "limit_buy", 3, "12.34")
    dom = _dom(f"{service.base_url}/?asset={asset_id}", "document.querySelector('[data-price=\"12.34\"]')")
    assert 'data-price="12.34"' in dom, dom[-3000:]
    assert 'data-side="bid"' in dom

