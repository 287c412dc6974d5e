"""Two gateway processes on one port (ORDER_SERVICE_WORKERS=2) over one local Ray.

- kill -9 of the extra gateway process under load: every order whose answer was
  lost with it is retried by its `client_order_id` through the port (the other
  process answers): each is placed exactly once, nothing acknowledged is lost,
  `serve` starts another gateway process, and the invariants hold;
- `/metrics` answered by either process counts the requests of both;
- SIGTERM to the group under load, and to the main process alone: exit 0, no
  process left, `order-service verify` passes on the data (the time is printed).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
from collections import Counter

import httpx
import pytest

from tests.chaos.checks import Acknowledged, check_service, contract_problem
from tests.chaos.load import LAYOUT, Market
from tests.e2e.api import Api, assert_error, eventually, unique_suffix
from tests.e2e.process import REPOSITORY, ServiceProcess, processes_with_environment, service_command

WORKERS = {**LAYOUT, "ORDER_SERVICE_WORKERS": "2"}
CLIENTS = 4


@pytest.fixture
def service(tmp_path):
    process = ServiceProcess(tmp_path / "data", tmp_path / "logs", admin_token=f"admin-{unique_suffix()}",
                             environment=WORKERS)
    try:
        process.start()
        eventually(process.gateway_workers, lambda pids: len(pids) == 1, deadline=60, what="one extra gateway")
        yield process
    finally:
        process.cleanup()


def _client(base_url: str, market: Market, seed: float, acknowledged: Acknowledged, problems: list[str],
            placed: Counter, halt: threading.Event) -> None:
    """Place orders on fresh connections (so both processes take some) and retry an order whose answer
    was lost, with the same body, until it is answered: 201, or 409 with the order placed before."""
    rng = random.Random(seed)
    while not halt.is_set():
        user = rng.choice(market.users)
        body = {"asset_id": rng.choice(market.asset_ids), "order_type": rng.choice(["limit_buy", "limit_sell"]),
                "quantity": str(rng.randint(1, 5)), "price": f"{100 + rng.randint(-5, 5)}.00",
                "client_order_id": f"w{unique_suffix()}"}
        while not halt.is_set():
            try:
                with httpx.Client(base_url=base_url, timeout=30.0) as client:
                    response = client.post("/api/v1/orders", json=body, headers=user.headers)
            except httpx.TransportError:
                placed["(answers lost)"] += 1
                continue  # the process that held the connection is gone: the same order again
            if response.status_code != 503:
                break
        else:
            return
        problem = contract_problem(response)
        if problem is not None:
            problems.append(problem)
            continue
        if response.status_code == 409:
            assert_error(response, 409, "DUPLICATE_CLIENT_ORDER_ID")
        order = response.json()["data"]
        if response.status_code == 201:
            placed[body["client_order_id"]] += 1
        acknowledged.record(order)


def test_killed_gateway_process_loses_and_duplicates_nothing_and_is_replaced(service: ServiceProcess):
    api = Api(service.base_url, service.admin_token)
    market, acknowledged = Market.create(api), Acknowledged()
    problems: list[str] = []
    placed: Counter = Counter()
    halt = threading.Event()
    rng = random.Random("kill")
    clients = [threading.Thread(target=_client, args=(service.base_url, market, rng.random(), acknowledged,
                                                      problems, placed, halt)) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        assert acknowledged.wait_for(60)
        (victim,) = service.gateway_workers()
        os.kill(victim, signal.SIGKILL)
        replaced = eventually(service.gateway_workers, lambda pids: len(pids) == 1 and victim not in pids,
                              deadline=60, what="another gateway process started")
        assert acknowledged.wait_for(acknowledged.answers + 60)
    finally:
        halt.set()
        for client in clients:
            client.join(timeout=120)
    assert not any(client.is_alive() for client in clients)
    assert not problems, problems[:10]
    assert service.process.poll() is None and replaced
    lost = placed.pop("(answers lost)", 0)
    assert all(count == 1 for count in placed.values()), [key for key, count in placed.items() if count > 1]
    orders = [order for user in market.users for order in api.orders(user, limit=100)["orders"]]
    by_client_id = Counter(order["client_order_id"] for order in orders)
    assert all(count == 1 for count in by_client_id.values()), by_client_id.most_common(3)
    check_service(api, market.users, market.asset_ids, acknowledged, market.deposited)
    api.close()
    print(f"{lost} orders whose answer was lost with the killed process were sent again")


def test_metrics_answered_by_either_process_count_the_requests_of_both(service: ServiceProcess):
    requests = 40
    for _ in range(requests):
        with httpx.Client(base_url=service.base_url) as client:  # fresh connections reach both processes
            assert client.get("/api/v1/assets").status_code == 200

    def counted() -> list[float]:
        totals = []
        for _ in range(4):
            with httpx.Client(base_url=service.base_url) as client:
                text = client.get("/metrics", headers={"Authorization": f"Bearer {service.admin_token}"}).text
            totals.append(sum(float(value) for value in re.findall(
                r'^order_service_http_requests_total\{[^}]*route="/api/v1/assets"[^}]*\} (\S+)$', text, re.M)))
        return totals

    eventually(counted, lambda totals: all(total >= requests for total in totals), deadline=30,
               what=f"every scrape counts the {requests} requests")


@pytest.mark.parametrize("target", ["group", "process"])
def test_stop_with_two_gateway_processes_exits_0_and_leaves_nothing(service: ServiceProcess, target: str, capsys):
    api = Api(service.base_url, service.admin_token)
    market, acknowledged = Market.create(api), Acknowledged()
    api.close()
    problems: list[str] = []
    halt = threading.Event()
    clients = [threading.Thread(target=_client, args=(service.base_url, market, seed, acknowledged, problems,
                                                      Counter(), halt), daemon=True) for seed in range(2)]
    for client in clients:
        client.start()
    assert acknowledged.wait_for(30)
    exit_code, seconds = service.stop(signal.SIGTERM, target)
    halt.set()
    with capsys.disabled():
        print(f"\n  two gateway processes, SIGTERM to the {target} under load: exit {exit_code} in {seconds:.2f}s")
    assert exit_code == 0, service.stderr()[-3000:]
    assert processes_with_environment(service.marker) == []
    verified = subprocess.run([*service_command()[:-1], "verify", "--data-dir", str(service.data_dir)],
                              cwd=REPOSITORY, env=service.environment(), capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    assert not [problem for problem in problems if "503" not in problem], problems[:5]
