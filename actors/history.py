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
from itertools import count, islice, takewhile

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


def user_prefix(username: str) -> bytes:
    """A username as the first part of a key: ended by a 0 byte, so one user's keys never run into another's."""
    return username.encode() + b"\0"


# ---- what a change writes ----------------------------------------------------

def order_accepted_writes(username: str, client_order_id: str | None, order_id: int) -> list[Write]:
    """A client order id is kept for ever from the order's acceptance on."""
    if client_order_id is None:
        return []
    return [("client_order_ids", user_prefix(username) + client_order_id.encode(), _U64.pack(order_id))]


def closed_order_writes(order: OrderRecord | OrderView) -> list[Write]:
    """A closed order, and its entries in the user's indexes."""
    view = order.view() if isinstance(order, OrderRecord) else order
    user = user_prefix(view.username)
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
    key = user_prefix(transaction.username) + transaction.asset_id.encode() + b"\0"
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
            if found is None or not found.set_key(user_prefix(username) + client_order_id.encode()):
                return None
            return _U64.unpack(found.value())[0]

    def orders_page(self, username: str, *, limit: int, offset: int, newer: list[OrderView],
                    order_type: str | None = None, status: str | None = None, asset_id: str | None = None,
                    start: int | None = None, end: int | None = None) -> tuple[list[OrderView], int]:
        """One page of the user's orders, newest first: the closed ones kept here merged with
        `newer` (open, or closed and maybe not kept yet; matching the filters, newest first);
        return it and the total."""
        user = user_prefix(username)
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
        # An entry is `created_at | order_id | status | type | asset id`. (A compiled pattern's
        # match is twice as slow as these slices.)
        if type_code is not None and asset_bytes is not None:
            def matches(entry: bytes) -> bool:
                return entry[17:18] == type_code and entry[18:] == asset_bytes
        elif type_code is not None:
            def matches(entry: bytes) -> bool:
                return entry[17:18] == type_code
        else:
            def matches(entry: bytes) -> bool:
                return entry[18:] == asset_bytes

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
        key = user_prefix(username) + asset_id.encode() + b"\0"
        key = b"T" + key + transaction_type.encode() if transaction_type is not None else b"A" + key
        with self._reading() as cursor:
            index = cursor("transactions")
            newer = [item for item in newer
                     if (transaction_type is None or item.transaction_type == transaction_type)
                     and not index.set_key_dup(key, _transaction_entry(item))]
            entries, total = _walk_back(index, key, start, end, None, True, offset, limit, newer,
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


def _walk_back(index, key: bytes, start: int | None, end: int | None, matches: Callable[[bytes], object],
               plain: bool, offset: int, limit: int, newer: list, sort_key: Callable) -> tuple[list, int]:
    """One page of an index key's entries within [start, end], newest first, merged with `newer`
    (items not kept here yet, newest first, already filtered but for dates): return the page
    [offset, offset + limit) of the merged list (stored entries as bytes, `newer` items as
    given) and the merged total.

    The stored entries between two `newer` items are one run, read by its own cursor walk, and
    skipped, taken and counted by C iterators (with `matches` the one Python call per entry).
    `plain`: every stored entry in the range matches; then an unbounded range is counted by LMDB
    and the walk ends with the page; otherwise it goes on to count."""
    if end is not None and end < 0 or start is not None and start > _LAST_MICROS:
        return [], 0  # a window before 1970 or past 2^64 µs holds nothing
    floor = _SORT_KEY.pack(start, 0) if start is not None and start > 0 else None
    ceiling = _SORT_KEY.pack(end + 1, 0) if end is not None and end < _LAST_MICROS else None
    newer = [item for item in newer if (floor is None or sort_key(item) >= floor)
             and (ceiling is None or sort_key(item) < ceiling)]
    if not index.set_key(key):
        return newer[offset:offset + limit], len(newer)
    total = index.count() + len(newer) if plain and floor is None and ceiling is None else None
    if total is not None and offset > total // 2:
        return _walk_oldest_first(index, key, total - offset - limit, total - offset, newer, sort_key), total
    page: list = []
    position, stop = 0, offset + limit
    upper = ceiling
    for item in [*newer, None]:
        lower = sort_key(item) if item is not None else None
        run = _entries_back(index, key, upper)  # stored entries below `upper`, newest first
        if run is not None:
            if lower is not None:
                run = takewhile(lower.__lt__, run)
            if floor is not None:
                run = takewhile(floor.__le__, run)
            if not plain:
                run = filter(matches, run)
            if position < offset:
                position += _consume(islice(run, offset - position))
            if offset <= position < stop:
                taken = list(islice(run, stop - position))
                page += taken
                position += len(taken)
            if position >= stop:
                if total is not None:
                    return page, total
                position += _consume(run)
        if item is not None:
            if offset <= position < stop:
                page.append(item)
            position += 1
            if total is not None and position >= stop:
                return page, total
        upper = lower
    return page, position if total is None else total


def _walk_oldest_first(index, key: bytes, low: int, high: int, newer: list, sort_key: Callable) -> list:
    """Positions [low, high) counted from the oldest of the key's entries merged with `newer`
    (newest first), returned newest first: a deep page of a counted list is nearer that end."""
    page: list = []
    position, low = 0, max(low, 0)
    lower = None
    for item in [*reversed(newer), None]:
        upper = sort_key(item) if item is not None else None
        run = _entries_forward(index, key, lower)  # stored entries above `lower`, oldest first
        if run is not None:
            if upper is not None:
                run = takewhile(upper.__gt__, run)
            if position < low:
                position += _consume(islice(run, low - position))
            if low <= position < high:
                taken = list(islice(run, high - position))
                page += taken
                position += len(taken)
        if position >= high:
            break
        if item is not None:
            if low <= position:
                page.append(item)
            position += 1
        lower = upper
    page.reverse()
    return page


def _consume(iterator: Iterator) -> int:
    """Exhaust an iterator in C; return how many items it gave."""
    counter = count()
    deque(zip(iterator, counter), maxlen=0)
    return next(counter)


def _entries_forward(index, key: bytes, floor: bytes | None) -> Iterator[bytes] | None:
    """The key's entries above `floor`, oldest first (a C iterator), or None when there are none."""
    if floor is not None:
        if not index.set_range_dup(key, floor):
            return None
    elif not index.set_key(key):
        return None
    return index.iternext_dup(keys=False, values=True)


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
