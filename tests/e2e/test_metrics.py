"""`GET /metrics`: Prometheus text for the admin token, with exact counts of what was asked.

The session's service is shared, and the tests run one after another: each test
compares counters before and after its own requests, never absolute values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.config import book_actor_for, shard_for
from tests.e2e.api import assert_envelope, assert_error, levels
from tests.e2e.process import REPOSITORY

Samples = dict[tuple[str, frozenset], float]


def scrape(api) -> Samples:
    """Every sample of one scrape, keyed by (sample name, labels)."""
    response = api.http.get("/metrics", headers=api.admin_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


def delta(before: Samples, after: Samples, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _order(asset_id: str, order_type: str, quantity: str, price: str | None = None, **fields) -> dict:
    body = {"asset_id": asset_id, "order_type": order_type, "quantity": quantity, **fields}
    if price is not None:
        body["price"] = price
    return body


def _outcome(response) -> str:
    """What an answer to one order counts as: the order's status, or rejected / duplicate."""
    if response.status_code == 201:
        return response.json()["data"]["status"]
    return {409: "duplicate", 422: "rejected"}[response.status_code]


@pytest.fixture(scope="module")
def layout(api) -> dict:
    """The service's shard and book actor counts, from /health."""
    return api.http.get("/health").json()["actors"]


def test_metrics_need_the_admin_token(api):
    user = api.new_user()
    assert_error(api.http.get("/metrics"), 401, "UNAUTHORIZED")
    assert_error(api.http.get("/metrics", headers={"Authorization": "Bearer not-a-key"}), 401, "UNAUTHORIZED")
    assert_error(api.get("/metrics", user), 403, "FORBIDDEN")
    samples = scrape(api)
    assert labelled(samples, "order_service_http_requests_total")


def test_order_outcomes_are_counted_once_each(api):
    asset_id = api.new_asset()
    seller = api.new_user(usd="1000", assets={asset_id: "100"})
    buyer = api.new_user(usd="1000")
    before = scrape(api)

    answers = [
        api.submit(seller, asset_id, "limit_sell", "3", "10.00", client_order_id="sell-1"),  # rests
        api.submit(buyer, asset_id, "limit_buy", "2", "10.00"),  # fills against it
        api.submit(buyer, asset_id, "limit_buy", "1", "10.001"),  # 422: off the tick
        api.submit(buyer, asset_id, "limit_buy", "1000", "10.00"),  # 422: more than the buyer's USD
        api.post("/api/v1/orders", buyer, json={"asset_id": asset_id, "order_type": "limit_buy"}),  # 422: invalid
        api.submit(seller, asset_id, "limit_sell", "1", "11.00", client_order_id="sell-1"),  # 409: duplicate
    ]
    assert [response.status_code for response in answers] == [201, 201, 422, 422, 422, 409], \
        [response.text for response in answers]
    expected = Counter(_outcome(response) for response in answers)
    batch = api.post("/api/v1/orders/batch", buyer, json={"orders": [
        _order(asset_id, "limit_buy", "1", "10.00"),  # fills the rest of the sell
        _order(asset_id, "limit_buy", "1", "9.00"),  # rests
        _order(asset_id, "limit_buy", "1", "9.005"),  # refused: off the tick
        _order("NOSUCH9", "limit_buy", "1", "9.00"),  # refused: unknown asset
    ]})
    results = assert_envelope(batch, 200, True)["results"]
    for result in results:
        expected[result["data"]["status"] if result["success"] else "rejected"] += 1
    assert expected["completed"] == 2 and expected["confirmed"] == 2 and expected["rejected"] == 5, expected

    after = scrape(api)
    for outcome in {"confirmed", "completed", "processing", "cancelled", "failed", "rejected", "duplicate",
                    *expected}:
        assert delta(before, after, "order_service_orders_total", outcome=outcome) == expected[outcome], outcome
    orders_route = {"route": "/api/v1/orders", "method": "POST"}
    for status, count in Counter(response.status_code for response in answers).items():
        assert delta(before, after, "order_service_http_requests_total", **orders_route, status=str(status)) \
            == count, status
    assert delta(before, after, "order_service_http_requests_total", route="/api/v1/orders/batch",
                 method="POST", status="200") == 1
    assert delta(before, after, "order_service_http_request_duration_seconds_count", **orders_route) \
        == len(answers)


def test_route_labels_are_templates_and_unknown_paths_one_label(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="1000")
    order = api.place(user, asset_id, "limit_buy", "1", "5.00")
    before = scrape(api)
    api.order(user, order["order_id"])
    assert_error(api.get("/api/v1/orders/123456789", user), 404, "ORDER_NOT_FOUND")
    assert_error(api.get(f"/no/such/path/{order['order_id']}"), 404)
    after = scrape(api)

    by_id = {"route": "/api/v1/orders/{order_id}", "method": "GET"}
    assert delta(before, after, "order_service_http_requests_total", **by_id, status="200") == 1
    assert delta(before, after, "order_service_http_requests_total", **by_id, status="404") == 1
    assert delta(before, after, "order_service_http_requests_total", route="unmatched", method="GET",
                 status="404") == 1
    # Every documented route's template, and the routes kept out of the document: the live page,
    # its static files and the stream's upgrade.
    templates = set(api.http.get("/openapi.json").json()["paths"]) | {"unmatched", "/", "/static", "/api/v1/ws"}
    routes = {labels["route"] for labels in labelled(after, "order_service_http_requests_total")}
    assert routes <= templates, routes - templates


def test_actor_calls_and_journal_commits_have_series_for_every_actor(api, layout):
    shards, books = layout["account_shards"], layout["book_actors"]
    # A funded user in every shard and an asset in every book actor: each journals something.
    users = {}
    while len(users) < shards:
        user = api.new_user(usd="1000")
        users.setdefault(shard_for(user.username, shards), user)
    assets = {}
    while len(assets) < books:
        asset_id = api.new_asset()
        assets.setdefault(book_actor_for(asset_id, books), asset_id)
    api.place(users[0], assets[0], "limit_buy", "1", "5.00")
    samples = scrape(api)

    actors = ["registry", *(f"shard-{index}" for index in range(shards)),
              *(f"book-{index}" for index in range(books))]
    calls = labelled(samples, "order_service_actor_call_duration_seconds_count")
    assert {labels["actor"] for labels in calls} >= set(actors), calls
    assert sum(value(samples, "order_service_actor_call_duration_seconds_count", **labels)
               for labels in calls if labels["method"] == "place_orders") > 0
    assert value(samples, "order_service_actor_call_duration_seconds_count", actor="registry",
                 method="create_user") > 0
    for actor in actors:
        assert value(samples, "order_service_actor_up", actor=actor) == 1, actor
        assert value(samples, "order_service_actor_memory_bytes", actor=actor) > 0, actor
        assert value(samples, "order_service_journal_commit_duration_seconds_count", stream=actor) > 0, actor
        assert value(samples, "order_service_journal_batch_events_count", stream=actor) > 0, actor
        assert value(samples, "order_service_journal_batch_events_sum", stream=actor) > 0, actor
    assert value(samples, "order_service_recovery_duration_seconds") > 0


def test_open_orders_equal_the_resting_orders_of_the_book(api):
    asset_id = api.new_asset()
    maker = api.new_user(usd="1000", assets={asset_id: "50"})
    taker = api.new_user(usd="1000", assets={asset_id: "50"})
    for price in ("9.00", "9.50", "9.50"):
        api.place(maker, asset_id, "limit_buy", "2", price)
    for price in ("11.00", "12.00"):
        api.place(maker, asset_id, "limit_sell", "2", price)
    api.place(taker, asset_id, "limit_sell", "3", "9.50")  # takes one 9.50 bid whole and half the other
    book = api.book(asset_id)
    resting = sum(count for _, _, count in levels(book["bids"]) + levels(book["asks"]))
    assert resting == 4, book

    samples = scrape(api)
    assert value(samples, "order_service_open_orders", asset_id=asset_id) == resting
    assert (("order_service_waiting_stops", frozenset({("asset_id", asset_id)})) in samples)


def test_orders_are_counted_by_the_way_they_went_to_their_book(api, layout):
    asset_id = api.new_asset()
    trader = api.new_user(usd="1000", assets={asset_id: "50"})
    shard = f"shard-{shard_for(trader.username, layout['account_shards'])}"
    name = "order_service_orders_sent_to_book_total"
    before = scrape(api)
    for price in ("9.00", "9.10", "9.20"):
        api.place(trader, asset_id, "limit_buy", "1", price)
    after = scrape(api)
    early, after_hold = delta(before, after, name, actor=shard, path="early"), delta(
        before, after, name, actor=shard, path="after_hold")
    assert early + after_hold == 3, (early, after_hold)
    # Nothing the trader holds was credited and not yet journaled: at most one order (the one
    # that reserves the next block of ids) waits for its hold's commit.
    assert early >= 2, (early, after_hold)


# Another gateway process of the same service: it serves five GET /health/live through the
# gateway's own middleware and flushes its series where the service's processes write theirs.
SECOND_GATEWAY_PROCESS = """
import asyncio
from gateway.metrics import GatewayMetrics, HttpMetrics

class Route:
    path = "/health/live"

async def app(scope, receive, send):
    scope["route"] = Route
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})

async def main():
    metrics = GatewayMetrics()
    assert metrics.multiprocess
    middleware = HttpMetrics(app, metrics)

    async def send(message):
        pass

    for _ in range(5):
        await middleware({"type": "http", "method": "GET", "path": "/health/live"}, None, send)
    metrics.flush()

asyncio.run(main())
"""


def test_a_scrape_sums_every_gateway_process_of_the_machine(api, service):
    live = {"route": "/health/live", "method": "GET"}
    before = scrape(api)
    subprocess.run([sys.executable, "-c", SECOND_GATEWAY_PROCESS], cwd=REPOSITORY, check=True, timeout=60,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(service.data_dir / "metrics")})
    after = scrape(api)
    assert delta(before, after, "order_service_http_requests_total", **live, status="200") == 5
    assert delta(before, after, "order_service_http_request_duration_seconds_count", **live) == 5
