"""The HTTP load generator of `http_bench.py`: one process, uvloop, raw keep-alive connections.

It reads a JSON spec on stdin (target, users and assets, single orders or batches, closed or open loop,
warmup and duration, and `result_path`), builds its requests before timing starts, prints
`WINDOW <from> <to>` (its measured window on the monotonic clock) on stdout as soon as it has connected,
drives the target over raw asyncio connections parsed with httptools (no HTTP client library, so it stays
cheap), and at the end writes its tally — sorted latencies, HTTP statuses, order outcomes, its own CPU
time — as one JSON object to the file named by the spec's `result_path`. Stdout carries only the WINDOW
line: a tally there could be garbled by anything else the process prints.

`run_generator`, the other side, starts the generator (`http_bench.py --generator` runs `_generator_main`),
creates the result file, samples the server's CPU inside the WINDOW, then reads the tally and deletes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.load_setup import LOT, MAX_LOTS, MID, TICK, random_order

if TYPE_CHECKING:
    from bench.http_measure import CpuMeter, Profiler

# The script whose `--generator` flag runs `_generator_main` in a fresh process.
HTTP_BENCH = Path(__file__).resolve().parent / "http_bench.py"


class _Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, loop) -> None:
        import httptools

        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport = None
        self.waiter = None
        self.body: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as error:  # a broken answer fails the request in flight
            self._fail(error)
            self.transport.close()

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed"))

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body, self.body = b"".join(self.body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))

    def _fail(self, error) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error if isinstance(error, BaseException) else ConnectionError(str(error)))

    def request(self, data: bytes):
        self.waiter = self.loop.create_future()
        self.transport.write(data)
        return self.waiter


async def _connect(loop, host: str, port: int) -> _Connection:
    _, connection = await loop.create_connection(lambda: _Connection(loop), host, port)
    return connection


def _raw_request(host: str, port: int, path: str, api_key: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _raw_get(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


def _quote_batch(rng: random.Random, asset_id: str, size: int, market_share: float) -> list[dict]:
    """A market maker's batch: bids below and asks above its own reference price near the mid (so they
    cross other users' orders, not each other), plus about `market_share` of market volume sent as at most
    one market sell and one market buy, last: a market buy holds all of its user's available USD while it
    matches (API.md), so buys behind it in the same batch — a second market buy included — would be refused."""
    reference = MID + TICK * rng.randint(-25, 25)
    orders: list[dict] = []
    market_lots = {"market_sell": 0, "market_buy": 0}
    while len(orders) + sum(1 for lots in market_lots.values() if lots) < size:
        if rng.random() < market_share:
            market_lots[rng.choice(("market_buy", "market_sell"))] += rng.randint(1, 10)
            continue
        offset = TICK * rng.randint(1, 25)
        buy = rng.random() < 0.5
        orders.append({"asset_id": asset_id, "order_type": "limit_buy" if buy else "limit_sell",
                       "quantity": str(LOT * rng.randint(1, MAX_LOTS)),
                       "price": str(reference - offset if buy else reference + offset)})
    markets = [{"asset_id": asset_id, "order_type": kind, "quantity": str(LOT * lots)}
               for kind, lots in market_lots.items() if lots]
    return orders + markets


def _peer_order(order: dict, account: int) -> tuple[str, bytes]:
    """The same order for matching-engine's gateway: its path and body (account numbers, no auth)."""
    import orjson

    kind, _, side = order["order_type"].partition("_")
    body = {"account": account, "side": side, "type": kind, "quantity": order["quantity"]}
    if "price" in order:
        body["price"] = order["price"]
    return f"/markets/{order['asset_id']}/orders", orjson.dumps(body)


def _build_requests(spec: dict) -> list[list[bytes]]:
    """Pools of ready-to-send requests (built before timing starts), one per connection, each cycled through.

    With `partition_users`, a connection sends only for its own users, so no user has two requests in
    flight at once; otherwise every request is from a user drawn at random."""
    import orjson

    rng = random.Random(spec["seed"])
    users, assets, connections = spec["users"], spec["assets"], spec["connections"]
    partition = spec.get("partition_users") and len(users) >= connections
    pools: list[list[bytes]] = [[] for _ in range(connections if partition else 1)]
    for index in range(spec["pool"]):
        pool = index % len(pools)
        if partition:
            username, api_key = users[pool + connections * rng.randrange((len(users) - pool - 1) // connections + 1)]
        else:
            username, api_key = rng.choice(users)
        if spec["kind"] == "batch":
            body = orjson.dumps({"orders": _quote_batch(rng, rng.choice(assets), spec["batch_size"],
                                                        spec["market_share"])})
            pools[pool].append(_raw_request(spec["host"], spec["port"], "/api/v1/orders/batch", api_key, body))
        elif spec.get("target") == "peer":
            order = random_order(rng, rng.choice(assets), spec["market_share"])
            path, body = _peer_order(order, 1 + users.index([username, api_key]))
            pools[pool].append(_raw_request(spec["host"], spec["port"], path, api_key, body))
        else:
            body = orjson.dumps(random_order(rng, rng.choice(assets), spec["market_share"]))
            pools[pool].append(_raw_request(spec["host"], spec["port"], "/api/v1/orders", api_key, body))
    return pools


_STATUS_KEY = b'"status":"'
_CODE_KEY = b'"code":"'


def _word_after(body: bytes, key: bytes, start: int = 0) -> tuple[str | None, int]:
    at = body.find(key, start)
    if at < 0:
        return None, -1
    at += len(key)
    end = body.find(b'"', at)
    return body[at:end].decode(errors="replace"), end


class _Tally:
    """What a generator saw inside the measurement window."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.latencies: list[float] = []
        self.http: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}
        self.orders_ok = 0
        self.orders_failed = 0
        self.errors = 0
        self.probe_latencies: list[float] = []  # the `probe` GETs of a sequential phase

    def record(self, latency: float, status: int, body: bytes) -> None:
        self.latencies.append(latency)
        key = str(status)
        self.http[key] = self.http.get(key, 0) + 1
        if self.kind == "batch" and status == 200:
            # every result carries "success":true|false; the envelope adds one "success":true
            ok = body.count(b'"success":true') - 1
            self.orders_ok += ok
            self.orders_failed += body.count(b'"success":false')
            for key, prefix in ((_STATUS_KEY, ""), (_CODE_KEY, "refused ")):
                position = 0
                while True:
                    word, position = _word_after(body, key, position)
                    if word is None:
                        break
                    word = prefix + word
                    self.outcomes[word] = self.outcomes.get(word, 0) + 1
            return
        if 200 <= status < 300:
            word, _ = _word_after(body, _STATUS_KEY)
            self.orders_ok += 1
        else:
            word, _ = _word_after(body, _CODE_KEY)
            word = f"{status} {word}"
            self.orders_failed += 1
        if word is not None:
            self.outcomes[word] = self.outcomes.get(word, 0) + 1


async def _generate(spec: dict) -> dict:
    loop = asyncio.get_running_loop()
    requests = _build_requests(spec)
    host, port = spec["host"], spec["port"]
    connections = [await _connect(loop, host, port) for _ in range(spec["connections"])]
    tally = _Tally(spec["kind"])
    clock = time.perf_counter
    begin = clock() + 0.05
    measure_from = begin + spec["warmup"]
    measure_to = measure_from + spec["duration"]
    # perf_counter is CLOCK_MONOTONIC, as is the orchestrator's time.monotonic: it samples CPU use in this window
    sys.stdout.write(f"WINDOW {measure_from} {measure_to}\n")
    sys.stdout.flush()
    timeout = spec["timeout"]
    start = random.Random(spec["seed"] + 1)
    counters = [start.randrange(len(pool)) for pool in requests]
    late = [0]
    # A sequential phase's floor: after each order, a GET of `probe` on the same connection.
    probe = _raw_get(host, port, spec["probe"]) if spec.get("probe") else None

    def next_request(index: int) -> bytes:
        pool = index % len(requests)
        counters[pool] += 1
        return requests[pool][counters[pool] % len(requests[pool])]

    async def send(index: int, data: bytes) -> tuple[int, bytes]:
        connection = connections[index]
        if connection.closed:
            connection = connections[index] = await _connect(loop, host, port)
        return await connection.request(data)  # a hung request is bounded by the phase's deadline

    async def closed_worker(index: int) -> None:
        while True:
            started = clock()
            if started >= measure_to:
                return
            try:
                status, body = await send(index, next_request(index))
            except Exception:
                if started >= measure_from:
                    tally.errors += 1
                connections[index].closed = True
                await asyncio.sleep(0.01)  # a refused connection must not make the generator spin
                continue
            finished = clock()
            if started >= measure_from and finished <= measure_to:
                tally.record(finished - started, status, body)
            if probe is not None:
                try:
                    await send(index, probe)
                except Exception:
                    connections[index].closed = True
                    continue
                probed = clock()
                if started >= measure_from and probed <= measure_to:
                    tally.probe_latencies.append(probed - finished)

    queue: asyncio.Queue = asyncio.Queue()

    async def open_worker(index: int) -> None:
        while True:
            scheduled = await queue.get()
            if scheduled is None:
                return
            try:
                status, body = await send(index, next_request(index))
            except Exception:
                if scheduled >= measure_from:
                    tally.errors += 1
                connections[index].closed = True
                await asyncio.sleep(0.01)  # a refused connection must not make the generator spin
                continue
            finished = clock()
            if scheduled >= measure_from:
                if finished > measure_to + 1.0:
                    late[0] += 1
                tally.record(finished - scheduled, status, body)

    async def scheduler(rate: float) -> int:
        sent = 0
        while True:
            now = clock()
            if now >= measure_to:
                break
            due = int((now - begin) * rate) + 1
            while sent < due:
                queue.put_nowait(begin + sent / rate)
                sent += 1
            # wake for the next arrival (at least every 0.5 ms under high rates): the generator must not
            # spin on a 2-core machine it shares with the service
            await asyncio.sleep(max(0.0005, begin + sent / rate - clock()))
        for _ in connections:
            queue.put_nowait(None)
        return sent

    cpu_before = time.process_time()
    if spec["mode"] == "open":
        workers = [loop.create_task(open_worker(index)) for index in range(len(connections))]
        scheduled = await scheduler(spec["rate"])
        done, pending = await asyncio.wait(workers, timeout=timeout)
        for task in pending:
            task.cancel()
        backlog = queue.qsize()
    else:
        workers = [loop.create_task(closed_worker(index)) for index in range(len(connections))]
        done, pending = await asyncio.wait(workers, timeout=spec["warmup"] + spec["duration"] + timeout + 5)
        for task in pending:
            task.cancel()
        scheduled, backlog = None, 0
    cpu = time.process_time() - cpu_before
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    return {"latencies": sorted(tally.latencies), "http": tally.http, "outcomes": tally.outcomes,
            "orders_ok": tally.orders_ok, "orders_failed": tally.orders_failed, "errors": tally.errors,
            "duration": spec["duration"], "scheduled": scheduled, "backlog": backlog, "late": late[0],
            "generator_cpu": cpu, "wall": clock() - begin, "probe_latencies": sorted(tally.probe_latencies)}


def _generator_main() -> None:
    import uvloop

    spec = json.loads(sys.stdin.read())
    result = uvloop.run(_generate(spec))
    with open(spec["result_path"], "w") as handle:
        json.dump(result, handle)


def run_generator(spec: dict, meter: CpuMeter | None = None, profiler: Profiler | None = None,
                  label: str = "", profile_kinds: tuple[str, ...] = ()) -> tuple[dict, dict | None]:
    """Run one generator process for one phase; return its tally and the CPU use inside its measured window."""
    # The tally goes through a file: stdout carries the WINDOW line, and nothing else may mix into it.
    with tempfile.NamedTemporaryFile(prefix="generator-", suffix=".json", delete=False) as handle:
        spec = dict(spec, result_path=handle.name)
    process = subprocess.Popen([sys.executable, str(HTTP_BENCH), "--generator"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    usage = None
    if meter is not None:
        meter.watch(process.pid, "generator")
    try:
        process.stdin.write(json.dumps(spec).encode())
        process.stdin.close()
        line = process.stdout.readline().decode()
        if line.startswith("WINDOW") and meter is not None:
            measure_from, measure_to = (float(value) for value in line.split()[1:])
            time.sleep(max(0.0, measure_from - time.monotonic()))
            before = meter.sample()
            recording = (profiler.start(label, meter, measure_to - time.monotonic(), profile_kinds)
                         if profiler and profile_kinds else None)
            time.sleep(max(0.0, measure_to - time.monotonic()))
            usage = meter.usage(before, meter.sample())
            if recording:
                profiler.finish(recording)
        process.stdout.read()  # to its end: the generator exits once its tally is written
        process.wait(timeout=spec["warmup"] + spec["duration"] + spec["timeout"] + 120)
    finally:
        if meter is not None:
            meter.pids.pop(process.pid, None)
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the generator failed:\n{process.stderr.read().decode(errors='replace')[-3000:]}")
    try:
        return json.loads(Path(spec["result_path"]).read_text()), usage
    finally:
        os.unlink(spec["result_path"])
