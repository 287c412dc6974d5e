"""The live page at `/`, in a real browser: Debian's chromium, headless, runs the page's
JavaScript against the service, and the DOM it leaves shows a price level placed over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=600)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and apt-get could not install it")
    return found


def _dom(url: str, budget_ms: int = 60000) -> str:
    # Virtual time: the budget passes in well under a second of real time once the page idles.
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                 f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


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
    dom = _dom(f"{service.base_url}/?asset={asset_id}")
    assert 'data-price="12.34"' in dom, dom[-3000:]
    assert 'data-side="bid"' in dom
