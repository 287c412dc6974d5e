"""The settlement outbox alone: routing, hand-out, acknowledgement, delivery and resend.

The shards here are `Receiver`s in this process that apply settlements by the same rule
as a real shard (strictly in order per asset, repeats ignored) and acknowledge what they
applied; the actors' own tests run the outbox between real actors.
"""

from __future__ import annotations

import asyncio

import pytest
import ray

from actors.messages import SettlementBatch
from actors.outbox import SettlementOutbox
from engine import OrderClosed, OrderRested, TradeExecuted, encode_event

SHARDS = {"alice": 0, "bob": 1, "carol": 0}


class Receiver:
    """One shard's side of delivery: applies in order, ignores repeats, acknowledges."""

    def __init__(self) -> None:
        self.applied: dict[str, int] = {}
        self.received: list[SettlementBatch] = []
        self.failures_to_come = 0

    def apply(self, batches: list[SettlementBatch]) -> dict[str, int]:
        if self.failures_to_come:
            self.failures_to_come -= 1
            raise ray.exceptions.ActorUnavailableError("restarting", None)
        for batch in batches:
            if batch.sequence == self.applied.get(batch.asset_id, 0) + 1:
                self.applied[batch.asset_id] = batch.sequence
                self.received.append(batch)
        return dict(self.applied)


def make_outbox(receivers: list[Receiver]) -> SettlementOutbox:
    async def deliver(shard, batch):
        await asyncio.sleep(0)
        return receivers[shard].apply(batch)

    return SettlementOutbox(len(receivers), SHARDS.__getitem__, deliver, lambda shard: None)


def trade(trade_id: int, taker: str, maker: str) -> TradeExecuted:
    return TradeExecuted(trade_id, 100, 1, "buy", 10 + trade_id, taker, 20 + trade_id, maker, trade_id)


def route(outbox: SettlementOutbox, asset_id: str, events: list, record: int) -> None:
    outbox.route(asset_id, events, [encode_event(event) for event in events], record)


def test_a_trade_across_shards_is_numbered_for_each_and_one_within_a_shard_once():
    outbox = make_outbox([Receiver(), Receiver()])
    route(outbox, "X", [trade(1, "alice", "bob"), trade(2, "alice", "carol"),
                        OrderRested(5, "bob", "buy", 100, 3, 9)], record=1)
    route(outbox, "Y", [OrderClosed(6, "alice", "cancelled", "user_cancelled", 9)], record=2)
    outbox.made_durable(2)
    to_alice = outbox.hand_out(0)
    to_bob = outbox.hand_out(1)
    assert [(batch.asset_id, batch.sequence, len(batch.events)) for batch in to_alice] == [("X", 1, 2), ("Y", 1, 1)]
    assert [(batch.asset_id, batch.sequence, len(batch.events)) for batch in to_bob] == [("X", 1, 2)]
    assert outbox.sequences == {("X", 0): 1, ("X", 1): 1, ("Y", 0): 1}


def test_hand_out_gives_only_durable_settlements_and_each_once_until_acknowledged():
    outbox = make_outbox([Receiver(), Receiver()])
    route(outbox, "X", [trade(1, "alice", "carol")], record=1)
    route(outbox, "X", [trade(2, "alice", "carol")], record=2)
    outbox.made_durable(1)
    assert [batch.sequence for batch in outbox.hand_out(0)] == [1]
    assert outbox.hand_out(0) == []  # handed out already, not acknowledged yet
    outbox.made_durable(2)
    assert [batch.sequence for batch in outbox.hand_out(0)] == [2]
    outbox.acknowledge(0, {"X": 1})
    alices = outbox.pending[SHARDS["alice"]]
    assert [settlement.sequence for settlement in alices] == [2]
    assert [batch.sequence for batch in outbox.unapplied(0, {"X": 1})] == [2]


def test_delivery_brings_every_settlement_in_order_through_a_shard_restart():
    receivers = [Receiver(), Receiver()]
    _, bobs_shard = receivers
    bobs_shard.failures_to_come = 2

    async def scenario():
        outbox = make_outbox(receivers)
        outbox.start()
        for record in range(1, 21):
            route(outbox, "X", [trade(record, "alice", "bob")], record)
            outbox.made_durable(record)
        await asyncio.wait_for(outbox.drained(), timeout=30)
        return outbox

    outbox = asyncio.run(scenario())
    for receiver in receivers:
        assert [batch.sequence for batch in receiver.received] == list(range(1, 21))
    assert not any(outbox.pending.values())


def test_delivery_stands_aside_while_a_call_from_the_shard_will_carry_its_settlements():
    receivers = [Receiver(), Receiver()]
    alices_shard, _ = receivers

    async def scenario():
        outbox = make_outbox(receivers)
        with outbox.call_from(0, {}):
            route(outbox, "X", [trade(1, "alice", "carol")], record=1)
            outbox.made_durable(1)
            for _ in range(5):
                await asyncio.sleep(0)
            delivered_meanwhile = list(alices_shard.received)
            carried = outbox.hand_out(0)
        alices_shard.apply(carried)
        outbox.acknowledge(0, alices_shard.applied)
        await asyncio.wait_for(outbox.drained(), timeout=30)
        return delivered_meanwhile, carried

    delivered_meanwhile, carried = asyncio.run(scenario())
    assert delivered_meanwhile == []
    assert [batch.sequence for batch in carried] == [1]
    assert [batch.sequence for batch in alices_shard.received] == [1]


def test_outbox_state_round_trips_through_a_snapshot():
    outbox = make_outbox([Receiver(), Receiver()])
    route(outbox, "X", [trade(1, "alice", "bob")], record=1)
    route(outbox, "Y", [trade(2, "bob", "carol")], record=2)
    outbox.acknowledge(1, {"X": 1})
    restored = make_outbox([Receiver(), Receiver()])
    restored.load_state(outbox.to_state())
    assert restored.sequences == outbox.sequences
    assert restored.to_state() == outbox.to_state()
    # A snapshot's settlements are durable (they came from the journal): they may leave at once.
    assert [(batch.asset_id, batch.sequence) for batch in restored.hand_out(1)] == [("Y", 1)]


@pytest.mark.parametrize("applied, left", [({}, 2), ({"X": 1}, 1), ({"X": 5}, 0)])
def test_acknowledging_drops_exactly_what_the_shard_applied(applied, left):
    outbox = make_outbox([Receiver(), Receiver()])
    route(outbox, "X", [trade(1, "alice", "carol")], record=1)
    route(outbox, "X", [trade(2, "alice", "carol")], record=2)
    outbox.acknowledge(0, applied)
    assert len(outbox.pending[SHARDS["alice"]]) == left
