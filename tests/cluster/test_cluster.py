"""The service on three Ray nodes with two gateways: placement by labels, trading through both, a node lost.

- `order-service layout` shows every actor on the node labelled for it, and a
  gateway whose layout or admin token differs from the cluster's refuses to start;
- a user created through one gateway trades through the other at once; orders and
  cancels through both keep every invariant of the chaos suite, and one
  `client_order_id` sent through both gateways at the same time is placed once;
- under load, node 2 is removed: its actors (shard-2, book-2) wait, reported by
  `/health/ready`, while orders of the users and assets of the other nodes keep
  being served, through a gateway that carries only those and by a third one
  started meanwhile; the gateway that also carries orders for node 2 answers
  those with 503 once it knows the node is gone (gateway/away.py), and its
  count of the others' orders served meanwhile is printed, not asserted: an
  order in flight when the node went holds its shard's queue in that gateway; node 2 comes back with the same labels and
  data, its actors recover from their journals there, every order whose answer
  never came is retried by `client_order_id` (placed once), and the invariants
  hold. The recovery time is printed, not asserted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.chaos.checks import Acknowledged, check_service
from tests.cluster.conftest import NODES, Gateways, node_streams
from tests.cluster.market import ClusterMarket, Load, order_body
from tests.e2e.api import Api, assert_envelope, assert_error, eventually
from tests.e2e.process import ServiceProcess

NODE_DEADLINE = 90.0
SUCCESSES_WHILE_GONE = 15


@pytest.fixture(scope="module")
def market(gateways: Gateways) -> ClusterMarket:
    return ClusterMarket.create(gateways.apis)


@pytest.fixture(scope="module")
def acknowledged() -> Acknowledged:
    return Acknowledged()


def test_layout_shows_every_actor_on_the_node_labelled_for_it(gateways: Gateways):
    local = gateways.cluster
    shown = local.run_cli("layout", "--json", data_dir=local.root / "node0")
    assert shown.returncode == 0, shown.stderr
    where = {row["stream"]: row for row in json.loads(shown.stdout)}
    for index in range(NODES):
        for stream in node_streams(index):
            assert where[stream]["state"] == "ALIVE", where[stream]
            assert where[stream]["node_id"] == local.node_id(index), (stream, where[stream], index)
    assert not (local.root / "gateway0" / "journals").exists(), "a gateway's own data directory holds no journal"
    for index in range(NODES):
        held = sorted(path.name for path in (local.root / f"node{index}" / "journals").iterdir())
        assert held == sorted(node_streams(index)), (index, held)


def test_gateway_with_another_layout_or_admin_token_refuses_to_start(gateways: Gateways, tmp_path):
    local = gateways.cluster
    for overrides, token, says in [({"ORDER_SERVICE_SHARDS": "2"}, local.admin_token, "were set up with"),
                                   ({}, "another-admin-token", "another admin token")]:
        service = ServiceProcess(tmp_path / f"refused{len(says)}", tmp_path / "logs", admin_token=token,
                                 environment={**local.environment(), **overrides})
        try:
            process = service.spawn()
            assert process.wait(timeout=60) == 2, service.stderr()[-3000:]
            assert says in service.stderr(), service.stderr()[-3000:]
        finally:
            service.cleanup()


def test_orders_and_cancels_through_both_gateways_keep_every_invariant(gateways, market, acknowledged):
    first, second = gateways.apis
    # One client_order_id sent through both gateways at once, per user: one order, the other a 409 with it.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for user in market.users:
            body = {"asset_id": market.asset_ids[0], "order_type": "limit_buy", "quantity": "1",
                    "price": "90.00", "client_order_id": f"twice-{user.username}"}
            answers = list(pool.map(lambda api: api.post("/api/v1/orders", user, json=body), (first, second)))
            statuses = sorted(answer.status_code for answer in answers)
            assert statuses == [201, 409], [answer.text for answer in answers]
            created = next(answer for answer in answers if answer.status_code == 201).json()["data"]
            refused = next(answer for answer in answers if answer.status_code == 409)
            assert_error(refused, 409, "DUPLICATE_CLIENT_ORDER_ID")
            assert refused.json()["data"]["order_id"] == created["order_id"], (created, refused.text)
            acknowledged.record(created)
    # Resting orders through one gateway, crossed and cancelled through the other.
    for index, user in enumerate(market.users):
        api, other = gateways.apis[index % 2], gateways.apis[(index + 1) % 2]
        for asset_id in market.asset_ids:
            order = api.place(user, asset_id, "limit_sell", 2, "101.00")
            acknowledged.record(order)
            taker = market.users[(index + 1) % len(market.users)]
            acknowledged.record(other.place(taker, asset_id, "limit_buy", 1, "101.00"))
            cancelled = assert_envelope(other.cancel(user, order["order_id"]), 200, True)
            acknowledged.record(cancelled)
    ids = list(acknowledged.orders)
    assert len(ids) == len(set(ids))
    check_service(first, market.users, market.asset_ids, acknowledged, market.deposited)


def _tier(api) -> dict[str, str]:
    response = api.get("/health/ready")
    assert response.status_code == 200, response.text
    return response.json()["external_services"]


def test_node_gone_its_actors_wait_the_others_serve_and_it_comes_back_whole(gateways, market, acknowledged,
                                                                             capsys):
    local = gateways.cluster
    first, second = gateways.apis
    lost = NODES - 1
    surviving_users = market.users_on({0, 1})
    surviving_assets = market.assets_on({0, 1})
    # Resting orders of node 2's users on the other books, and of others on node 2's book.
    for user in market.users_on({lost}):
        acknowledged.record(first.place(user, surviving_assets[0], "limit_sell", 3, "104.00"))
    acknowledged.record(second.place(surviving_users[0], market.assets_on({lost})[0], "limit_sell", 3, "104.00"))

    # Orders that need node 2 go through the second gateway only: one in flight when the node goes
    # holds its shard's queue in that gateway process until the node is back (gateway/away.py).
    everywhere = Load([gateways.services[1].base_url], market.users, market.asset_ids, acknowledged)
    everywhere.start(clients=2, seed="everywhere")
    # The other nodes' orders through each gateway on clients of their own, so that a client
    # waiting on one gateway does not slow what the other is seen to serve.
    survivors = [Load([service.base_url], surviving_users, surviving_assets, acknowledged)
                 for service in gateways.services]
    for index, load in enumerate(survivors):
        load.start(clients=2 - index, seed=f"survivors{index}")
    try:
        assert acknowledged.wait_for(acknowledged.answers + 40), "too few answers before the node went"
        local.remove(lost)
        gone_at = time.monotonic()
        for api in (first, second):
            tier = eventually(lambda api=api: _tier(api),
                              lambda tier: all(tier[stream] != "ok" for stream in node_streams(lost)),
                              deadline=NODE_DEADLINE, what="node 2's actors reported waiting")
            assert "waiting for a node labelled order-service/shard-2" in tier["shard-2"], tier
            assert all(tier[stream] == "ok" for index in range(lost) for stream in node_streams(index)), tier
        eventually(lambda: survivors[0].successes_since(gone_at, 0), lambda count: count >= SUCCESSES_WHILE_GONE,
                   deadline=NODE_DEADLINE, what="orders of the other nodes served through gateway 0 meanwhile")
        # A gateway started meanwhile becomes ready and serves the other nodes' accounts too.
        late = ServiceProcess(local.root / "gateway-late", local.root / "gateway-late-logs",
                              admin_token=local.admin_token, environment=local.environment())
        try:
            late.start()
            late_api = Api(late.base_url, local.admin_token)
            assert _tier(late_api)["book-2"] != "ok"
            acknowledged.record(late_api.place(surviving_users[0], surviving_assets[0], "limit_buy", 1, "96.00"))
            late_api.close()
        finally:
            late.cleanup()
        # An order that needs node 2 is not served meanwhile (503 or no answer), and is retried later.
        waiting_user = market.users_on({lost})[0]
        body = order_body(random.Random(1), surviving_assets[0])
        answered = _post_briefly(gateways.services[1].base_url, waiting_user, body)
        assert answered in (None, 503), answered
        everywhere.unanswered.append((waiting_user, body))

        local.add(lost)
        back_at = time.monotonic()
        eventually(lambda: _tier(first), lambda tier: all(state == "ok" for state in tier.values()),
                   deadline=NODE_DEADLINE, what="every actor serving again")
        ready_seconds = time.monotonic() - back_at
        retried = first.place(market.users_on({lost})[1], market.assets_on({lost})[0], "limit_buy", 1, "95.00")
        acknowledged.record(retried)
        serving_seconds = time.monotonic() - back_at
    finally:
        everywhere.stop()
        for load in survivors:
            load.stop()
    with capsys.disabled():
        print(f"\n  node 2 gone: {survivors[0].successes_since(gone_at, 0)} and "
              f"{survivors[1].successes_since(gone_at, 0)} "
              f"orders of the other nodes served through gateways 0 and 1 (the latter also carrying node 2's)")
        print(f"  node 2 back: its actors ready in {ready_seconds:.2f}s, serving an order in "
              f"{serving_seconds:.2f}s after it rejoined; {len(everywhere.unanswered)} orders retried")
    problems = everywhere.problems + [problem for load in survivors for problem in load.problems]
    assert not problems, problems[:10]
    statuses = {}
    for user, body in everywhere.unanswered + [entry for load in survivors for entry in load.unanswered]:
        response = second.post("/api/v1/orders", user, json=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 409:
            assert_error(response, 409, "DUPLICATE_CLIENT_ORDER_ID")
            order = response.json()["data"]
        else:
            order = assert_envelope(response, 201, True)
        assert order["client_order_id"] == body["client_order_id"], (body, order)
        acknowledged.record(order)
    check_service(second, market.users, market.asset_ids, acknowledged, market.deposited)


def _post_briefly(base_url: str, user, body: dict) -> int | None:
    """POST an order with a short timeout; its status, or None if no answer came in time."""
    import httpx

    result: list[int | None] = [None]

    def send() -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=5.0) as client:
                result[0] = client.post("/api/v1/orders", json=body, headers=user.headers).status_code
        except httpx.TransportError:
            pass

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(timeout=10)
    return result[0]
