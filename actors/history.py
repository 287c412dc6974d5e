"""A shard's history on disk: closed orders, transactions and client order ids.

History lives in named databases of the shard's own LMDB environment, beside its
journal (see `LmdbJournal(tables=...)`), and every put rides in the same write
transaction as the journal records that made it: an order's close, a fill's
settlement, an order's acceptance. The two can never disagree after a crash.
Reads are LMDB read transactions: they never wait for the writer.

Keys are fixed-width and big-endian where they sort, so byte order is numeric
order; a username ends with a 0 byte (never in a username) so one user's keys
never run into another's.

- `orders`: order id -> the closed order (`OrderView` as a JSON list).
- `order_index` (sorted duplicates): per user, and per user and status, order
  type or asset, the user's closed orders as `created_at | order_id | status |
  order type | asset id` values, oldest first; a list walks one key backwards.
  Each key's count is LMDB's own (O(1)), so an unfiltered page of any depth
  costs a count and a skip.
- `transactions` (sorted duplicates): per (user, asset), and per (user, asset,
  BUY/SELL), `timestamp | trade id | side | the transaction as JSON`.
- `client_order_ids`: user and client order id -> order id, for ever.
- `history_meta`: `format`, written once history is kept here (a data directory
  from before is moved here once, on its first start).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice, takewhile

import orjson

from engine import OrderRecord, OrderView, Transaction
from engine.orders import ORDER_TYPES, STATUSES

TABLES = {"orders": False, "order_index": True, "transactions": True, "client_order_ids": False,
          "history_meta": False}
FORMAT_KEY, FORMAT = b"format", b"2"

_U64 = struct.Struct(">Q")
_SORT_KEY = struct.Struct(">QQ")  # created_at (or timestamp), then id: the list order
_LAST_MICROS = (1 << 64) - 2  # the latest time a key can say, + 1
_STATUS_CODES = {status: bytes([index]) for index, status in enumerate(STATUSES)}
_TYPE_CODES = {order_type: bytes([index]) for index, order_type in enumerate(ORDER_TYPES)}
_STATUS_NAMES = {code: status for status, code in _STATUS_CODES.items()}
_TYPE_NAMES = {code: order_type for order_type, code in _TYPE_CODES.items()}
_SIDE_CODES = {"BUY": b"B", "SELL": b"S"}
_CLOSED = {"completed", "cancelled", "failed"}

Write = tuple[str, bytes, bytes]


def _user(username: str) -> bytes:
    return username.encode() + b"\0"


# ---- what a change writes ----------------------------------------------------

def order_accepted_writes(username: str, client_order_id: str | None, order_id: int) -> list[Write]:
    """A client order id is kept for ever from the order's acceptance on."""
    if client_order_id is None:
        return []
    return [("client_order_ids", _user(username) + client_order_id.encode(), _U64.pack(order_id))]


def closed_order_writes(order: OrderRecord | OrderView) -> list[Write]:
    """A closed order, and its entries in the user's indexes."""
    view = order.view() if isinstance(order, OrderRecord) else order
    user = _user(view.username)
    entry = (_SORT_KEY.pack(view.created_at, view.order_id) + _STATUS_CODES[view.status]
             + _TYPE_CODES[view.order_type] + view.asset_id.encode())
    return [
        ("orders", _U64.pack(view.order_id), orjson.dumps([*view])),
        ("order_index", b"A" + user, entry),
        ("order_index", b"S" + user + view.status.encode(), entry),
        ("order_index", b"T" + user + view.order_type.encode(), entry),
        ("order_index", b"X" + user + view.asset_id.encode(), entry),
    ]


def transaction_writes(transaction: Transaction) -> list[Write]:
    """One side of a fill, under its (user, asset) and (user, asset, type)."""
    key = _user(transaction.username) + transaction.asset_id.encode() + b"\0"
    entry = _transaction_entry(transaction)
    return [("transactions", b"A" + key, entry),
            ("transactions", b"T" + key + transaction.transaction_type.encode(), entry)]


def _transaction_entry(transaction: Transaction) -> bytes:
    trade_id = int(transaction.transaction_id.rsplit("-", 2)[1])
    return (_SORT_KEY.pack(transaction.timestamp, trade_id) + _SIDE_CODES[transaction.transaction_type]
            + orjson.dumps([*transaction]))


def format_writes() -> list[Write]:
    return [("history_meta", FORMAT_KEY, FORMAT)]


# ---- reading -----------------------------------------------------------------

class HistoryReader:
    """Queries over one shard's history tables; `reading` is the journal's `reading()`."""

    def __init__(self, reading: Callable) -> None:
        self._reading = reading

    def has_format(self) -> bool:
        with self._reading() as cursor:
            found = cursor("history_meta")
            return found is not None and found.set_key(FORMAT_KEY)

    def order(self, order_id: int) -> OrderView | None:
        with self._reading() as cursor:
            found = cursor("orders")
            if found is None or not found.set_key(_U64.pack(order_id)):
                return None
            return OrderView(*orjson.loads(found.value()))

    def order_id_for_client_id(self, username: str, client_order_id: str) -> int | None:
        with self._reading() as cursor:
            found = cursor("client_order_ids")
            if found is None or not found.set_key(_user(username) + client_order_id.encode()):
                return None
            return _U64.unpack(found.value())[0]

    def orders_page(self, username: str, *, limit: int, offset: int, newer: list[OrderView],
                    order_type: str | None = None, status: str | None = None, asset_id: str | None = None,
                    start: int | None = None, end: int | None = None) -> tuple[list[OrderView], int]:
        """One page of the user's orders, newest first: the closed ones kept here merged with
        `newer` (open, or closed and maybe not kept yet; matching the filters, newest first);
        return it and the total."""
        user = _user(username)
        wanted_type = wanted_asset = None
        if status is not None:
            key, wanted_type, wanted_asset = b"S" + user + status.encode(), order_type, asset_id
        elif asset_id is not None:
            key, wanted_type = b"X" + user + asset_id.encode(), order_type
        elif order_type is not None:
            key = b"T" + user + order_type.encode()
        else:
            key = b"A" + user
        type_code = _TYPE_CODES[wanted_type] if wanted_type is not None else None
        asset_bytes = wanted_asset.encode() if wanted_asset is not None else None

        def matches(entry: bytes) -> bool:
            return ((type_code is None or entry[17:18] == type_code)
                    and (asset_bytes is None or entry[18:] == asset_bytes))

        with self._reading() as cursor:
            found = cursor("orders")
            # A closed order may be kept here already and still in memory: count it once.
            newer = [view for view in newer
                     if view.status not in _CLOSED or not found.set_key(_U64.pack(view.order_id))]
            entries, total = _walk_back(cursor("order_index"), key, start, end, matches,
                                        type_code is None and asset_bytes is None, offset, limit, newer,
                                        lambda view: _SORT_KEY.pack(view.created_at, view.order_id))
            page = []
            for entry in entries:
                if isinstance(entry, bytes):
                    found.set_key(entry[8:16])
                    page.append(OrderView(*orjson.loads(found.value())))
                else:
                    page.append(entry)
        return page, total

    def transactions_page(self, username: str, asset_id: str, *, limit: int, offset: int,
                          newer: list[Transaction], transaction_type: str | None = None,
                          start: int | None = None, end: int | None = None) -> tuple[list[Transaction], int]:
        """One page of the user's transactions in one asset, newest first, merged with `newer`
        (made but maybe not kept here yet, newest first); return it and the total."""
        key = _user(username) + asset_id.encode() + b"\0"
        key = b"T" + key + transaction_type.encode() if transaction_type is not None else b"A" + key
        with self._reading() as cursor:
            index = cursor("transactions")
            newer = [item for item in newer
                     if (transaction_type is None or item.transaction_type == transaction_type)
                     and not index.set_key_dup(key, _transaction_entry(item))]
            entries, total = _walk_back(index, key, start, end, bool, True, offset, limit, newer,
                                        lambda item: _transaction_entry(item)[:16])
        return [Transaction(*orjson.loads(entry[17:])) if isinstance(entry, bytes) else entry
                for entry in entries], total

    def all_orders(self) -> Iterator[OrderView]:
        """Every closed order kept here, by id (for offline checks)."""
        with self._reading() as cursor:
            for value in cursor("orders").iternext(keys=False) if cursor("orders") else ():
                yield OrderView(*orjson.loads(value))

    def all_transactions(self) -> Iterator[Transaction]:
        """Every transaction kept here (for offline checks)."""
        with self._reading() as cursor:
            for key, value in cursor("transactions").iternext() if cursor("transactions") else ():
                if key.startswith(b"A"):
                    yield Transaction(*orjson.loads(value[17:]))

    def all_client_order_ids(self) -> Iterator[tuple[str, str, int]]:
        with self._reading() as cursor:
            for key, value in cursor("client_order_ids").iternext() if cursor("client_order_ids") else ():
                username, _, client_order_id = key.partition(b"\0")
                yield username.decode(), client_order_id.decode(), _U64.unpack(value)[0]


def _walk_back(index, key: bytes, start: int | None, end: int | None, matches: Callable[[bytes], bool],
               plain: bool, offset: int, limit: int, newer: list, sort_key: Callable) -> tuple[list, int]:
    """One page of an index key's entries within [start, end], newest first, merged with `newer`
    (items not kept here yet, newest first, already filtered but for dates): return the page
    [offset, offset + limit) of the merged list (stored entries as bytes, `newer` items as
    given) and the merged total.

    `plain`: every stored entry in the range matches. Then an unbounded range is counted by
    LMDB and what precedes the page is skipped without looking at it, in C; otherwise the
    whole range is walked once, to count it."""
    if end is not None and end < 0 or start is not None and start > _LAST_MICROS:
        return [], 0  # a window before 1970 or past 2^64 µs holds nothing
    floor = _SORT_KEY.pack(start, 0) if start is not None and start > 0 else None
    ceiling = _SORT_KEY.pack(end + 1, 0) if end is not None and end < _LAST_MICROS else None
    newer = [item for item in newer if (floor is None or sort_key(item) >= floor)
             and (ceiling is None or sort_key(item) < ceiling)]
    stored = _entries_back(index, key, ceiling)
    if stored is None:
        return newer[offset:offset + limit], len(newer)
    total = index.count() + len(newer) if plain and floor is None and ceiling is None else None
    if floor is not None:
        stored = takewhile(floor.__le__, stored)
    if not plain:
        stored = filter(matches, stored)
    position = 0
    if total is not None and offset > len(newer):
        # At most len(newer) newer items come before the page: skip the rest of its offset in stored
        # entries, then count the newer items above the last one skipped.
        last_skipped = deque(islice(stored, offset - len(newer)), maxlen=1)
        if last_skipped:
            boundary = last_skipped[0][:16]
            before = sum(1 for item in newer if sort_key(item) > boundary)
            position = offset - len(newer) + before
            newer = newer[before:]
    page: list = []
    pending = iter(newer)
    next_newer = next(pending, None)
    stop = offset + limit
    for entry in stored:
        while next_newer is not None and sort_key(next_newer) > entry[:16]:
            if offset <= position < stop:
                page.append(next_newer)
            position += 1
            next_newer = next(pending, None)
        if offset <= position < stop:
            page.append(entry)
        position += 1
        if total is not None and position >= stop:
            return page, total
    while next_newer is not None:
        if offset <= position < stop:
            page.append(next_newer)
        position += 1
        next_newer = next(pending, None)
    return page, position if total is None else total


def _entries_back(index, key: bytes, ceiling: bytes | None) -> Iterator[bytes] | None:
    """The key's entries below `ceiling`, newest first (a C iterator), or None when there are none."""
    if not index.set_key(key):
        return None
    if ceiling is not None and index.set_range_dup(key, ceiling):
        if not index.prev_dup():
            return None
    else:
        index.set_key(key)
        index.last_dup()
    return index.iterprev_dup(keys=False, values=True)
