"""The live page's screenshot in README.md (docs/live-page.png), made against the real service.

    .venv/bin/python bench/live_page_screenshot.py [--minutes 5] [--output docs/live-page.png]

It starts this checkout's service (`python -m gateway serve`, a temp data dir, fsync on, a free port, its own
local Ray), creates an asset and three users over the admin API, trades for `--minutes` (a random walk of
prices, a few trades a minute, so the 1m candles have several buckets), leaves a ladder of resting bids and
asks around the last price, and has Debian's chromium, headless, load `/?asset=...` over the DevTools
protocol (tests/e2e/browser.py): once the page shows the ladder it pastes one maker's API key into it, places
a few market orders (the page receives those trades, fills and order changes live), waits for the account's
tables, and takes the PNG. (`chromium --screenshot` alone fires before the page's socket has opened, and with
`--virtual-time-budget` it never returned here.) Chromium comes from `apt-get install chromium` when it is
missing, as in tests/e2e/test_live_page.py.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_setup import ServiceProcess  # noqa: E402
from tests.e2e.browser import Browser, find_chromium  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
ASSET = {"asset_id": "DEMO", "name": "Demo coin", "tick_size": "0.01", "lot_size": "0.001"}


def chromium() -> str:
    found = find_chromium()
    if found is None:
        raise SystemExit("chromium is not installed and apt-get could not install it")
    return found


class Demo:
    """Admin and traders over HTTP."""

    def __init__(self, service: ServiceProcess) -> None:
        import httpx

        self.client = httpx.Client(base_url=service.base_url, timeout=30.0)
        self.admin = {"Authorization": f"Bearer {service.admin_token}"}
        self.keys: dict[str, str] = {}

    def admin_post(self, path: str, body: dict) -> dict:
        answer = self.client.post(path, json=body, headers=self.admin)
        answer.raise_for_status()
        return answer.json()["data"]

    def user(self, username: str, usd: str, asset: str) -> None:
        self.keys[username] = self.admin_post("/api/v1/admin/users", {"username": username})["api_key"]
        self.admin_post("/api/v1/admin/deposits", {"username": username, "asset_id": "USD", "amount": usd})
        self.admin_post("/api/v1/admin/deposits", {"username": username, "asset_id": ASSET["asset_id"],
                                                   "amount": asset})

    def place(self, username: str, order_type: str, quantity: Decimal, price: Decimal | None = None) -> dict:
        body = {"asset_id": ASSET["asset_id"], "order_type": order_type, "quantity": str(quantity)}
        if price is not None:
            body["price"] = str(price)
        answer = self.client.post("/api/v1/orders", json=body,
                                  headers={"Authorization": f"Bearer {self.keys[username]}"})
        answer.raise_for_status()
        return answer.json()["data"]


def trade(demo: Demo, rng: random.Random, price: Decimal) -> None:
    """One trade at `price`: a maker rests an order there and a taker takes it whole."""
    quantity = Decimal(rng.randint(50, 2500)) / 1000
    if rng.random() < 0.5:
        demo.place("maker_alice", "limit_sell", quantity, price)
        demo.place("taker_carol", "limit_buy", quantity, price)
    else:
        demo.place("maker_alice", "limit_buy", quantity, price)
        demo.place("taker_carol", "market_sell", quantity)


def populate(demo: Demo, minutes: float, rng: random.Random) -> Decimal:
    """Trades over `minutes`, then a ladder around the last price; the last price."""
    demo.admin_post("/api/v1/admin/assets", ASSET)
    for username in ("maker_alice", "maker_bob", "taker_carol"):
        demo.user(username, "10000000", "100000")
    price = Decimal("100.00")
    finish = time.monotonic() + minutes * 60
    while True:
        for _ in range(rng.randint(3, 6)):
            price = max(Decimal("90.00"), price + Decimal(rng.randint(-40, 40)) / 100)
            trade(demo, rng, price)
        if time.monotonic() >= finish:
            break
        time.sleep(rng.uniform(6, 12))
    for step in range(1, 16):  # the ladder: 15 bids and 15 asks, thicker away from the touch
        for side, sign in (("limit_buy", -1), ("limit_sell", 1)):
            level = price + sign * Decimal(step * 5 + rng.randint(0, 2)) / 100
            for _ in range(rng.randint(1, 3)):
                quantity = Decimal(rng.randint(100, 400 + 300 * step)) / 1000
                demo.place("maker_bob", side, quantity, level)
    return price


def screenshot(browser: str, url: str, width: int, height: int, api_key: str, deadline: float,
               while_open) -> bytes:
    """Load the page, wait (up to `deadline` s) for its ladder, paste `api_key` (its open orders, fills and
    portfolio), run `while_open()` (trades the page then receives live), wait for the account's tables and a
    little longer for the charts, and take a PNG."""
    import json

    with Browser(browser, width, height) as page:
        page.open(url)
        page.wait_for("document.querySelector('#ladder tbody tr[data-price]')", deadline)
        page.evaluate(f"document.getElementById('key').value = {json.dumps(api_key)};"
                      "document.getElementById('login').click();")
        while_open()
        page.wait_for("document.querySelector('#open_orders tbody tr') && "
                      "document.querySelector('#fills tbody tr') && "
                      "document.getElementById('portfolio').textContent", deadline)
        time.sleep(2.5)  # the candles redraw a second after the last trade frame
        return page.screenshot()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of trading before the picture (default 5)")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "live-page.png"))
    parser.add_argument("--size", default="1280,1400", help="browser window, width,height (default 1280,1400)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait at most for the page's book and account (default 30)")
    arguments = parser.parse_args()
    browser = chromium()
    root = Path(tempfile.mkdtemp(prefix="live-page-"))
    service = ServiceProcess(root / "service", source=REPOSITORY)
    try:
        service.start()
        demo = Demo(service)
        price = populate(demo, arguments.minutes, random.Random(arguments.seed))
        url = f"{service.base_url}/?asset={ASSET['asset_id']}"
        output = Path(arguments.output).resolve()
        output.parent.mkdir(parents=True, exist_ok=True)
        width, height = (int(value) for value in arguments.size.split(","))
        rng = random.Random(arguments.seed + 1)

        def live_trades() -> None:
            for _ in range(4):
                demo.place("taker_carol", rng.choice(("market_buy", "market_sell")),
                           Decimal(rng.randint(100, 900)) / 1000)
                time.sleep(0.3)

        png = screenshot(browser, url, width, height, demo.keys["maker_bob"], arguments.wait, live_trades)
        output.write_bytes(png)
        print(f"{output}: {url} after {arguments.minutes:g} minutes of trades, last price {price}")
        return 0
    finally:
        service.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
