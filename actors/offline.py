"""Offline recovery and replay: a service's journals read without Ray or HTTP.

`replay_stream` rebuilds one stream's state as of a sequence, and `replay_at`
every stream as of a moment, for investigating what happened before a crash.
`rebuild` opens every stream of a stopped service (each actor class replays its
snapshot and journal exactly as at start, which verifies checksums and
contiguity), then does what the shards' reconcile would do — apply the
settlements the books journaled and the shards had not, and fail the orders
that never reached a book — in memory only: nothing is written. `verify`
then checks the invariants of DESIGN.md and summarises each stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from actors.book_actor import AssetBookActor, resting_orders, waiting_stops
from actors.client import combine_audits
from actors.config import ServiceConfig, recorded_layout
from actors.records import BOOK_RECORDS, REGISTRY_RECORDS, SHARD_OWN_RECORDS, SHARD_RECORDS, AssetDefined, event_times
from actors.registry_actor import RegistryActor
from actors.shard_actor import AccountShardActor
from engine import Accounts, OrderAccepted, OrderHeld, RejectReason, SettlementApplied, decode_event, state_digest
from engine.numbers import USD, format_money
from engine.queries import audit
from journal import LmdbJournal


@dataclass
class OfflineService:
    """Every actor's state, rebuilt from the journals of a stopped service."""

    config: ServiceConfig
    registry: RegistryActor
    shards: list[AccountShardActor]
    books: list[AssetBookActor]
    recovered_settlements: int = 0
    aborted_orders: list[int] = field(default_factory=list)
    aborted_amends: list[int] = field(default_factory=list)

    def close(self) -> None:
        for actor in (self.registry, *self.shards, *self.books):
            actor.store.close()


def layout_config(data_dir: Path) -> ServiceConfig:
    """The configuration a data directory was created with."""
    layout = recorded_layout(Path(data_dir))
    if not layout:
        raise ValueError(f"{data_dir} holds no service data (no layout.json)")
    return ServiceConfig(data_dir=Path(data_dir), **layout)


def rebuild(data_dir: Path) -> OfflineService:
    """Replay every journal and finish recovery in memory."""
    config = layout_config(data_dir)
    books = [AssetBookActor(config, index) for index in range(config.book_actor_count)]
    shards = [AccountShardActor(config, index, offline=True) for index in range(config.shard_count)]
    service = OfflineService(config, RegistryActor(config, offline=True), shards, books)
    for shard in shards:
        accounts = shard.accounts
        for book in books:
            for settlement in book.outbox.pending[shard.index]:
                outcome = accounts.settle(settlement.asset_id, settlement.sequence,
                                          tuple(decode_event(event) for event in settlement.events))
                if not isinstance(outcome, RejectReason):
                    service.recovered_settlements += 1
        for order in accounts.pending_orders():
            accounts.abort_order(order.order_id, order.created_at)
            service.aborted_orders.append(order.order_id)
        for amend in accounts.abort_amends(0):  # amends that never reached their book
            service.aborted_amends.append(amend.amend_id)
    return service


def verify(data_dir: Path) -> dict:
    """Rebuild the service offline and check its invariants; return the report."""
    service = rebuild(data_dir)
    try:
        specs = service.registry.assets
        book_orders = {asset_id: resting_orders(book)
                       for actor in service.books for asset_id, book in actor.books.items()}
        book_stops = {asset_id: waiting_stops(book)
                      for actor in service.books for asset_id, book in actor.books.items()}
        report = combine_audits([audit(shard.accounts) for shard in service.shards], book_orders, book_stops)
        history = [check_history(shard) for shard in service.shards]
        report["problems"].extend(problem for entry in history for problem in entry.pop("problems"))

        def amount(asset_id: str, value: int) -> str:
            return format_money(value) if asset_id == USD else specs[asset_id].format_quantity(value)

        streams = []
        for name, actor, state in (
            [("registry", service.registry, service.registry._snapshot_state())]
            + [(f"shard-{s.index}", s, s.accounts.to_state()) for s in service.shards]
            + [(f"book-{b.index}", b, b._snapshot_state()) for b in service.books]
        ):
            streams.append({"stream": name, "events": actor.store.journal.last_sequence(),
                            "snapshot_sequence": actor.store.journal.snapshot_sequence(),
                            "state_digest": state_digest(state)})
        report.update(
            streams=streams,
            users=len(service.registry.users),
            totals={asset_id: amount(asset_id, value) for asset_id, value in sorted(report["totals"].items())},
            net_deposits={asset_id: amount(asset_id, value)
                          for asset_id, value in sorted(report["net_deposits"].items())},
            recovered_settlements=service.recovered_settlements,
            aborted_orders=service.aborted_orders,
            aborted_amends=service.aborted_amends,
            history=history,
        )
        return report
    finally:
        service.close()


def check_history(shard: AccountShardActor) -> dict:
    """Compare the history a shard keeps on disk with what its journal says, where both exist.

    Replaying the journal from its first record into empty accounts closes the same orders and
    makes the same fills as the shard did; every one of them must be on disk as it closed, and
    nothing else. A journal pruned before its start, or a data directory whose history was never
    moved to disk (from before, not started since), leaves nothing to compare."""
    reader, journal = shard.history, shard.store.journal
    kept_orders = {view.order_id: view for view in reader.all_orders()}
    kept_transactions = {item.transaction_id: item for item in reader.all_transactions()}
    summary = {"stream": f"shard-{shard.index}", "closed_orders_on_disk": len(kept_orders),
               "transactions_on_disk": len(kept_transactions), "checked_against_journal": False, "problems": []}
    records = journal.read(1)
    first = next(records, None)
    if not reader.has_format() or first is None or first[0] != 1:
        return summary
    accounts = Accounts()
    closed: dict[int, object] = {}
    made: dict[str, object] = {}
    client_ids = {}
    for _, raw in chain([first], records):
        event = SHARD_RECORDS.decode(raw)
        if type(event) in SHARD_OWN_RECORDS:
            continue
        accepted = [event] if type(event) is OrderAccepted else []
        if type(event) is SettlementApplied:  # holds rebuilt from a book's copy (issue 12)
            accepted = [decode_event(inner.events[0]) for inner in event.events
                        if type(inner) is OrderHeld and inner.order_id not in accounts.orders]
        accounts.apply(event)
        for order in accepted:
            if order.client_order_id is not None:
                client_ids[(order.username, order.client_order_id)] = order.order_id
        orders, transactions = accounts.take_history()
        closed.update((order.order_id, order.view()) for order in orders)
        made.update((item.transaction_id, item) for item in transactions)
    problems = summary["problems"]
    for order_id in closed.keys() ^ kept_orders.keys():
        where = "on disk but not closed by the journal" if order_id in kept_orders else "closed but not on disk"
        problems.append(f"shard-{shard.index}: order {order_id} is {where}")
    problems.extend(f"shard-{shard.index}: order {order_id} on disk differs from the journal's"
                    for order_id in closed.keys() & kept_orders.keys() if closed[order_id] != kept_orders[order_id])
    if made != kept_transactions:
        problems.append(f"shard-{shard.index}: {len(made.keys() ^ kept_transactions.keys())} transactions differ "
                        f"between disk and journal")
    kept_client_ids = {(user, client_id): order_id for user, client_id, order_id in reader.all_client_order_ids()}
    if kept_client_ids != client_ids:
        problems.append(f"shard-{shard.index}: client order ids on disk differ from the journal's")
    summary["checked_against_journal"] = True
    return summary


def shard_state_with_history(shard: AccountShardActor, until: int | None) -> dict:
    """A shard's state as of `until`, with the history made by then: its hot state (`orders` are the
    open ones) and `closed_orders` and `transactions`, replayed from the journal's first record.
    (A journal pruned before its start gives the hot state alone.)"""
    state = shard.accounts.to_state()
    records = shard.store.journal.read(1, None if until is None else until + 1)
    first = next(records, None)
    if first is None or first[0] != 1:
        return state
    accounts = Accounts()
    closed, transactions = [], []
    for _, raw in chain([first], records):
        event = SHARD_RECORDS.decode(raw)
        if type(event) not in SHARD_OWN_RECORDS:
            accounts.apply(event)
        orders, made = accounts.take_history()
        closed.extend(order.to_record() for order in orders)
        transactions.extend([*item] for item in made)
    return {**accounts.to_state(), "closed_orders": closed, "transactions": transactions}


def streams(config: ServiceConfig) -> list[str]:
    """Every stream of a service, in the order `verify` lists them."""
    return (["registry"] + [f"shard-{index}" for index in range(config.shard_count)]
            + [f"book-{index}" for index in range(config.book_actor_count)])


def record_time(stream: str, raw: list) -> int | None:
    """The latest timestamp (µs since the epoch) among a journal record's events, None if it has none.

    Shards journal one event per record (a settlement holds its book's events); books journal
    one record per call (matches and cancels carry events; fences and new assets none); the
    registry stamps users, keys, suspensions and audit entries, not assets."""
    if stream == "registry":
        record = REGISTRY_RECORDS.decode(raw)
        if type(record) is AssetDefined:
            return None
        return getattr(record, "created_at", None) or getattr(record, "timestamp", None) or getattr(
            record, "revoked_at", None)
    if stream.startswith("shard-"):
        stamps = event_times(SHARD_RECORDS.decode(raw))
    else:
        record = BOOK_RECORDS.decode(raw)
        events = getattr(record, "events", ())
        stamps = [stamp for _, encoded in events for event in encoded for stamp in event_times(decode_event(event))]
    return max(stamps, default=None)


def sequence_at(data_dir: Path, stream: str, moment: int) -> int:
    """The last sequence of a stream written at or before `moment` (µs since the epoch).

    The answer is a prefix: replay stops before the first record stamped later than `moment`
    (a record with no timestamp of its own goes with the records before it)."""
    journal = LmdbJournal(layout_config(data_dir).journal_path(stream), sync=False)
    try:
        last = 0
        for sequence, record in journal.read():
            stamp = record_time(stream, record)
            if stamp is not None and stamp > moment:
                break
            last = sequence
        return last
    finally:
        journal.close()


def replay_at(data_dir: Path, moment: int, only: str | None = None) -> dict:
    """Rebuild every stream (or `only` one) as it was at `moment` (µs since the epoch)."""
    config = layout_config(data_dir)
    names = streams(config) if only is None else [only]
    results = []
    for stream in names:
        if stream not in streams(config):
            raise ValueError(f"no stream {stream!r}: {', '.join(streams(config))}")
        results.append(replay_stream(data_dir, stream, sequence_at(data_dir, stream, moment)))
    return {"at_micros": moment, "streams": results}


def replay_stream(data_dir: Path, stream: str, until: int | None = None) -> dict:
    """Rebuild one stream (`registry`, `shard-N`, `book-N`) as of sequence `until` (default: the end)."""
    config = layout_config(data_dir)
    kind, _, number = stream.partition("-")
    if kind == "registry" and not number:
        actor = RegistryActor(config, replay_until=until, offline=True)
        state = actor._snapshot_state()
    elif kind == "shard" and number.isdigit() and int(number) < config.shard_count:
        actor = AccountShardActor(config, int(number), replay_until=until, offline=True)
        state = shard_state_with_history(actor, until)
    elif kind == "book" and number.isdigit() and int(number) < config.book_actor_count:
        actor = AssetBookActor(config, int(number), replay_until=until)
        state = actor._snapshot_state()
    else:
        raise ValueError(f"no stream {stream!r}: registry, shard-0..{config.shard_count - 1} "
                         f"or book-0..{config.book_actor_count - 1}")
    try:
        last = actor.store.journal.last_sequence()
        # The digest is of the hot state, as `verify` reports it; history rides beside it.
        hot = {key: value for key, value in state.items() if key not in ("closed_orders", "transactions")}
        return {"stream": stream, "sequence": last if until is None else min(until, last),
                "last_sequence": last, "state_digest": state_digest(hot), "state": state}
    finally:
        actor.store.close()
