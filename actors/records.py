"""What each actor writes to its journal: named record kinds, one codec per actor, versioned.

A record is stored as `[version, kind, *fields]` (plain values that orjson encodes). Version 1
was written up to commit 3596753: positional lists whose first item was the kind's name and
whose layouts differed by kind (`["orders", shard, fence, by_asset, ack]` against
`["cancels", by_asset, shard, ack]`), some without their last fields; each codec upcasts
them on read, so every existing data directory still replays. Nothing outside this module
reads a record by position.

- A book actor journals `OrdersMatched`, `OrdersCancelled`, `Fenced` and `AssetOpened`. Every
  record that comes from a shard's call starts with that shard and the settlements it
  acknowledged with the call (`acknowledged`: asset -> last settlement sequence it made
  durable), so a replay drops them from the outbox.
- An account shard journals the engine's own events (`OrderAccepted`, `FundsHeld`,
  `SettlementApplied`, ...: see engine/events.py), each as one record.
- The registry journals `UserCreated` and `AssetDefined`; since issue 18 also `KeyCreated`,
  `KeyRevoked`, `UserSuspended`, `UserResumed` and `AuditLogged` (version 2 still: new kinds,
  and `UserCreated` gained a last field, `key_id`, which records written before lack: their
  user's key then gets an id derived from its hash, the same at every replay).
- An account shard also journals `AccountSuspended` and `AccountResumed` (its own records,
  not engine events): a suspended account takes no orders; and since issue 12
  `OrderIdsReserved` (the order ids it may send before journaling their holds).
- Issue 12 also added the book event `OrderHeld` (a shard's hold carried in a book's record),
  with version 4.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from engine import decode_event, encode_event
from engine.events import SettlementApplied

VERSION = 4
# Version 3 added stop orders and amends: `OrderAccepted` gained `stop_price` and `stop_kind`
# (defaults None), and new kinds of events (`StopAccepted`, `StopTriggered`, `OrderAmended`,
# `AmendRefused` in a book's records; `AmendRequested`, `AmendAborted` in a shard's). A version 2
# record is read as it is: its events decode with those defaults. Version 4 (issue 12) added the
# book event `OrderHeld` and the shard's `OrderIdsReserved`; it reads versions 2 and 3 as they are,
# and code of version 3 refuses a version 4 record by its number instead of failing on a kind.
READABLE = (2, 3, 4)


class RecordVersionError(ValueError):
    """A record written by a newer version of the code than this one."""


# ---- book actor --------------------------------------------------------------

class OrdersMatched(NamedTuple):
    """A shard's orders matched in one call: the book events per asset, in order."""

    shard: int
    acknowledged: dict[str, int]
    fence: int  # the highest order id of this shard matched so far
    events: list  # [[asset_id, [encoded book event, ...]], ...]


class OrdersCancelled(NamedTuple):
    """A shard's orders taken off their books in one call."""

    shard: int | None  # None in version 1 records that did not say
    acknowledged: dict[str, int]
    events: list  # [[asset_id, [encoded OrderClosed, ...]], ...]


class Fenced(NamedTuple):
    """A recovering shard's fence: its order ids up to `fence` are never matched again."""

    shard: int
    acknowledged: dict[str, int]
    fence: int


class AssetOpened(NamedTuple):
    asset: list  # AssetSpec.to_record()


# ---- registry ----------------------------------------------------------------

class UserCreated(NamedTuple):
    """A user and its first API key (`key_id` None in records from before keys had ids)."""

    username: str
    key_hash: str
    created_at: int
    key_id: str | None = None


class KeyCreated(NamedTuple):
    username: str
    key_id: str
    key_hash: str
    created_at: int


class KeyRevoked(NamedTuple):
    username: str
    key_id: str
    revoked_at: int


class UserSuspended(NamedTuple):
    username: str
    timestamp: int


class UserResumed(NamedTuple):
    username: str
    timestamp: int


class AuditLogged(NamedTuple):
    """One entry of the audit log (actors/audit_log.py); never a key, token or hash in it."""

    entry_id: int
    timestamp: int
    actor: str
    action: str
    target: str
    details: dict


class AssetDefined(NamedTuple):
    asset: list  # AssetSpec.to_record()


class RecordCodec:
    """Encodes one actor's records and decodes them, upcasting version 1."""

    def __init__(self, kinds: tuple[type, ...], upcast_v1) -> None:
        self._kinds = {kind.__name__: kind for kind in kinds}
        self._upcast_v1 = upcast_v1

    def encode(self, record: NamedTuple) -> list:
        return [VERSION, type(record).__name__, *record]

    def decode(self, raw: list) -> Any:
        version, kind, *fields = raw
        if type(version) is str:
            return self._upcast_v1(raw)
        if version not in READABLE:
            raise RecordVersionError(f"record version {version!r}; this code reads up to {VERSION}")
        return self._kinds[kind](*fields)


def _book_v1(raw: list) -> NamedTuple:
    kind, *fields = raw
    if kind == "orders":  # ["orders", shard, fence, by_asset(, acknowledged)]
        shard, fence, events, *acknowledged = fields
        return OrdersMatched(shard, *(acknowledged or [{}]), fence, events)
    if kind == "cancels":  # ["cancels", by_asset(, shard, acknowledged)]
        events, *shard_and_acknowledged = fields
        return OrdersCancelled(*(shard_and_acknowledged or [None, {}]), events)
    if kind == "fence":  # ["fence", shard, fence(, applied)]
        shard, fence, *acknowledged = fields
        return Fenced(shard, *(acknowledged or [{}]), fence)
    if kind == "asset":  # ["asset", spec record]
        (asset,) = fields
        return AssetOpened(asset)
    raise ValueError(f"unknown book journal record {kind!r}")


def _registry_v1(raw: list) -> NamedTuple:
    kind, *fields = raw
    if kind == "user":  # ["user", username, key_hash, created_at]
        return UserCreated(*fields)
    if kind == "asset":  # ["asset", spec record]
        return AssetDefined(*fields)
    raise ValueError(f"unknown registry journal record {kind!r}")


BOOK_RECORDS = RecordCodec((OrdersMatched, OrdersCancelled, Fenced, AssetOpened), _book_v1)
REGISTRY_RECORDS = RecordCodec((UserCreated, AssetDefined, KeyCreated, KeyRevoked, UserSuspended, UserResumed,
                                AuditLogged), _registry_v1)


# ---- account shard's own records (beside the engine's events) -----------------

class AccountSuspended(NamedTuple):
    username: str
    timestamp: int


class AccountResumed(NamedTuple):
    username: str
    timestamp: int


class OrderIdsReserved(NamedTuple):
    """Order ids up to `order_id` may be sent to books before their holds are journaled: a
    recovering shard fences them all, and numbers its next orders above them."""

    order_id: int


SHARD_OWN_RECORDS = (AccountSuspended, AccountResumed, OrderIdsReserved)  # not engine events: no `Accounts.apply`
_SHARD_OWN = {kind.__name__: kind for kind in SHARD_OWN_RECORDS}


class ShardRecordCodec:
    """An account shard's records are engine events: version 1 was `encode_event`'s own form."""

    @staticmethod
    def encode(event: NamedTuple) -> list:
        if type(event) is SettlementApplied:
            return [VERSION, *encode_event(event)]
        return [VERSION, type(event).__name__, *event]  # what encode_event makes, with the version

    @staticmethod
    def settlement_applied(asset_id: str, sequence: int, encoded_events: list) -> list:
        """The record of a `SettlementApplied`, from book events as the book encoded them."""
        return [VERSION, "SettlementApplied", asset_id, sequence, encoded_events]

    @staticmethod
    def decode(raw: list) -> Any:
        version, *event = raw
        if type(version) is str:
            return decode_event(raw)
        if version not in READABLE:
            raise RecordVersionError(f"record version {version!r}; this code reads up to {VERSION}")
        own = _SHARD_OWN.get(event[0])
        if own is not None:
            return own(*event[1:])
        return decode_event(event)


SHARD_RECORDS = ShardRecordCodec()


def event_times(event: Any) -> list[int]:
    """The timestamps of an engine event, and of the book events a settlement carries."""
    inner = event.events if type(event) is SettlementApplied else (event,)
    return [each.timestamp for each in inner if hasattr(each, "timestamp")]
