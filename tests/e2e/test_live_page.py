"""The live page at `/`, in a real browser: Debian's chromium, headless, runs the page's
JavaScript against the service, and the DOM it leaves shows a price level placed over HTTP."""

from __future__ import annotations

import re

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


def test_live_page_lists_a_trade_made_over_http_and_draws_its_rows_whole(api, service):
    # Answers to the page's subscribe ops carry `channel` and `asset_id` too; taken for a trade or a book
    # frame they broke the trades table (a row without a time) and resubscribed the book for ever.
    asset_id = api.new_asset()
    seller = api.new_user(assets={asset_id: 5})
    buyer = api.new_user(usd=1000)
    api.place(seller, asset_id, "limit_sell", 2, "12.50")
    api.place(buyer, asset_id, "market_buy", 2)
    api.place(buyer, asset_id, "limit_buy", 3, "12.34")
    dom = _dom(f"{service.base_url}/?asset={asset_id}",
               "document.querySelector('[data-price=\"12.34\"]') && document.querySelector('#trades tbody tr')")
    assert 'data-price="12.34"' in dom, dom[-3000:]
    trades = re.search(r'<table id="trades">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert trades is not None, dom[-3000:]
    rows = re.findall(r"<tr>(.*?)</tr>", trades.group(1), re.S)
    assert rows and all(row.count("<td") == 4 for row in rows), trades.group(1)[:2000]
    assert any(re.search(r">12\.50?<", row) for row in rows), rows
