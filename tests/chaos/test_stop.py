"""A stop by SIGTERM or SIGINT, to the gateway alone or to its whole process group, idle and under load.

A group signal is what a terminal's Ctrl-C and `kill -TERM -PGID` send: every
process in the group gets it, Ray's own included. systemd's default
`KillMode=control-group` goes further and signals every process of the unit's
cgroup, whatever its group. One service on one data directory is stopped in
turn each of the eight ways (signal x target x idle or under load), and once by
SIGTERM to every process of the service at once, under load; it is started
again after each stop. Every stop must end in exit status 0 with no process of
the service left behind, and `order-service verify` must pass on the data it
left. Under load, clients keep placing and cancelling orders through the stop;
after the restart every order acknowledged before the stop is there as it was
told or later, and every order whose answer never came (the connection closed,
or 503) is retried with its `client_order_id`: the restarted service answers
201 (it was never applied) or 409 with the earlier order (it was). Then the
invariants of `tests.chaos.checks` hold: nothing is half-applied. The time
from the signal to the exit is printed, not asserted.

The service runs as deploy/order-service.service's ExecStart runs it (the
console script itself, here in its own session). `make run` is stopped by
SIGTERM to its group too: its recipe execs the service, so the signal reaches
the service directly; make waits for it and then ends by the signal it got, as
make does. The deploy files are checked to run the console script directly,
and the unit to give a stop more time than any stop measured here.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.chaos.checks import Acknowledged, check_service, contract_problem
from tests.chaos.load import LAYOUT, Market
from tests.e2e.api import Api, User, assert_envelope, assert_error, unique_suffix
from tests.e2e.process import REPOSITORY, ServiceProcess, processes_with_environment, service_command

CLIENTS = 4
# How many answers the clients get before the stop signal.
ANSWERS_BEFORE_STOP = (20, 80)
VERIFY_DEADLINE = 120.0
# What the issue asks a stop to take at most; the unit must give it more.
STOP_BOUND_SECONDS = 10.0
DEPLOY = REPOSITORY / "deploy"

TARGETS = {"group": "the process group", "process": "the gateway alone",
           "all": "every process of the service (systemd's control-group)"}
PATHS = [*((stop_signal, target, under_load)
           for stop_signal in (signal.SIGTERM, signal.SIGINT)
           for target in ("group", "process")
           for under_load in (False, True)),
         (signal.SIGTERM, "all", True)]

stop_times: list[str] = []
measured_seconds: list[float] = []


def _path_name(stop_signal: signal.Signals, target: str, under_load: bool) -> str:
    return f"{stop_signal.name} to {TARGETS[target]}, {'under load' if under_load else 'idle'}"


@dataclass
class Outcomes:
    """What the clients were answered, and the orders whose answer they never got."""

    problems: list[str] = field(default_factory=list)
    unanswered: list[tuple[User, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: httpx.Response) -> None:
        problem = contract_problem(response)
        if problem is not None:
            with self.lock:
                self.problems.append(problem)

    def not_answered(self, user: User, body: dict) -> None:
        with self.lock:
            self.unanswered.append((user, body))


def _client_loop(base_url: str, market: Market, seed: float, acknowledged: Acknowledged, outcomes: Outcomes,
                 stop: threading.Event) -> None:
    """Place (each with a client_order_id) and cancel orders until `stop` or until the service goes away."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set():
            user = rng.choice(market.users)
            if rng.random() < 0.2:
                mine = acknowledged.open_orders(user.username)
                if not mine:
                    continue
                try:
                    response = client.delete(f"/api/v1/orders/{rng.choice(mine)['order_id']}", headers=user.headers)
                except httpx.TransportError:
                    return  # either outcome of a cancel keeps the order in its told state or a later one
            else:
                body = {"asset_id": rng.choice(market.asset_ids), "quantity": str(rng.randint(1, 5)),
                        "client_order_id": f"stop{unique_suffix()}"}
                if rng.random() < 0.15:
                    body["order_type"] = rng.choice(["market_buy", "market_sell"])
                else:
                    body["order_type"] = rng.choice(["limit_buy", "limit_sell"])
                    body["price"] = f"{100 + rng.randint(-5, 5)}.00"
                try:
                    response = client.post("/api/v1/orders", json=body, headers=user.headers)
                except httpx.TransportError:
                    outcomes.not_answered(user, body)
                    return
                if response.status_code == 503:
                    outcomes.not_answered(user, body)
            outcomes.record(response)
            if response.status_code in (200, 201):
                acknowledged.record(response.json()["data"])


@dataclass
class Stopped:
    service: ServiceProcess
    api: Api
    market: Market
    acknowledged: Acknowledged


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, request) -> Iterator[Stopped]:
    """One service for every path, with a funded market; the stop times are printed at the end."""
    root = tmp_path_factory.mktemp("stop")
    service = ServiceProcess(root / "data", root / "logs", admin_token=f"admin-{unique_suffix()}",
                             environment=LAYOUT)
    try:
        service.start()
        api = Api(service.base_url, service.admin_token)
        yield Stopped(service, api, Market.create(api), Acknowledged())
        api.close()
    finally:
        service.cleanup()
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and stop_times:
            reporter.write_line("")
            reporter.write_line("time from the stop signal to the exit:")
            for line in stop_times:
                reporter.write_line(f"  {line}")


def _retry_unanswered(api: Api, acknowledged: Acknowledged, unanswered: list[tuple[User, dict]]) -> dict[int, int]:
    """Send each unanswered order again; it is new (201) or was applied before the stop (409 with it)."""
    statuses: dict[int, int] = {}
    for user, body in unanswered:
        response = api.post("/api/v1/orders", user, json=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 409:
            assert_error(response, 409, "DUPLICATE_CLIENT_ORDER_ID")
            order = response.json()["data"]
        else:
            order = assert_envelope(response, 201, True)
        assert order["client_order_id"] == body["client_order_id"], (body, order)
        acknowledged.record(order)
    return statuses


def _verify(service: ServiceProcess) -> subprocess.CompletedProcess:
    command = [*service_command()[:-1], "verify", "--data-dir", str(service.data_dir)]
    return subprocess.run(command, cwd=REPOSITORY, env=service.environment(), capture_output=True, text=True,
                          timeout=VERIFY_DEADLINE)


@pytest.mark.parametrize(("stop_signal", "target", "under_load"), PATHS,
                         ids=[f"{stop_signal.name}-{target}-{'load' if load else 'idle'}"
                              for stop_signal, target, load in PATHS])
def test_stop_exits_0_leaves_no_process_and_loses_nothing_acknowledged(
        stopped: Stopped, stop_signal: signal.Signals, target: str, under_load: bool, capsys):
    service, api, market, acknowledged = stopped.service, stopped.api, stopped.market, stopped.acknowledged
    if service.process.poll() is not None:  # an earlier path failed after its stop
        service.start()
    outcomes = Outcomes()
    halt = threading.Event()
    rng = random.Random(f"{stop_signal.name}{target}{under_load}")
    clients = [threading.Thread(target=_client_loop, args=(service.base_url, market, rng.random(), acknowledged,
                                                           outcomes, halt))
               for _ in range(CLIENTS if under_load else 0)]
    for client in clients:
        client.start()
    try:
        if under_load:
            assert acknowledged.wait_for(acknowledged.answers + rng.randint(*ANSWERS_BEFORE_STOP)), \
                f"too few answers before the stop: {outcomes.problems[:5]}"
        exit_code, seconds = service.stop(stop_signal, target)
    finally:
        halt.set()
        for client in clients:
            client.join(timeout=60)
    left_behind = processes_with_environment(service.marker)
    verified = _verify(service)
    line = (f"{_path_name(stop_signal, target, under_load)}: exit {exit_code} in {seconds:.2f}s"
            + (f", {len(outcomes.unanswered)} orders unanswered" if under_load else ""))
    stop_times.append(line)
    measured_seconds.append(seconds)
    with capsys.disabled():
        print(f"\n  stop: {line}")

    assert exit_code == 0, f"{line}\n{service.stderr()[-3000:]}"
    assert left_behind == [], f"processes of the service still running after it exited: {left_behind}"
    assert verified.returncode == 0, f"verify after {line}:\n{verified.stdout[-2000:]}\n{verified.stderr[-2000:]}"
    assert not outcomes.problems, outcomes.problems[:10]
    assert not any(client.is_alive() for client in clients), "a client is stuck on a request"

    service.start()
    retried = _retry_unanswered(api, acknowledged, outcomes.unanswered)
    if retried:
        with capsys.disabled():
            print(f"  retried after the restart: answers by status {retried}")
    check_service(api, market.users, market.asset_ids, acknowledged, market.deposited)


def test_make_run_stopped_by_sigterm_to_its_process_group_stops_the_service_cleanly(tmp_path, capsys):
    service = ServiceProcess(tmp_path / "data", tmp_path / "logs", admin_token=f"admin-{unique_suffix()}")
    log_path = tmp_path / "make.log"
    try:
        with open(log_path, "wb") as log:
            service.process = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=REPOSITORY,
                                               env=service.environment(), stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
        service.wait_ready()
        exit_code, seconds = service.stop(signal.SIGTERM, "group")
        left_behind = processes_with_environment(service.marker)
        output = log_path.read_text(errors="replace")
        line = f"make run, SIGTERM to its process group: make ended with {exit_code} in {seconds:.2f}s"
        stop_times.append(line)
        measured_seconds.append(seconds)
        with capsys.disabled():
            print(f"\n  stop: {line}")
        # make waits for the service it ran, then dies by the signal it was sent itself.
        assert exit_code in (0, -signal.SIGTERM), output[-3000:]
        assert "Finished server process" in output, output[-3000:]
        assert "Traceback" not in output and "Error" not in output, output[-3000:]
        assert left_behind == [], f"processes of the service still running after make exited: {left_behind}"
    finally:
        service.cleanup()


def test_deploy_files_run_the_console_script_directly_and_give_a_stop_enough_time():
    unit = (DEPLOY / "order-service.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, flags=re.MULTILINE))
    program, *arguments = settings["ExecStart"].split()
    assert program.endswith("/bin/order-service") and arguments == ["serve"], settings["ExecStart"]
    assert not re.search(r"\b(sh|bash|make)\b", settings["ExecStart"]), settings["ExecStart"]
    assert "KillMode" not in settings, "the unit keeps systemd's default KillMode (control-group)"
    assert settings["EnvironmentFile"] and "ORDER_SERVICE_ADMIN_TOKEN=" in (DEPLOY / "order-service.env").read_text()
    longest = max([STOP_BOUND_SECONDS, *measured_seconds])
    assert float(settings["TimeoutStopSec"]) > longest, (settings["TimeoutStopSec"], longest)

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT (.*)$", dockerfile, flags=re.MULTILINE).group(1)
    command = re.search(r"^CMD (.*)$", dockerfile, flags=re.MULTILINE).group(1)
    # Exec form (a JSON array): the gateway is PID 1, with no shell to swallow the stop signal.
    assert json.loads(entrypoint) + json.loads(command) == ["order-service", "serve"], (entrypoint, command)
