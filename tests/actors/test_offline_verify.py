"""`order-service verify`: journals of a stopped service replayed offline, without Ray."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys

import pytest
import ray

from actors.offline import verify
from actors.records import SHARD_RECORDS
from engine import OrderAccepted, OrderView
from tests.actors.service import Acknowledged, RunningService, order_request, random_requests, run, setup_market
from tests.journal.test_lmdb_journal import flip_byte_in_every_copy

pytestmark = pytest.mark.usefixtures("ray_cluster")

USERS = [f"trader{i}" for i in range(6)]


def test_verify_of_a_cleanly_stopped_service_finds_every_invariant_holding(tmp_path):
    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, USERS, ["AAA"], usd=10_000, lots=500)
        acknowledged = Acknowledged()
        for request in random_requests(random.Random(3), USERS, ["AAA"], 150):
            acknowledged.record(await client.place_order(request))
        live = await client.audit()
        await service.stop()
        return live

    live = run(scenario())
    report = verify(tmp_path)
    assert report["problems"] == []
    assert report["open_orders"] == report["resting_orders"] == live["open_orders"]
    assert report["totals"] == report["net_deposits"]
    assert report["users"] == len(USERS) and report["aborted_orders"] == []
    assert {stream["stream"] for stream in report["streams"]} >= {"registry", "shard-0", "shard-1"}


def test_verify_after_a_crash_between_hold_and_match_fails_the_orphan_in_memory(tmp_path):
    async def scenario():
        service = RunningService(tmp_path, crash_points=frozenset({"shard.after_hold"}))
        client = await service.start()
        await setup_market(client, ["alice"], ["AAA"], usd=1_000, lots=0)
        with pytest.raises(ray.exceptions.RayActorError):
            await client.place_order(order_request("alice", "AAA", "limit_buy", 5, 10_000))
        await service.stop()  # before anything asks the restarted shard to reconcile

    run(scenario())
    report = verify(tmp_path)
    assert len(report["aborted_orders"]) == 1
    assert report["problems"] == [] and report["totals"] == report["net_deposits"]


def test_verify_counts_waiting_stops_holds_and_gives_back_an_amend_that_never_reached_its_book(tmp_path):
    from actors.messages import AmendOrder
    from tests.actors.test_stops_and_amends import stop_request

    async def scenario():
        service = RunningService(tmp_path, crash_points=frozenset({"shard.after_amend_hold"}))
        client = await service.start()
        await setup_market(client, ["alice"], ["X"], usd=1_000, lots=100)
        stop = await client.place_order(stop_request("alice", "limit_buy", 2, 12_000, "stop_loss", 12_100))
        assert stop.order.stop_waiting
        buy = (await client.place_order(order_request("alice", "X", "limit_buy", 5, 10_000))).order
        with pytest.raises(Exception):
            await client.amend_order(AmendOrder("alice", buy.order_id, None, 11_000))  # holds 50 more, dies
        await service.stop()  # before the restarted shard reconciles

    run(scenario())
    report = verify(tmp_path)
    assert report["problems"] == [] and report["totals"] == report["net_deposits"]
    assert len(report["aborted_amends"]) == 1 and report["waiting_stops"] == 1
    assert report["open_orders"] == report["resting_orders"] == 1


def test_verify_command_names_the_sequence_of_a_damaged_record(tmp_path):
    async def scenario():
        service = RunningService(tmp_path / "live")
        client = await service.start()
        await setup_market(client, ["alice", "bob00"], ["AAA"], usd=1_000, lots=100)
        await client.place_order(order_request("alice", "AAA", "limit_sell", 5, 10_000, client_order_id="needle-1"))
        await service.stop()

    run(scenario())
    healthy = subprocess.run([sys.executable, "-m", "gateway", "verify", "--data-dir", str(tmp_path / "live")],
                             capture_output=True, text=True)
    assert healthy.returncode == 0, healthy.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "live", damaged)
    for stream in (damaged / "journals").iterdir():
        if b"needle-1" in (stream / "data.mdb").read_bytes():
            flip_byte_in_every_copy(stream / "data.mdb", b"needle-1")
    broken = subprocess.run([sys.executable, "-m", "gateway", "verify", "--data-dir", str(damaged)],
                            capture_output=True, text=True)
    assert broken.returncode == 1
    assert "fails its checksum at sequence" in broken.stderr


def test_replay_until_a_sequence_rebuilds_the_stream_as_it_was_then(tmp_path):
    from actors.offline import replay_stream
    from journal import LmdbJournal

    async def scenario():
        service = RunningService(tmp_path, snapshot_every=20)
        client = await service.start()
        await setup_market(client, USERS, ["AAA"], usd=10_000, lots=500)
        for request in random_requests(random.Random(9), USERS, ["AAA"], 120):
            await client.place_order(request)
        await client.drain()
        await service.stop()

    run(scenario())
    full = replay_stream(tmp_path, "shard-0")
    assert full["sequence"] == full["last_sequence"]
    verified = {s["stream"]: s["state_digest"] for s in verify(tmp_path)["streams"]}
    assert full["state_digest"] == verified["shard-0"]

    with LmdbJournal(tmp_path / "journals" / "shard-0") as journal:
        records = [record for _, record in journal.read()]
    until = len(records) // 2
    accepted_by_then = sum(1 for record in records[:until] if type(SHARD_RECORDS.decode(record)) is OrderAccepted)
    halfway = replay_stream(tmp_path, "shard-0", until=until)
    assert halfway["sequence"] == until
    def placed(state: dict) -> int:  # open orders, and those closed by then
        return len(state["orders"]) + len(state["closed_orders"])

    assert placed(halfway["state"]) == accepted_by_then < placed(full["state"])

    command = subprocess.run([sys.executable, "-m", "gateway", "replay", "--data-dir", str(tmp_path),
                              "--stream", "shard-0", "--until", str(until), "--output", str(tmp_path / "out.json")],
                             capture_output=True, text=True)
    assert command.returncode == 0, command.stderr
    assert json.loads((tmp_path / "out.json").read_text())["state_digest"] == halfway["state_digest"]


def test_replay_at_a_moment_rebuilds_every_stream_as_it_was_then(tmp_path):
    import time

    from actors.offline import replay_at, replay_stream

    moments = {}

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, USERS, ["AAA"], usd=10_000, lots=500)
        moments["before_orders"] = time.time_ns() // 1000
        first = [await client.place_order(request)
                 for request in random_requests(random.Random(21), USERS, ["AAA"], 40)]
        await client.drain()
        moments["between"] = time.time_ns() // 1000
        for request in random_requests(random.Random(22), USERS, ["AAA"], 40):
            await client.place_order(request)
        await client.drain()
        await service.stop()
        moments["first_ids"] = {result.order.order_id for result in first if result.ok}

    run(scenario())
    at_between = replay_at(tmp_path, moments["between"])
    by_stream = {entry["stream"]: entry for entry in at_between["streams"]}
    assert set(by_stream) == {"registry", "shard-0", "shard-1", "book-0", "book-1"}
    orders_then = {order_id for name, entry in by_stream.items() if name.startswith("shard")
                   for order_id in (OrderView(*order).order_id
                                    for order in entry["state"]["orders"] + entry["state"]["closed_orders"])}
    assert orders_then == moments["first_ids"] and orders_then
    full = {name: replay_stream(tmp_path, name) for name in by_stream}
    assert all(entry["sequence"] < full[name]["last_sequence"]
               for name, entry in by_stream.items() if name.startswith("shard"))
    assert len(by_stream["registry"]["state"]["users"]) == len(USERS)

    before = {entry["stream"]: entry for entry in replay_at(tmp_path, moments["before_orders"])["streams"]}
    assert all(not entry["state"]["orders"] and not entry["state"]["closed_orders"]
               for name, entry in before.items() if name.startswith("shard"))

    command = subprocess.run([sys.executable, "-m", "gateway", "replay", "--data-dir", str(tmp_path),
                              "--at", _iso(moments["between"]), "--stream", "shard-0"],
                             capture_output=True, text=True)
    assert command.returncode == 0, command.stderr
    (replayed,) = json.loads(command.stdout)["streams"]
    assert replayed["state_digest"] == by_stream["shard-0"]["state_digest"]
    refused = subprocess.run([sys.executable, "-m", "gateway", "replay", "--data-dir", str(tmp_path),
                              "--at", "yesterday"], capture_output=True, text=True)
    assert refused.returncode == 2 and "ISO 8601" in refused.stderr


def _iso(micros: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(micros / 1e6, tz=timezone.utc).isoformat(timespec="microseconds")


def test_a_replayed_book_keeps_only_the_settlements_its_shards_had_not_acknowledged(tmp_path):
    # Shards acknowledge with every call; the books journal those acknowledgements, so a replay
    # does not rebuild the whole settlement history in memory.
    from actors.offline import rebuild

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, USERS, ["AAA", "BBB"], usd=10_000, lots=500)
        for request in random_requests(random.Random(31), USERS, ["AAA", "BBB"], 160):
            await client.place_order(request)
        await client.drain()
        await service.stop()

    run(scenario())
    offline = rebuild(tmp_path)
    try:
        made = sum(sum(book.outbox.sequences.values()) for book in offline.books)
        kept = sum(len(pending) for book in offline.books for pending in book.outbox.pending.values())
        assert made > 100
        assert kept < made / 4, (kept, made)
        assert offline.recovered_settlements == 0  # every settlement dropped had been applied and journaled
    finally:
        offline.close()
